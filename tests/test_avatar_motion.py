"""Motion synthesis: deterministic, label behaviours, smooth label blends, expression controls."""

from __future__ import annotations

import dataclasses

import numpy as np

from facetalk.avatar.audio import AudioFeatures
from facetalk.avatar.labels import Label
from facetalk.avatar.motion import MotionParams, MotionSynthesizer
from facetalk.config import Expression

FPS = 25
LOUD = AudioFeatures(energy=0.9, brightness=0.5, noisiness=0.1)


def _run(synth: MotionSynthesizer, labels: list[Label], speech: bool = True) -> np.ndarray:
    out = []
    for i, label in enumerate(labels):
        synth.set_label(label)
        loud = speech and label == Label.SPEAKING and (i // 3) % 2 == 0  # syllables every 120 ms
        out.append(synth.step(LOUD if loud else None).as_array())
    return np.array(out)


def test_same_seed_same_motion() -> None:
    """Equal seeds and inputs give identical motion; another seed differs."""
    labels = [Label.IDLE] * 100 + [Label.SPEAKING] * 100 + [Label.LISTENING] * 100
    a = _run(MotionSynthesizer(fps=FPS, seed=7), labels)
    b = _run(MotionSynthesizer(fps=FPS, seed=7), labels)
    c = _run(MotionSynthesizer(fps=FPS, seed=8), labels)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_speaking_mouth_follows_audio_listening_mouth_closed() -> None:
    """Loud frames open the jaw within a frame; listening keeps the lips together."""
    synth = MotionSynthesizer(fps=FPS, seed=0)
    synth.set_label(Label.SPEAKING)
    silent = [synth.step(None).jaw for _ in range(10)][-1]  # past the label blend
    loud = [synth.step(LOUD).jaw for _ in range(2)]
    assert silent < 0.1 and loud[0] > 0.6 and loud[1] > 0.75
    synth.set_label(Label.LISTENING)
    jaws = [synth.step(None).jaw for _ in range(25)]
    assert max(jaws[10:]) < 1e-6


def test_idle_blinks_every_few_seconds() -> None:
    """Over 20 s of idle the eyes close (blink > 0.9) between 3 and 10 times."""
    synth = MotionSynthesizer(fps=FPS, seed=3)
    blinks = np.array([synth.step(None).blink for _ in range(20 * FPS)])
    closes = np.sum((blinks[1:] > 0.9) & (blinks[:-1] <= 0.9))
    assert 3 <= closes <= 10


def test_label_change_blends_without_a_pop() -> None:
    """Across a label change no parameter moves more than a third of its total change
    in one frame, and the blend is over within 150-250 ms."""
    for old, new in [(Label.SPEAKING, Label.LISTENING), (Label.LISTENING, Label.IDLE),
                     (Label.IDLE, Label.SPEAKING), (Label.SPEAKING, Label.IDLE)]:
        labels = [old] * 50 + [new] * 50
        blended = _run(MotionSynthesizer(fps=FPS, seed=1), labels, speech=False)
        # The same run with the blend disabled shows the size of the jump it avoids.
        hard = _run(MotionSynthesizer(fps=FPS, seed=1, blend_s=0.0), labels, speech=False)
        jump = np.abs(hard[50] - hard[49])
        steps = np.abs(np.diff(blended[45:60], axis=0))
        assert (steps.max(axis=0) <= jump / 3 + 0.02).all(), (old, new)
        settled = np.abs(blended[50:] - hard[50:]).max(axis=1)
        assert settled[int(0.25 * FPS):].max() < 1e-9  # blend over by 250 ms
        assert settled[int(0.15 * FPS) - 1] > 0 or jump.max() < 1e-9  # not before 150 ms


def test_expression_controls_apply_at_run_time() -> None:
    """Raising smile/brow/tilt and closing the eyes take effect on the next frame."""
    synth = MotionSynthesizer(fps=FPS, seed=0, expression=Expression())
    before = synth.step(None)
    synth.expression = Expression(smile=1.0, brow_raise=1.0, eye_openness=0.0, head_tilt=1.0)
    after = synth.step(None)
    assert after.smile == 1.0 and after.brow > before.brow + 0.5
    assert after.blink > 0.5 and after.roll > before.roll + 0.8


def test_thinking_glances_away_with_the_mouth_closed() -> None:
    """While the answer is coming the eyes go up and aside, brows lift, the lips stay together."""
    thinking = _run(MotionSynthesizer(fps=FPS, seed=3), [Label.LISTENING] * 50 + [Label.THINKING] * 50)[-25:]
    listening = _run(MotionSynthesizer(fps=FPS, seed=3), [Label.LISTENING] * 100)[-25:]
    column = {f.name: i for i, f in enumerate(dataclasses.fields(MotionParams))}
    assert (thinking[:, column["gaze_x"]] > 0.4).all() and (thinking[:, column["gaze_y"]] < -0.3).all()
    assert thinking[:, column["brow"]].mean() > listening[:, column["brow"]].mean() + 0.15
    assert (thinking[:, column["jaw"]] < 0.05).all()
