"""TTS starts on a reply's first clause; the rest goes sentence by sentence."""

from __future__ import annotations

from facetalk.agent.clause_tokenizer import FirstClauseTokenizer


async def _streamed(pieces: list[str]) -> list[str]:
    """What a TTS stream receives when the LLM sends ``pieces`` one after another."""
    stream = FirstClauseTokenizer().stream()
    out: list[str] = []
    for piece in pieces:
        stream.push_text(piece)
    stream.end_input()
    async for token in stream:
        out.append(token.token.strip())
    await stream.aclose()
    return out


async def test_first_clause_is_spoken_before_its_sentence_ends() -> None:
    """A first clause of four words or more goes to TTS alone; later commas do not cut."""
    words = "Well, as an astronaut I can say, the moon is quiet, and very cold. It has no air, no wind, nothing."
    got = await _streamed([w + " " for w in words.split()])
    assert got == [
        "Well, as an astronaut I can say,",
        "the moon is quiet, and very cold.",
        "It has no air, no wind, nothing.",
    ]


async def test_short_openers_are_not_spoken_alone() -> None:
    """'Yes,' is too short to stand alone, and so is 'Yes, it is.' (sentences under 20 characters
    join the next, as livekit's sentence tokenizer does); a later long clause is not cut."""
    got = await _streamed(["Yes, it is. ", "The sun rises, every ninety minutes, up here. ", "Really."])
    assert got == ["Yes, it is. The sun rises, every ninety minutes, up here.", "Really."]


def test_tokenize_cuts_the_same_way() -> None:
    """The batch form gives the same pieces as the stream."""
    text = "Sure, that is a great question; the answer is simply four. The next one is five."
    pieces = [p.strip() for p in FirstClauseTokenizer().tokenize(text)]
    assert pieces == ["Sure, that is a great question;", "the answer is simply four.", "The next one is five."]
