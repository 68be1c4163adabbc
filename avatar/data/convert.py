"""One video's frames, audio and labels → the arrays a dataset stores.

Shared by ``data synth`` and ``data build``: both hand in a way to iterate the
source frames (twice: once to track the face, once to crop with the smoothed
alignment, so no more than one source frame is ever held in memory), the
audio at 24 kHz, and one label per frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import av
import numpy as np

from ..audio import SAMPLE_RATE, FeatureExtractor
from ..labels import Label
from .format import LABELS, VideoArrays, encode_frame, samples_per_frame
from .tracking import FaceTrack, crop

__all__ = ["FrameSource", "assemble", "audio_features", "fit_audio", "resample"]

FrameSource = Callable[[], Iterator[np.ndarray]]
"""Returns a fresh iterator over a video's RGB uint8 frames at the dataset fps."""

_LIP_UPPER, _LIP_LOWER = 13, 14  # inner-lip midpoints of the face mesh


def resample(samples: np.ndarray, input_rate: int, output_rate: int = SAMPLE_RATE) -> np.ndarray:
    """int16 mono audio at ``input_rate`` → ``output_rate``, bit-exact from run to run (libswresample)."""
    frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.int16), format="s16", layout="mono")
    frame.sample_rate = input_rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=output_rate)
    parts = [f.to_ndarray().ravel() for f in resampler.resample(frame) + resampler.resample(None)]
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)


def fit_audio(audio: np.ndarray, frames: int, fps: int) -> np.ndarray:
    """int16 audio cut or zero-padded to exactly ``frames * spf`` samples."""
    wanted = frames * samples_per_frame(fps)
    return np.pad(audio[:wanted], (0, max(0, wanted - audio.size))).astype(np.int16)


def audio_features(audio: np.ndarray, fps: int) -> np.ndarray:
    """float32 ``(T, 3)`` features of each frame's audio, from one extractor run in order."""
    spf = samples_per_frame(fps)
    extract = FeatureExtractor()
    rows = []
    for k in range(audio.size // spf):
        f = extract(audio[k * spf:(k + 1) * spf])
        rows.append((f.energy, f.brightness, f.noisiness))
    return np.array(rows, np.float32).reshape(-1, 3)


def _reference_index(landmarks: np.ndarray, valid: np.ndarray, labels: np.ndarray) -> int:
    """The valid frame with the smallest lip gap, among listening/idle frames when there are any."""
    quiet = valid & np.isin(labels, [LABELS.index(Label.LISTENING), LABELS.index(Label.IDLE)])
    pool = quiet if quiet.any() else valid
    gap = np.linalg.norm(landmarks[:, _LIP_LOWER] - landmarks[:, _LIP_UPPER], axis=1)
    return int(np.flatnonzero(pool)[np.argmin(gap[pool])])


def assemble(frames: FrameSource, track: FaceTrack, audio: np.ndarray, labels: np.ndarray, *, fps: int,
             size: int, quality: int) -> VideoArrays:
    """Crop every frame with the track's alignment and gather what the dataset stores.

    Args:
        frames: the source frames; at least ``len(track.valid)`` of them.
        track: the face track of those frames (it has at least one valid frame).
        audio: int16 mono 24 kHz, cut or padded here to the frame count.
        labels: uint8 ``(T,)`` label codes.
        fps: dataset frame rate.
        size: crop side in pixels.
        quality: JPEG quality of the stored crops.
    """
    count = track.valid.size
    landmarks = track.crop_landmarks()
    reference_at = _reference_index(landmarks, track.valid, labels)
    jpegs: list[bytes] = []
    reference = np.zeros((size, size, 3), np.uint8)
    for k, rgb in zip(range(count), frames(), strict=False):
        image = crop(rgb, track.transforms[k], size)
        jpegs.append(encode_frame(image, quality))
        if k == reference_at:
            reference = image
    if len(jpegs) != count:
        raise ValueError(f"the source yielded {len(jpegs)} frames the second time, {count} the first")
    audio = fit_audio(audio, count, fps)
    return VideoArrays(jpegs=jpegs, audio=audio, transforms=track.transforms, landmarks=landmarks,
                       features=audio_features(audio, fps), labels=labels.astype(np.uint8),
                       valid=track.valid, reference=reference)
