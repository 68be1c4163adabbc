"""`facetalk eval latency` measures a real conversation and reports plausible figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facetalk.avatar.models import cache_dir
from facetalk.eval.human_speech import HUMAN_CLIPS
from facetalk.eval.measures import TurnResult, _best_peak, measure_turn
from facetalk.eval.mouth import MouthRegion
from facetalk.eval.report import MEASURES, leg_fault, used_preflight
from facetalk.eval.script import builtin_script, load_script
from facetalk.errors import FaceTalkError
from facetalk.avatar.offline import read_audio
from facetalk.avatar.audio import SAMPLE_RATE
from facetalk.testing.simulated_user import ReceivedAudio, ReceivedVideo, Recording

from .speech import transcribe, word_error_rate

pytestmark = pytest.mark.e2e

SCRIPT = """\
- text: What is your name?
- wav: {human}
- text: Tell me a long story about the stars.
- text: Wait, stop, please.
  interrupt: true
"""


@pytest.fixture(scope="module")
def human_speech() -> dict[str, Path]:
    """The human set, cut from its Debian packages (fetched once into the cache)."""
    turns = builtin_script("human", cache_dir() / "human-speech")
    return {turn.wav.stem.rsplit("_", 1)[0]: turn.wav for turn in turns if turn.wav}  # name_start-end


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, human_speech: dict[str, Path]) -> dict:
    """A 4-turn run, one of them a real person's recording, against a local server and worker."""
    folder = tmp_path_factory.mktemp("latency")
    (folder / "script.yaml").write_text(SCRIPT.format(human=human_speech["ve9qrp_weather"]))
    result = subprocess.run(
        [sys.executable, "-m", "facetalk", "eval", "latency", "--turns", "4", "--llm", "scripted",
         "--script", str(folder / "script.yaml"), "--out", str(folder / "out")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "response_ms" in result.stdout  # the terminal summary
    assert (folder / "out" / "report.html").read_text().count("<img") == 3
    return json.loads((folder / "out" / "report.json").read_text())


def test_every_figure_is_present_and_plausible(report: dict) -> None:
    """Each measure was seen and lies in a believable range."""
    for measure in MEASURES:
        stats = report["summary"][measure]
        assert stats["n"] > 0, measure
        if measure == "lipsync_lag_ms":
            assert abs(stats["p50"]) <= 300
        else:
            assert 0 < stats["p50"] < 10_000, (measure, stats)
    assert len(report["turns"]) == 4
    assert report["turns"][3]["barge_in_audio_stop_ms"] is not None
    assert set(report["by_speech"]) == {"human", "synthetic"}
    assert report["by_speech"]["human"]["response_ms"]["n"] == 1
    assert report["false_cut_ins"] == {"count": 0, "of_turns": 3, "turns": []}
    assert report["preflight"]["of_turns"] >= 3


def test_user_side_figures_agree_with_the_agents_stages(report: dict) -> None:
    """The user hears the answer after the agent's stages, and soon after the agent starts it.

    "Soon" is the two legs between the user and the agent (``to_agent`` + ``to_user``), within
    1.5 s. On a quiet machine they take 0.19 + 0.09 s (p50; at most 0.22 + 0.11 s, in
    docs/latency-report); beside one burner with the machine at a load of 10 on its two cores,
    up to 0.59 + 0.55 s; the bound adds 40 % to that. A check once read 2.3 s over the old 1 s
    bound, most likely from the simulated user's old 40 ms microphone queue: it ran dry in each
    stall of the user's loop, stretching the utterance past its timestamps and ``to_agent`` by
    as much (fixed in ``SimulatedUser``; its old report is gone, so this is not proven).
    """
    for turn in report["turns"]:
        stages = turn["stages_ms"]
        if turn["response_ms"] is None or "e2e_latency" not in stages:
            continue
        assert turn["response_ms"] >= stages["llm_node_ttft"] + stages["tts_node_ttfb"]
        assert stages["e2e_latency"] - 150 <= turn["response_ms"] <= stages["e2e_latency"] + 1500, stages
        assert turn["avatar_ms"] is not None and turn["avatar_ms"] >= turn["response_ms"] - 200


def test_the_legs_and_the_agents_turn_add_up_to_the_response(report: dict) -> None:
    """to_agent + e2e + to_user is the user-side response, and both legs take time."""
    timed = [t for t in report["turns"] if t["response_ms"] is not None and "to_user" in t["stages_ms"]]
    assert timed
    for turn in timed:
        stages = turn["stages_ms"]
        assert 0 < stages["to_agent"] < 2000 and 0 < stages["to_user"] < 2000, stages
        total = stages["to_agent"] + stages["e2e_latency"] + stages["to_user"]
        assert total == pytest.approx(turn["response_ms"], abs=30)


def test_lipsync_lag_is_the_correlation_peak_not_a_rise_at_the_range_end() -> None:
    """Speech rhythm lifts the correlation again near ±300 ms; the inner peak wins, and a
    curve that climbs all the way to the end (video later than the range) gives the end."""
    lags = np.arange(-0.3, 0.30001, 0.01)
    rhythm = 0.5 * np.cos((lags - 0.02) * 2 * np.pi / 0.3) * np.exp(-np.abs(lags) / 0.6)
    rhythm += np.where(lags > 0.2, (lags - 0.2) * 5, 0)
    assert lags[_best_peak(rhythm)] == pytest.approx(0.02)
    assert lags[_best_peak(lags.copy())] == pytest.approx(0.3)


def test_a_talked_over_answer_still_playing_is_not_the_response_to_the_barge_in() -> None:
    """On a busy machine the interrupted answer once played on past the end of "Wait, stop,
    please." and was taken for the reply, 6 ms after it. The response is the next answer's."""
    loud, quiet = np.full(480, 3000, np.int16), np.zeros(480, np.int16)
    times = [i * 0.01 for i in range(600)]  # 10 ms chunks over 6 s
    # the old answer until 3.0 s (the user talked over it from 1.0 to 2.0 s), quiet, the new one from 3.5 s
    chunks = [loud if t < 3.0 or t >= 3.5 else quiet for t in times]
    frames = [np.full((8, 8), 128, np.uint8) for _ in range(150)]
    video = ReceivedVideo(times=[i * 0.04 for i in range(150)], frames=frames, size=(8, 8))
    received = Recording("room", ReceivedAudio(times=times, chunks=chunks), video, [])
    turn = measure_turn(received, MouthRegion(0, 0, 4, 4), index=0, text="Wait, stop, please.",
                        interrupt=True, voiced=(1.0, 2.0), until=6.0)
    assert turn.barge_in_audio_stop_ms == pytest.approx(2000, abs=15)
    assert turn.response_ms == pytest.approx(1500, abs=15)


def test_bad_script_is_explained(tmp_path: Path) -> None:
    """A script turn with neither text nor wav is refused with the rule."""
    path = tmp_path / "script.yaml"
    path.write_text("- interrupt: true\n")
    with pytest.raises(FaceTalkError, match="exactly one of 'text' or 'wav'"):
        load_script(path)


def test_human_set_is_real_speech_with_its_transcripts(human_speech: dict[str, Path]) -> None:
    """Every clip is there, lasts what a user says in one breath, and mostly reads as its transcript."""
    assert set(human_speech) == {clip.name for clip in HUMAN_CLIPS}
    assert len({clip.speaker for clip in HUMAN_CLIPS}) >= 8
    errors = []
    for clip in HUMAN_CLIPS:
        audio = read_audio(human_speech[clip.name])
        assert 1.0 < len(audio) / SAMPLE_RATE < 9.0, clip.name
        errors.append(word_error_rate(clip.text, transcribe(audio, SAMPLE_RATE)))
    assert float(np.median(errors)) <= 0.2, errors


def test_mixed_script_takes_human_and_synthetic_speech_in_turn(human_speech: dict[str, Path]) -> None:
    """One run of 'mixed' gives both kinds, alternating, with an interruption in each."""
    turns = builtin_script("mixed", cache_dir() / "human-speech")
    assert [t.speech for t in turns[:4]] == ["synthetic", "human", "synthetic", "human"]
    assert any(t.interrupt and t.speech == "human" for t in turns)
    assert any(t.interrupt and t.speech == "synthetic" for t in turns)
    with pytest.raises(FaceTalkError, match="synthetic, human, mixed"):
        builtin_script("people", cache_dir() / "human-speech")


def test_legs_that_are_negative_or_do_not_add_up_are_flagged() -> None:
    """A turn the agent ended at a pause inside it has a negative leg: flagged, not averaged."""
    def turn(to_agent: float, e2e: float, to_user: float, response: float) -> TurnResult:
        stages = {"to_agent": to_agent, "e2e_latency": e2e, "to_user": to_user}
        return TurnResult(0, "x", False, "r", 0.0, 1.0, response_ms=response, stages_ms=stages)

    assert leg_fault(turn(190, 320, 90, 610)) is None
    assert "negative to_agent" in (leg_fault(turn(-981, 1500, 90, 610)) or "")
    assert "add up to 900" in (leg_fault(turn(190, 620, 90, 610)) or "")


def test_a_reply_playing_sooner_than_its_own_generation_was_prepared_on_the_preflight() -> None:
    """After the turn ended, a fresh reply needs its LLM first token plus TTS first audio;
    a reply that plays sooner was started on the preflight transcript."""
    def turn(e2e: float, end_of_turn: float) -> TurnResult:
        stages = {"e2e_latency": e2e, "end_of_turn_delay": end_of_turn, "llm_node_ttft": 40, "tts_node_ttfb": 120}
        return TurnResult(0, "x", False, "r", 0.0, 1.0, stages_ms=stages)

    assert used_preflight(turn(e2e=320, end_of_turn=270))  # 50 ms after the turn ended
    assert not used_preflight(turn(e2e=450, end_of_turn=270))  # 180 ms: generated afterwards
    assert used_preflight(TurnResult(0, "x", False, "r", 0.0, 1.0)) is None
