"""The persona as a livekit-agents ``Agent``: its prompt, greeting and manners.

One thing is added to the default behaviour: when the LLM fails (endpoint
down, too slow, returning errors) the agent still answers, with a short
sentence saying it cannot answer now (or, cut off mid-answer, that it lost
its connection). The conversation stays alive and the
user is not left in silence; the error is logged for the operator. Speaking
also resets livekit-agents' count of consecutive LLM errors, so a long outage
never makes the session close itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, AsyncIterable

from livekit.agents import Agent, APIError, FlushSentinel, ModelSettings, llm

from ..config import PersonaConfig

__all__ = ["LLM_CUT_OFF_REPLY", "LLM_UNAVAILABLE_REPLY", "PersonaAgent"]

logger = logging.getLogger(__name__)

LLM_UNAVAILABLE_REPLY = "Sorry, I can't answer right now. Please try again in a moment."
LLM_CUT_OFF_REPLY = " ... Sorry, I lost my connection there. Please ask me again."


class PersonaAgent(Agent):
    """Speaks as the persona and greets the user on arrival."""

    def __init__(self, persona: PersonaConfig) -> None:
        super().__init__(instructions=persona.system_prompt)
        self._greeting = persona.greeting

    async def on_enter(self) -> None:
        if self._greeting:
            self.session.say(self._greeting)

    async def llm_node(
        self,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool],
        model_settings: ModelSettings,
    ) -> AsyncGenerator[llm.ChatChunk | str | FlushSentinel, None]:
        stream: AsyncIterable[llm.ChatChunk | str | FlushSentinel] = Agent.default.llm_node(
            self, chat_ctx, tools, model_settings
        )
        answered = False
        try:
            async for chunk in stream:
                answered = True
                yield chunk
        except APIError as e:
            logger.warning("LLM failed, apologising instead: %s", e)
            # Cut off mid-answer, the user has heard half a sentence: say why it stopped.
            yield LLM_CUT_OFF_REPLY if answered else LLM_UNAVAILABLE_REPLY
