"""Per-frame audio windows: what each generated frame hears.

The documented alternative to Whisper features (the tiny.en encoder we ship is
CTranslate2-only, not loadable in torch): the runtime's own per-frame
:class:`~facetalk.avatar.audio.AudioFeatures` (energy, brightness, noisiness),
plus a voiced flag that is 0 for frames without audio. Each frame gets a
centred window of ``window`` such vectors, so the model sees the
onset and release around it (LLIA and EMO use ±2 frames of Whisper features
the same way). Past context comes from earlier clips; future context beyond
the clip repeats the clip's last frame, since the runtime never holds audio
back for look-ahead.

Pure numpy: the window of frame ``i`` is ``float32 (window, 4)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..audio import AudioFeatures

__all__ = ["AudioWindows", "feature_vector"]


def feature_vector(features: AudioFeatures | None) -> np.ndarray:
    """``float32 (4,)``: energy, brightness, noisiness, voiced (0 for ``None``)."""
    if features is None:
        return np.array([0.0, 0.5, 0.0, 0.0], np.float32)
    return np.array([features.energy, features.brightness, features.noisiness, 1.0], np.float32)


class AudioWindows:
    """Cuts a stream of per-frame features into centred windows, clip by clip.

    Stateful: it keeps the last ``window // 2`` vectors so that a clip's first
    frames see the end of the previous clip. :meth:`reset` forgets them.
    """

    def __init__(self, window: int) -> None:
        if window < 1 or window % 2 == 0:
            raise ValueError(f"audio window must be odd and positive, got {window}")
        self._half = window // 2
        self._history = np.tile(feature_vector(None), (self._half, 1))

    def __call__(self, features: Sequence[AudioFeatures | None]) -> np.ndarray:
        """``float32 (F, window, 4)`` windows for a clip of ``F`` frames."""
        clip = np.stack([feature_vector(f) for f in features]).astype(np.float32)
        future = np.repeat(clip[-1:], self._half, axis=0)
        padded = np.concatenate([self._history, clip, future])
        index = np.arange(len(clip))[:, None] + np.arange(2 * self._half + 1)[None, :]
        if self._half:
            self._history = np.concatenate([self._history, clip])[-self._half:]
        return padded[index]

    def reset(self) -> None:
        """Forget the past context (after an interruption)."""
        self._history = np.tile(feature_vector(None), (self._half, 1))
