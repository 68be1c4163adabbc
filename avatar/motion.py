"""Motion synthesis: audio features + label + expression → motion parameters.

One :class:`MotionSynthesizer` runs per stream and is stepped once per video
frame, so clip boundaries are invisible to it: a clip is just a run of steps.
Every random choice (blink times, gaze targets, nods, sway phases) comes from
one seeded generator, so the same seed and inputs give the same motion.

Each label has its own behaviour (see :class:`~.labels.Label`); a label change
cross-fades from the old behaviour to the new one over ``blend_s`` with a
smoothstep, so no parameter pops.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..config import Expression
from .audio import AudioFeatures
from .labels import Label

__all__ = ["MotionParams", "MotionSynthesizer"]

_PRESS = 0.3  # jaw of a full closure: lips pressed, which is what the face mesh reads as shut


@dataclass
class MotionParams:
    """The face's pose and expression in one frame; the renderer's only input.

    All values are unitless; the renderer scales them to the face's size.

    Attributes:
        jaw: mouth opening, 0 = lips together .. 1 = wide open; below 0 the
            lips press together (-0.25: pressed shut, as on "p", "b", "m").
        mouth_width: -1 = rounded ("oo") .. 1 = spread ("ee").
        smile: 0 .. 1.
        blink: upper-lid closure, 0 = open .. 1 = shut.
        brow: brow raise, -0.5 .. 1.
        gaze_x, gaze_y: eye direction, -1 .. 1 (right / down positive).
        yaw, pitch, roll: head rotation, -1 .. 1 (a few degrees at 1).
        tx, ty: head translation, -1 .. 1.
        tongue: how much of the tongue tip shows in the open mouth, 0 .. 1.
    """

    jaw: float = 0.0
    mouth_width: float = 0.0
    smile: float = 0.0
    blink: float = 0.0
    brow: float = 0.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    tongue: float = 0.0

    def as_array(self) -> np.ndarray:
        """The parameters as a float64 vector, in field order."""
        return np.array(dataclasses.astuple(self), np.float64)

    @classmethod
    def from_array(cls, values: np.ndarray) -> MotionParams:
        """Inverse of :meth:`as_array`."""
        return cls(*(float(v) for v in values))


@dataclass
class _Shared:
    """The slow processes all labels draw on, for one frame (each about -1..1)."""

    sway_x: float
    sway_y: float
    sway_r: float
    breath: float
    blink: float
    nod: float
    emphasis: float


class _Smoothed:
    """A one-pole filter with separate attack and release, per frame."""

    def __init__(self, attack: float, release: float, value: float = 0.0) -> None:
        self.attack, self.release, self.value = attack, release, value

    def __call__(self, target: float) -> float:
        rate = self.attack if target > self.value else self.release
        self.value += rate * (target - self.value)
        return self.value


class MotionSynthesizer:
    """Steps the face's motion one video frame at a time.

    Args:
        fps: video frame rate the steps are spaced by.
        seed: seed of every random choice; equal seeds give equal motion.
        expression: the persona's expression controls (runtime-adjustable).
        blend_s: label cross-fade duration in seconds (150-250 ms reads as natural).
    """

    def __init__(self, *, fps: float, seed: int = 0, expression: Expression | None = None,
                 blend_s: float = 0.2) -> None:
        self._fps = fps
        self._rng = np.random.default_rng(seed)
        self.expression = expression or Expression()
        self._blend_frames = max(1, round(blend_s * fps))
        self._frame = 0
        self._label = Label.IDLE
        self._previous: Label | None = None
        self._blend_step = 0
        # Shared slow state: oscillator phases, gaze, blinks, nods.
        self._phases = self._rng.uniform(0, 2 * math.pi, size=6)
        self._gaze = np.zeros(2)
        self._gaze_target = np.zeros(2)
        self._next_gaze = self._frames(1.0)
        self._next_blink = self._frames(self._rng.uniform(1.0, 3.0))
        self._blink_frame = -(10**9)  # no blink in progress
        self._next_nod = self._frames(self._rng.uniform(2.0, 4.0))
        self._nod_frame = -(10**9)
        self.forget_speech()

    @property
    def label(self) -> Label:
        """The label motion is heading to (the blend may still be running)."""
        return self._label

    def _frames(self, seconds: float) -> int:
        return self._frame + max(1, round(seconds * self._fps))

    def forget_speech(self) -> None:
        """Drop what the speech followers remember (mouth opening, width, emphasis, loudness average)."""
        # Attack is fast so the mouth lags the audio by < 1 frame.
        self._open = _Smoothed(attack=0.85, release=0.6)
        self._width = _Smoothed(attack=0.5, release=0.5)
        self._emphasis = _Smoothed(attack=0.3, release=0.08)
        self._energy_avg = 0.0

    def set_label(self, label: Label) -> None:
        """Start a cross-fade to ``label``; a no-op if it is already the target."""
        if label == self._label:
            return
        self._previous, self._label, self._blend_step = self._label, label, 0

    def step(self, features: AudioFeatures | None = None) -> MotionParams:
        """Advance one frame. ``features`` is this frame's audio (``None`` = silence)."""
        features = features or AudioFeatures(0.0, 0.5, 0.0)
        shared = self._shared_step(features)
        current = self._behaviour(self._label, features, shared)
        if self._previous is not None:
            self._blend_step += 1
            t = min(1.0, self._blend_step / self._blend_frames)
            w = t * t * (3 - 2 * t)
            old = self._behaviour(self._previous, features, shared)
            current = (1 - w) * old + w * current
            if t >= 1.0:
                self._previous = None
        self._frame += 1
        return self._apply_expression(MotionParams.from_array(current))

    # --- shared slow processes ----------------------------------------------

    def _shared_step(self, features: AudioFeatures) -> _Shared:
        t = self._frame / self._fps
        p = self._phases
        sway = (math.sin(2 * math.pi * 0.11 * t + p[0]) + 0.5 * math.sin(2 * math.pi * 0.23 * t + p[1]),
                math.sin(2 * math.pi * 0.07 * t + p[2]) + 0.4 * math.sin(2 * math.pi * 0.19 * t + p[3]),
                math.sin(2 * math.pi * 0.05 * t + p[4]))
        breath = math.sin(2 * math.pi * 0.25 * t + p[5])
        if self._frame >= self._next_gaze:  # saccade to a new point near the camera
            self._gaze_target = self._rng.normal(0.0, 0.35, size=2).clip(-0.8, 0.8)
            self._next_gaze = self._frames(self._rng.uniform(0.8, 3.0))
        self._gaze += 0.5 * (self._gaze_target - self._gaze)
        if self._frame >= self._next_blink:
            self._blink_frame = self._frame
            self._next_blink = self._frames(self._rng.uniform(2.5, 5.5))
        blink = self._blink_profile((self._frame - self._blink_frame) / self._fps)
        if self._frame >= self._next_nod:
            self._nod_frame = self._frame
            self._next_nod = self._frames(self._rng.uniform(3.0, 6.0))
        nod_t = (self._frame - self._nod_frame) / self._fps
        nod = math.sin(math.pi * nod_t / 0.7) if 0 <= nod_t < 0.7 else 0.0
        # Prosody: emphasis is energy above its running average (stressed syllables).
        self._energy_avg += 0.05 * (features.energy - self._energy_avg)
        emphasis = self._emphasis(max(0.0, features.energy - self._energy_avg))
        return _Shared(sway_x=sway[0], sway_y=sway[1], sway_r=sway[2], breath=breath,
                       blink=blink, nod=nod, emphasis=emphasis)

    @staticmethod
    def _blink_profile(t: float) -> float:
        """Lid closure over a 0.2 s blink: fast down, slower up."""
        if t < 0 or t >= 0.2:
            return 0.0
        return t / 0.07 if t < 0.07 else max(0.0, 1.0 - (t - 0.07) / 0.13)

    # --- per-label behaviour --------------------------------------------------

    def _behaviour(self, label: Label, f: AudioFeatures, s: _Shared) -> np.ndarray:
        m = MotionParams(blink=min(1.0, s.blink), gaze_x=float(self._gaze[0]), gaze_y=float(self._gaze[1]))
        if label == Label.SPEAKING:
            self._mouth(m, f)
            m.brow = 0.9 * s.emphasis
            m.pitch = 0.25 * s.sway_y + 1.2 * s.emphasis
            m.yaw, m.roll = 0.35 * s.sway_x, 0.2 * s.sway_r
            m.gaze_x, m.gaze_y = 0.4 * m.gaze_x, 0.4 * m.gaze_y  # talks to the camera
        elif label == Label.LISTENING:
            m.smile = 0.25
            m.pitch = 0.15 * s.sway_y + 0.8 * s.nod
            m.yaw, m.roll = 0.2 * s.sway_x, 0.25 + 0.15 * s.sway_r
            m.gaze_x, m.gaze_y = 0.25 * m.gaze_x, 0.25 * m.gaze_y  # attentive
            m.brow = 0.1
        elif label == Label.THINKING:  # "let me think": eyes up and aside, head follows a little
            m.gaze_x, m.gaze_y = 0.55 + 0.1 * m.gaze_x, -0.45 + 0.1 * m.gaze_y
            m.yaw, m.pitch, m.roll = 0.25 + 0.15 * s.sway_x, -0.3 + 0.1 * s.sway_y, 0.2 + 0.1 * s.sway_r
            m.brow = 0.35
        else:
            m.yaw, m.pitch, m.roll = 0.6 * s.sway_x, 0.4 * s.sway_y, 0.4 * s.sway_r
            m.ty = 0.25 * s.breath
            m.brow = -0.05
        m.ty += 0.1 * s.breath
        return m.as_array()

    def _mouth(self, m: MotionParams, f: AudioFeatures) -> None:
        """The speaking mouth: from the viseme when phoneme timing came with the
        audio, else from loudness (opening) and brightness (width)."""
        loudness = self._open(f.energy ** 0.8)
        if f.viseme is None:
            m.jaw = 0.04 + 0.9 * loudness
            m.mouth_width = self._width((f.brightness - 0.45) * 1.6 * min(1.0, 2 * f.energy))
            return
        # Loudness sets how far the jaw opens (syllables are loud); the viseme
        # only nudges it (±5 %), since the face mesh reads the shape from
        # width, tongue and closure, while a viewer reads the syllables from
        # an opening that follows the voice. A closure shuts the lips however
        # loud the voice is (an "m" is voiced).
        v = f.viseme
        opening = loudness * (0.95 + 0.1 * v.open)
        m.jaw = (0.04 + 0.9 * opening) * (1.0 - v.closure) - _PRESS * v.closure
        m.mouth_width = self._width(v.width)
        m.tongue = v.tongue * min(1.0, 3.0 * opening)

    def _apply_expression(self, m: MotionParams) -> MotionParams:
        e = self.expression
        # Lips rounding for "oo" cannot smile as well; pressed lips (p/b/m) relax it.
        rounding = max(0.0, -m.mouth_width)
        pressed = min(1.0, max(0.0, -m.jaw / 0.25))
        m.smile = min(1.0, m.smile + e.smile * (1.0 - rounding) * (1.0 - 0.7 * pressed))
        m.brow = min(1.0, m.brow + e.brow_raise)
        squint = max(0.0, 0.5 - e.eye_openness) * 1.2  # 0.5 is neutral, 0 is shut
        m.blink = min(1.0, m.blink + squint * (1.0 - m.blink))
        m.brow = min(1.0, m.brow + max(0.0, e.eye_openness - 0.5) * 0.6)
        m.roll += (e.head_tilt - 0.5) * 2.0
        return m
