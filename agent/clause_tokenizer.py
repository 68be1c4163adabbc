"""Cut a streamed answer so that TTS can start on its first clause.

livekit-agents hands a non-streaming TTS one sentence at a time, so the first
audio waits for the LLM's whole first sentence: about 460 ms with SmolLM2 on
this machine. A reply's first clause ("Well, as an astronaut," / "Sure, the
moon is") is enough to start speaking. Only the *first* piece of a reply is
cut at a comma, semicolon, colon or dash, and only once it has
``min_clause_words`` words, so a short "Yes," or "Well," is not spoken on its
own; the rest of the reply goes sentence by sentence, which keeps piper's
sentence prosody.
"""

from __future__ import annotations

import re

from livekit.agents import tokenize
from livekit.agents.tokenize.token_stream import BufferedSentenceStream

__all__ = ["FirstClauseTokenizer"]

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CLAUSE_END = re.compile(r"(?<=[,;:—–])\s+")


class FirstClauseTokenizer(tokenize.SentenceTokenizer):
    """Sentences, except that a reply's first clause is a piece of its own.

    Args:
        min_clause_words: the first clause is cut off only from this many words.
        sentences: how the rest is cut into sentences (livekit's blingfire one by default).
    """

    def __init__(self, *, min_clause_words: int = 4, sentences: tokenize.SentenceTokenizer | None = None) -> None:
        self._min_clause_words = min_clause_words
        self._sentences = sentences or tokenize.blingfire.SentenceTokenizer(retain_format=True)

    def tokenize(self, text: str, *, language: str | None = None) -> list[str]:
        return [piece for piece, _, _ in _Pieces(self._min_clause_words, self._sentences)(text)]

    def stream(self, *, language: str | None = None) -> tokenize.SentenceStream:
        """A fresh stream per reply: each reply gets its own first clause."""
        return BufferedSentenceStream(
            tokenizer=_Pieces(self._min_clause_words, self._sentences), min_token_len=1, min_ctx_len=1
        )


class _Pieces:
    """The tokenize function of one stream: clause first, then sentences.

    The stream emits the first piece once a second one has begun, that is
    when this returns two pieces or more; after that, only sentences.
    """

    def __init__(self, min_clause_words: int, sentences: tokenize.SentenceTokenizer) -> None:
        self._min_clause_words = min_clause_words
        self._sentences = sentences
        self._first_cut = False

    def __call__(self, text: str) -> list[tuple[str, int, int]]:
        pieces = self._first_clause(text) if not self._first_cut else None
        if pieces is None:
            pieces = _positioned(self._sentences.tokenize(text), text)
        self._first_cut = self._first_cut or len(pieces) > 1
        return pieces

    def _first_clause(self, text: str) -> list[tuple[str, int, int]] | None:
        """``text`` as [first clause, the rest] when its first clause is long enough."""
        sentence_end = _SENTENCE_END.search(text)
        limit = sentence_end.start() if sentence_end else len(text)
        for cut in _CLAUSE_END.finditer(text, 0, limit + 1):
            if len(text[: cut.start()].split()) >= self._min_clause_words:
                rest = _positioned(self._sentences.tokenize(text[cut.end() :]), text, cut.end())
                return [(text[: cut.start()], 0, cut.start()), *rest]
        return None


def _positioned(pieces: list[str], text: str, start: int = 0) -> list[tuple[str, int, int]]:
    """``pieces`` of ``text[start:]`` with their (start, end) offsets in ``text``."""
    out = []
    for piece in pieces:
        begin = text.find(piece, start)
        begin = start if begin < 0 else begin
        out.append((piece, begin, begin + len(piece)))
        start = begin + len(piece)
    return out
