"""FrameEngine.reset on the real engines: after it, the speech that was interrupted no longer shows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from facetalk.avatar import Clip, CpuEngine, FrameEngine, Label
from facetalk.avatar.audio import AudioFeatures
from facetalk.avatar.persona import PersonaPack, prepare_persona

PORTRAIT = Path(__file__).resolve().parent.parent / "configs" / "portraits" / "astronaut.png"
LOUD = [AudioFeatures(0.9, 0.7, 0.3)] * 8  # the answer that gets interrupted
OTHER = [AudioFeatures(0.2, 0.4, 0.0), None] * 4  # an answer that sounds different
AFTER = [AudioFeatures(0.3, 0.5, 0.1), AudioFeatures(0.6, 0.5, 0.1)]  # what follows the interruption


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> PersonaPack:
    return prepare_persona(PORTRAIT, resolution=384, out=tmp_path_factory.mktemp("pack"))


def _after(engine: FrameEngine, before: Sequence[AudioFeatures | None], *, reset: bool) -> Clip:
    """Render ``before`` as speech, reset or not, then render what follows the interruption."""
    engine.render_clip(before, Label.SPEAKING)
    if reset:
        engine.reset()
    return engine.render_clip(AFTER, Label.SPEAKING)


def test_cpu_engine_reset_forgets_the_interrupted_speech(pack: PersonaPack) -> None:
    """After reset, the mouth and brows follow only the new audio; without it, the old answer still shows."""

    def motion(before: Sequence[AudioFeatures | None], reset: bool) -> np.ndarray:
        clip = _after(CpuEngine(pack, fps=25, seed=3), before, reset=reset)
        assert clip.motion is not None
        return np.stack([m.as_array() for m in clip.motion])

    np.testing.assert_array_equal(motion(LOUD, reset=True), motion(OTHER, reset=True))
    assert not np.array_equal(motion(LOUD, reset=False), motion(OTHER, reset=False))


def test_cpu_engine_reset_keeps_the_head_moving_smoothly(pack: PersonaPack) -> None:
    """Reset forgets speech only: head pose and gaze continue as if nothing happened."""

    def pose(reset: bool) -> np.ndarray:
        clip = _after(CpuEngine(pack, fps=25, seed=3), LOUD, reset=reset)
        assert clip.motion is not None
        return np.array([[m.yaw, m.roll, m.gaze_x, m.gaze_y, m.blink] for m in clip.motion])

    np.testing.assert_array_equal(pose(reset=True), pose(reset=False))


def test_diffusion_engine_reset_forgets_motion_frames_and_audio(
    pack: PersonaPack, request: pytest.FixtureRequest
) -> None:
    """The bundled tiny checkpoint: after reset, the clip no longer depends on the interrupted answer."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    request.getfixturevalue("one_torch_thread")  # after the skips: the fixture imports torch
    from facetalk.avatar.diffusion import DiffusionEngine, DiffusionOptions

    def frames(before: Sequence[AudioFeatures | None], reset: bool) -> np.ndarray:
        return np.stack(_after(DiffusionEngine(pack, options=DiffusionOptions(seed=4)), before, reset=reset).frames)

    np.testing.assert_array_equal(frames(LOUD, reset=True), frames(OTHER, reset=True))
    assert not np.array_equal(frames(LOUD, reset=False), frames(OTHER, reset=False))
