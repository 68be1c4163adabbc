"""The persona as a livekit-agents ``Agent``: its prompt, greeting and manners.

Two things are added to the default behaviour, both so that the user is
never left in silence:

- When the LLM has sent nothing ``filler_after_s`` after the turn ended, the
  persona says its short filler ("Hmm, let me think.") and the answer follows
  when it comes, in the same reply: a late answer is not lost, and if the user
  speaks meanwhile the reply is interrupted like any other.
- When the LLM fails before answering (endpoint down, too slow, returning
  errors) the agent says it cannot answer now; cut off mid-answer, it says it
  lost its connection rather than stop mid-sentence. The conversation stays alive;
  the error is logged for the operator. Speaking also resets livekit-agents'
  count of consecutive LLM errors, so a long outage never makes the session
  close itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterable

from livekit.agents import Agent, APIError, FlushSentinel, ModelSettings, llm, utils

from ..config import PersonaConfig

__all__ = ["LLM_CUT_OFF_REPLY", "LLM_UNAVAILABLE_REPLY", "PersonaAgent"]

logger = logging.getLogger(__name__)

LLM_UNAVAILABLE_REPLY = "Sorry, I can't answer right now. Please try again in a moment."
LLM_CUT_OFF_REPLY = " ... Sorry, I lost my connection there. Please ask me again."


class PersonaAgent(Agent):
    """Speaks as the persona, greets the user on arrival, fills a slow LLM's silence."""

    def __init__(self, persona: PersonaConfig, *, filler_after_s: float | None = None) -> None:
        super().__init__(instructions=persona.system_prompt)
        self._greeting = persona.greeting
        self._filler = persona.thinking_filler
        self._filler_after_s = filler_after_s

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
        chunks = aiter(stream)
        first = asyncio.ensure_future(anext(chunks))
        answered = False
        try:
            if self._filler and self._filler_after_s is not None:
                done, _ = await asyncio.wait({first}, timeout=self._filler_after_s)
                if not done:
                    logger.info("no LLM output after %.1f s, saying the filler", self._filler_after_s)
                    yield self._filler
                    yield FlushSentinel()  # speak it now, not with the answer's first sentence
            yield await first
            answered = True
            async for chunk in chunks:
                yield chunk
        except StopAsyncIteration:
            return  # the LLM had nothing to say
        except APIError as e:
            logger.warning("LLM failed, apologising instead: %s", e)
            # Cut off mid-answer, the user has heard half a sentence: say why it stopped.
            yield LLM_CUT_OFF_REPLY if answered else LLM_UNAVAILABLE_REPLY
        finally:
            await utils.aio.cancel_and_wait(first)
