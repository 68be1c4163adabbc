"""Phoneme timing (piper's alignment, word timings, the wire form) and the visemes made from it."""

from __future__ import annotations

import pytest
from livekit import rtc
from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT, TimedString

from facetalk.avatar.phonemes import (
    PhonemeSpan,
    PhonemeTimedString,
    piper_spans,
    spans_from_frame,
    spans_from_json,
    spans_to_json,
)
from facetalk.avatar.visemes import SegmentVisemes, VisemeTrack, viseme_of



def _frame() -> rtc.AudioFrame:
    return rtc.AudioFrame(b"\0\0" * 240, 24000, 1, 240)


def test_piper_alignment_becomes_spans_with_marks_merged() -> None:
    """Length marks join the phoneme before, stress marks the one after; word gaps split; markers dropped."""
    alignment = [("^", 100), ("m", 100), (" ", 100), ("ˈ", 100), ("u", 100), ("ː", 100), (".", 100), ("$", 100)]
    spans = piper_spans(alignment, 1000, offset=1.0)
    assert [(s.phoneme, round(s.start, 3), round(s.end, 3)) for s in spans] == [
        ("m", 1.1, 1.25), ("uː", 1.25, 1.6), (".", 1.6, 1.7)]


def test_frames_without_timing_say_so() -> None:
    """No TimedString on a frame: None (the audio-driven fallback), not an empty timing."""
    assert spans_from_frame(_frame()) is None


def test_piper_timed_string_carries_phonemes_and_stays_a_transcript() -> None:
    """A PhonemeTimedString reads as its sentence and hands over its phonemes."""
    frame = _frame()
    spans = [PhonemeSpan("m", 0.0, 0.1)]
    frame.userdata[USERDATA_TIMED_TRANSCRIPT] = [PhonemeTimedString("Mm.", spans, start_time=0.0, end_time=0.1)]
    assert spans_from_frame(frame) == spans
    assert str(frame.userdata[USERDATA_TIMED_TRANSCRIPT][0]) == "Mm."


def test_word_timings_give_rough_phonemes() -> None:
    """Another TTS's word timings: letters spread over the word, so 'mob' closes at both ends."""
    frame = _frame()
    frame.userdata[USERDATA_TIMED_TRANSCRIPT] = [TimedString("mob", start_time=1.0, end_time=1.3)]
    spans = spans_from_frame(frame)
    assert [s.phoneme for s in spans] == ["m", "ɑ", "b"]
    assert spans[0].start == 1.0 and spans[-1].end == pytest.approx(1.3)


def test_untimed_words_give_no_phonemes() -> None:
    """A sentence TimedString without an end time (livekit's StreamAdapter) is timing without phonemes."""
    frame = _frame()
    frame.userdata[USERDATA_TIMED_TRANSCRIPT] = [TimedString("Hello there.", start_time=0.0)]
    assert spans_from_frame(frame) == []


def test_wire_form_round_trips_and_refuses_garbage() -> None:
    """The JSON form used towards a remote avatar: round trip, and a clear error on bad entries."""
    spans = [PhonemeSpan("b", 0.5, 0.56)]
    assert spans_from_json(spans_to_json(spans)) == spans
    for bad in ({"b": 1}, [["b", 0.5]], [["b", 0.6, 0.5]], [[1, 0.0, 0.1]]):
        with pytest.raises(ValueError):
            spans_from_json(bad)


def test_bilabial_closes_fully_between_open_vowels() -> None:
    """'ama': the lips shut at the m's middle although both neighbours are wide open."""
    track = VisemeTrack([PhonemeSpan("a", 0.0, 0.2), PhonemeSpan("m", 0.2, 0.28), PhonemeSpan("a", 0.28, 0.5)])
    assert track.at(0.24).closure == 1.0
    assert track.at(0.1).closure == 0.0 and track.at(0.1).open > 0.8


def test_closure_and_rounding_are_anticipated() -> None:
    """Lips start closing before the m's middle and rounding before the 'oo'."""
    track = VisemeTrack([PhonemeSpan("a", 0.0, 0.3), PhonemeSpan("m", 0.3, 0.4), PhonemeSpan("t", 0.4, 0.45),
                         PhonemeSpan("uː", 0.45, 0.7)])
    assert 0.0 < track.at(0.315).closure < 1.0
    assert track.at(0.35).closure == 1.0
    assert track.at(0.42).width < -0.2  # during the t, already rounding for the oo
    assert viseme_of("uː").width < 0 < viseme_of("iː").width


def test_a_long_bilabial_is_shut_only_about_its_middle() -> None:
    """A 160 ms 'm' holds the lips shut for 40 ms about its middle and lets its voiced edges open with the audio."""
    track = VisemeTrack([PhonemeSpan("a", 0.0, 0.2), PhonemeSpan("m", 0.2, 0.36), PhonemeSpan("a", 0.36, 0.6)])
    assert track.at(0.26).closure == track.at(0.3).closure == 1.0
    assert track.at(0.21).closure == 0.0 and track.at(0.35).closure == 0.0


def test_pause_rests_and_no_timing_means_no_viseme() -> None:
    """Far from any phoneme the mouth rests; a segment without timing gives None (audio-driven)."""
    track = VisemeTrack([PhonemeSpan("a", 0.0, 0.2)])
    assert track.at(2.0).open == 0.0
    assert SegmentVisemes().at(0.1) is None


def test_timing_past_the_audio_is_clipped() -> None:
    """Spans beyond the audio's end are cut there, and asking past it gives the rest shape."""
    visemes = SegmentVisemes()
    visemes.add([PhonemeSpan("a", 0.0, 0.5), PhonemeSpan("m", 0.9, 1.2), PhonemeSpan("a", 1.5, 3.0)])
    visemes.end(1.0)
    assert visemes.at(0.95).closure == 1.0  # the m, cut at 1.0, still closes
    assert visemes.at(2.0).open == 0.0  # nothing past the audio
