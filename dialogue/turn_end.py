"""End of turn from what was said, not only from silence.

Silence alone cannot tell a finished sentence from a thinking pause: "What's
the weather like in Paris?" and "I'd like to know about the" both end in
silence. The words can. This module reads the transcript the STT already
produced and says how likely it is that the user is done:

=======================================  ===========  ========================
the transcript ends with                 probability  the turn ends after
=======================================  ===========  ========================
``...``, ``…``, a dash or a comma        0.05         ``max_endpointing_delay``
a conjunction, filler, article or        0.05         ``max_endpointing_delay``
possessive ("and", "um", "the", "my")
a question mark                          0.95         ``min_endpointing_delay``
a preposition ("about", "to"), or a      0.05         ``max_endpointing_delay``
noun + "is" ("my name is")
a full stop or exclamation mark          0.9          ``min_endpointing_delay``
a word without punctuation               0.6          ``min_endpointing_delay``
=======================================  ===========  ========================

The first row that matches decides. A trailing open word wins over a full
stop, because Whisper ends most segments with one whether or not the speaker
finished ("I want to go to." is still unfinished); a question mark wins over
a preposition ("Where are you from?") but not over "and" or "the", which end
no question. Whisper sometimes completes a cut-off clause itself ("about the"
comes out as "about that."); no rule on the text can see that, and Whisper's
own scores do not either. With word timestamps, the completed word's
probability was 0.47-0.72 for three piper cut-offs, but a finished human
sentence's last word fell under 0.6 in 3 of the 21 human clips ("doll." 0.48,
"yagis." 0.55), so a threshold would keep one finished human turn in seven
waiting ``max_endpointing_delay``; the mean log-probability and the no-speech
probability do not separate the two at all.
Short answers ("Yes, I do.") end in an auxiliary, so auxiliaries are not open
words. A wrong "unfinished" costs at most ``max_endpointing_delay`` of
latency; a wrong "finished" cuts the user off, so the lists lean that way.

:class:`TranscriptTurnDetector` plugs this into livekit-agents' own
turn-taking: ``AgentSession(turn_handling={"turn_detection": detector})``
calls ``predict_end_of_turn`` at each end of speech, and waits the
endpointing's ``max_delay`` instead of ``min_delay`` when the probability is
below ``unlikely_threshold``. If the user speaks again within that wait, the
session keeps listening and the turn goes on. A rule costs microseconds and
needs no model download.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from livekit.agents import llm

__all__ = ["TranscriptTurnDetector", "TurnEndEstimate", "estimate_turn_end"]

UNLIKELY_THRESHOLD = 0.5
"""Below this, the user is probably not done (livekit-agents' ``unlikely_threshold``)."""

_NEVER_LAST = frozenset(
    # conjunctions and subordinators: a clause must follow
    "and but or nor so because cause if when whenever while although though than "
    "unless until since whether "
    # fillers and hesitations
    "um umm uh uhh er erm hmm mm ah like "
    # articles and possessives: a noun must follow ("that", "some" can end a sentence)
    "the a an my your his her their our its every no "
    # a subject with nothing after it ("yes, I do" ends in an auxiliary, so those stay out)
    "i i'm i'd i'll i've it's there's let's gonna wanna going".split()
)
"""Words that end no English sentence, not even a question ("and?" is Whisper
punctuating a pause)."""

_PREPOSITIONS = frozenset(
    # not the particles that end "come in", "it's over"
    "to of in on at for with from about into onto by between through during without "
    "within against towards toward across".split()
)
"""Words that end an unfinished statement, but may end a question ("Where are you from?")."""

_COPULAS = frozenset("is are was were am".split())
_PRONOUNS = frozenset("i you he she it we they that this there here who what which how".split())
_WH_WORDS = frozenset("what where who whom which how when why whatever wherever".split())
"""A copula after a noun opens a clause ("my name is"); after a pronoun it can
close one ("yes, it is", "here you are"), and so it does at the end of a wh-clause
("that's where the airport is")."""

_TRAILING_OFF = re.compile(r"(\.\.\.|…|-|–|—|,)\s*$")
_WORD = re.compile(r"[\w'’]+")
_LAST_SENTENCE = re.compile(r"[.!?]\s+")


@dataclass(frozen=True)
class TurnEndEstimate:
    """How likely the user is done, and why (for logs and tests)."""

    probability: float
    reason: str

    @property
    def finished(self) -> bool:
        return self.probability >= UNLIKELY_THRESHOLD


def estimate_turn_end(transcript: str) -> TurnEndEstimate:
    """The end-of-turn estimate for a user's ``transcript`` so far (English)."""
    text = transcript.strip()
    if not text:
        return TurnEndEstimate(0.6, "nothing transcribed: silence decides")
    if _TRAILING_OFF.search(text):
        return TurnEndEstimate(0.05, "trails off")
    sentence = [w.lower().replace("’", "'") for w in _WORD.findall(_LAST_SENTENCE.split(text)[-1])]
    words = sentence[-2:]
    if words and words[-1] in _NEVER_LAST:
        return TurnEndEstimate(0.05, f"ends with {words[-1]!r}")
    if text.endswith("?"):
        return TurnEndEstimate(0.95, "a question")
    if words and words[-1] in _PREPOSITIONS:
        return TurnEndEstimate(0.05, f"ends with {words[-1]!r}")
    if (
        len(words) == 2
        and words[-1] in _COPULAS
        and words[0] not in _PRONOUNS
        and not _WH_WORDS.intersection(sentence)
    ):
        return TurnEndEstimate(0.05, f"ends with {' '.join(words)!r}")
    if text.endswith((".", "!")):
        return TurnEndEstimate(0.9, "a finished sentence")
    return TurnEndEstimate(0.6, "no punctuation: silence decides")


class TranscriptTurnDetector:
    """livekit-agents' turn-detector interface over :func:`estimate_turn_end`.

    Pass it as ``turn_handling={"turn_detection": TranscriptTurnDetector()}``;
    the session's endpointing ``min_delay`` then applies to finished
    utterances and ``max_delay`` to unfinished ones.
    """

    @property
    def model(self) -> str:
        return "transcript-rules"

    @property
    def provider(self) -> str:
        return "facetalk"

    async def unlikely_threshold(self, language: str | None) -> float:
        return UNLIKELY_THRESHOLD

    async def supports_language(self, language: str | None) -> bool:
        """English only: the word lists are English."""
        return language is None or language.lower().startswith("en")

    async def predict_end_of_turn(
        self, chat_ctx: llm.ChatContext, *, timeout: float | None = None
    ) -> float:
        return estimate_turn_end(_last_user_text(chat_ctx)).probability


def _last_user_text(chat_ctx: llm.ChatContext) -> str:
    for item in reversed(chat_ctx.items):
        if item.type == "message" and item.role == "user":
            return item.text_content or ""
    return ""
