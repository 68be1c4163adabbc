"""Offline rendering: a speech file and a label timeline in, an mp4 out.

This is the engine run without the streaming runtime, frame by frame from
the whole audio, for demos and for looking at the result: ``facetalk render``.
With the speech's phoneme timing the mouth shapes the visemes, and the contact
sheet shows the frame at each lip-closing and lip-rounding phoneme, labelled.
Audio is muxed into the mp4 with PyAV (H.264 + AAC).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ..config import Expression
from ..errors import FaceTalkError
from .audio import SAMPLE_RATE, FeatureExtractor
from .engine import CpuEngine
from .labels import Label
from .persona import PersonaPack
from .phonemes import PhonemeSpan
from .visemes import BILABIAL, ROUNDED, SegmentVisemes

__all__ = ["LabelChange", "RenderResult", "load_timeline", "read_audio", "render_video"]


class LabelChange(BaseModel):
    """One entry of a label timeline: from ``at`` seconds on, frames use ``label``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    at: float = Field(ge=0.0)
    label: Label


@dataclass
class RenderResult:
    """What ``render_video`` wrote.

    Attributes:
        video: the mp4 path.
        frames: number of video frames.
        seconds: duration.
        contact_sheet: the sheet's path, if one was asked for.
    """

    video: Path
    frames: int
    seconds: float
    contact_sheet: Path | None


def load_timeline(path: Path) -> list[LabelChange]:
    """Read a YAML list of ``{at: SECONDS, label: speaking|listening|idle}``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        changes = TypeAdapter(list[LabelChange]).validate_python(data)
    except (OSError, yaml.YAMLError, ValidationError) as e:
        raise FaceTalkError(f"{path}: not a valid label timeline: {e}",
                            hint="write a YAML list like '- {at: 0, label: speaking}'") from e
    return sorted(changes, key=lambda c: c.at)


def read_audio(path: Path) -> np.ndarray:
    """Decode any audio file to int16 mono at ``SAMPLE_RATE``."""
    try:
        with av.open(str(path)) as container:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            parts = [frame.to_ndarray().ravel()
                     for packet in container.decode(audio=0) for frame in resampler.resample(packet)]
            parts += [frame.to_ndarray().ravel() for frame in resampler.resample(None)]
    except (av.error.FFmpegError, IndexError) as e:
        raise FaceTalkError(f"{path}: cannot read audio: {e}", hint="pass a WAV, MP3 or other audio file") from e
    return np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, np.int16)


def _label_at(changes: list[LabelChange], t: float) -> Label:
    current = Label.SPEAKING
    for change in changes:
        if change.at <= t:
            current = change.label
    return current


def _contact_sheet(frames: list[tuple[str, np.ndarray]], path: Path, size: int, *, lower: bool = False) -> None:
    """A 4-column grid of face close-ups (``lower``: of the lower face), each with its caption."""
    tiles = []
    top, bottom = (0.36, 0.78) if lower else (0.14, 0.74)
    for caption, image in frames:
        crop = image[int(top * size):int(bottom * size), int(0.29 * size):int(0.71 * size)] if lower else \
            image[int(top * size):int(bottom * size), int(0.2 * size):int(0.8 * size)]
        tile = cv2.resize(crop, (240, 240), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, caption, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2)
        cv2.putText(tile, caption, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1)
        tiles.append(tile)
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    sheet = np.vstack([np.hstack(tiles[i:i + 4]) for i in range(0, len(tiles), 4)])
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def _sheet_picks(phonemes: Sequence[PhonemeSpan], n_frames: int, fps: int, count: int) -> dict[int, str]:
    """Frames for the contact sheet and their captions ('' = time and label):
    the frame at the middle of each p/b/m and rounded vowel, or ``count`` evenly spaced."""
    shown = [p for p in phonemes if p.phoneme[:1] in BILABIAL | ROUNDED and p.phoneme[:1] != "w"]
    if not shown:
        return dict.fromkeys(np.linspace(0, n_frames - 1, count).round().astype(int).tolist(), "")
    return {min(n_frames - 1, int(p.middle * fps)): f"{_ascii(p.phoneme)} {p.middle:4.2f}s" for p in shown}


_X_SAMPA = str.maketrans({"ʊ": "U", "ɔ": "O", "ː": ":", "ɑ": "A", "ə": "@"})


def _ascii(phoneme: str) -> str:
    """An espeak symbol in X-SAMPA, which OpenCV's fonts can draw ('uː' -> 'u:')."""
    return f"/{phoneme.translate(_X_SAMPA)}/"


