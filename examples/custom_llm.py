"""A custom LLM for FaceTalk: plug in any Python class, no HTTP endpoint needed.

Point the pipeline at it::

    llm:
      provider: custom
      class_path: examples.custom_llm:ParrotLLM
      options: {prefix: "You said"}

and run the worker from the repository root (so ``examples`` is importable):
``facetalk agent dev --pipeline my-pipeline.yaml``.

Or try it in one step, from the repository root: ``python -m examples.custom_llm``
starts a local server and a worker with this LLM, says "What is your name?"
and prints the parrot's answer (see :mod:`examples.talk_in_a_room`).

A custom LLM subclasses ``livekit.agents.llm.LLM`` and returns an
``LLMStream`` whose ``_run`` sends ``ChatChunk``s. livekit-agents does the
rest: sentence streaming to TTS, interruption, metrics. Replace the body of
``_run`` with a call to your own model.
"""

from __future__ import annotations

import uuid

from livekit.agents import APIConnectOptions, llm
from livekit.agents.llm import ChatChunk, ChatContext, ChoiceDelta, Tool
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, NotGivenOr


class ParrotLLM(llm.LLM):
    """Repeats the user's last sentence back, word by word."""

    def __init__(self, *, prefix: str = "You said") -> None:
        super().__init__()
        self.prefix = prefix

    def chat(
        self,
        *,
        chat_ctx: ChatContext,
        tools: list[Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
        tool_choice: NotGivenOr[llm.ToolChoice] = NOT_GIVEN,
        extra_kwargs: NotGivenOr[dict] = NOT_GIVEN,
    ) -> llm.LLMStream:
        return ParrotStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class ParrotStream(llm.LLMStream):
    async def _run(self) -> None:
        said = next(
            (m.text_content for m in reversed(self.chat_ctx.messages()) if m.role == "user"), None
        )
        answer = f"{self._llm.prefix}: {said}." if said else "I did not catch that."
        request_id = str(uuid.uuid4())
        for i, word in enumerate(answer.split(" ")):
            piece = word if i == 0 else " " + word
            self._event_ch.send_nowait(
                ChatChunk(id=request_id, delta=ChoiceDelta(role="assistant", content=piece))
            )


def main() -> None:
    from examples.talk_in_a_room import run, speech_to_say

    llm = {"provider": "custom", "class_path": "examples.custom_llm:ParrotLLM", "options": {"prefix": "You said"}}
    run(llm, speech_to_say("What is your name?", None))


if __name__ == "__main__":
    main()