def render_video(
    pack: PersonaPack,
    audio: np.ndarray,
    out: Path,
    *,
    fps: int = 25,
    timeline: list[LabelChange] | None = None,
    expression: Expression | None = None,
    contact_sheet: Path | None = None,
    sheet_frames: int = 12,
    seed: int = 0,
    tail_s: float = 0.0,
    crf: int = 26,
    phonemes: Sequence[PhonemeSpan] = (),
    audio_only: bool = False,
) -> RenderResult:
    """Render ``audio`` (int16 mono at ``SAMPLE_RATE``) to an mp4.

    Args:
        pack: the persona.
        audio: the speech; it plays as is, while the mouth follows it only under ``speaking``.
        out: mp4 path.
        fps: video frame rate.
        timeline: label changes; speaking throughout when omitted.
        expression: expression controls.
        contact_sheet: where to write a PNG grid: with ``phonemes``, the frame at
            the middle of each p/b/m and rounded vowel; else ``sheet_frames``
            evenly spaced frames.
        seed: motion seed.
        tail_s: extra seconds after the audio (silence), e.g. to show listening and idle.
        crf: H.264 quality (lower is better and larger).
        phonemes: the speech's phoneme timing (seconds); without it the mouth follows the audio alone.
        audio_only: drive the mouth by the audio even with ``phonemes`` (they
            still pick the contact sheet's frames), to compare the two.
    """
    # 1. Timing: one audio chunk per video frame.
    timeline = timeline or []
    duration = max(audio.size / SAMPLE_RATE + tail_s, max((c.at for c in timeline), default=0.0) + 0.5)
    n_frames = int(round(duration * fps))
    per_frame = SAMPLE_RATE // fps
    audio = np.pad(audio, (0, max(0, n_frames * per_frame - audio.size)))
    # 2. Engine and encoder.
    engine = CpuEngine(pack, fps=fps, seed=seed, expression=expression)
    features = FeatureExtractor()
    visemes = SegmentVisemes()
    visemes.add(None if audio_only or not phonemes else list(phonemes))
    visemes.end(audio.size / SAMPLE_RATE)
    out.parent.mkdir(parents=True, exist_ok=True)
    picks = _sheet_picks(phonemes, n_frames, fps, sheet_frames)
    sheet: list[tuple[str, np.ndarray]] = []
    with av.open(str(out), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width = video.height = pack.resolution
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf), "preset": "medium"}
        sound = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        # 3. Frame by frame: motion, render, encode with its audio.
        for k in range(n_frames):
            chunk = audio[k * per_frame:(k + 1) * per_frame]
            label = _label_at(timeline, k / fps)
            feature = features(chunk, visemes.at((k + 0.5) / fps)) if label == Label.SPEAKING else None
            image = engine.render_clip([feature], label).frames[0]
            if k in picks:
                sheet.append((picks[k] or f"{k / fps:4.1f}s {label.value}", image))
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = k
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))
            audio_frame = av.AudioFrame.from_ndarray(chunk[None, :], format="s16", layout="mono")
            audio_frame.sample_rate = SAMPLE_RATE
            audio_frame.pts = k * per_frame
            container.mux(sound.encode(audio_frame))
        container.mux(video.encode(None))
        container.mux(sound.encode(None))
    if contact_sheet is not None:
        _contact_sheet(sheet, contact_sheet, pack.resolution, lower=bool(phonemes))
    return RenderResult(video=out, frames=n_frames, seconds=n_frames / fps, contact_sheet=contact_sheet)
