"""Reading the avatar's lips at the receiver: when each phoneme was heard, and whether the lips shut.

The user's side knows only what it received (audio, frames) and the text
of the answer (the scripted LLM's). It gets the phoneme timing from its own
piper (with alignments) and reads the lips with the face mesh on the
received frames.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from facetalk.audio import resample_int16
from facetalk.avatar import speech as avatar_speech
from facetalk.avatar.landmarks import FaceLandmarker
from facetalk.avatar.phonemes import PhonemeSpan
from facetalk.avatar.visemes import VisemeTrack
from facetalk.avatar.measures import LipTrack, bilabial_closure, track_lips
from facetalk.livekit_server import LocalLiveKitServer
from facetalk.testing.simulated_user import MIC_RATE, SimulatedUser

BILABIAL_QUESTION = "Tell me about the boat."
BILABIAL_ANSWER = "My brother Bob packs maps, pens and paper before he boards the big boat."
"""What the scripted LLM answers to a question about a boat: rich in p/b/m."""

NOT_RELIABLE_YET = pytest.mark.xfail(
    reason="lip reading at the receiver does not line the phonemes up with the frames reliably yet: the lips "
    "visibly shut about once per p/b/m in the received frames, and with the time-warped alignment this "
    "measures 0.36-0.86 (in process) and 0.57-0.71 (remote) on the busy 2-core VM, where received video "
    "also stalls for up to 0.3 s; see docs/avatar-cpu.md",
    strict=False,
)
"""For the receiver-side closure tests, until the alignment is settled."""

_RATE = 16_000
_HOP = 160  # 10 ms at 16 kHz, the size of a received chunk
_WIN = 400  # 25 ms at 16 kHz


_FRAME_S = 0.04  # the avatar's 25 fps: every video frame is rendered from 40 ms of the answer's audio


def _received(user: SimulatedUser, start: float, end: float) -> np.ndarray:
    """The agent's audio whose 10 ms chunks arrived in [start, end], at 16 kHz; chunk k is at k x 10 ms."""
    picked = [c for t, c in zip(user.audio.times, user.audio.chunks, strict=True) if start <= t < end]
    return resample_int16(np.concatenate(picked), MIC_RATE, _RATE)


def closure_at_receiver(user: SimulatedUser, text: str, start: float, end: float) -> float | None:
    """bilabial_closure of the received frames of the answer ``text`` heard in [start, end].

    Times are the answer's own media time, not arrival times: on a loaded
    machine the video is delivered a few percent slower than the audio plays,
    and by the end of a sentence arrival times are a phoneme off. So:

    1. our piper speaks ``text`` with its phoneme alignment, and its audio is
       aligned with the received audio by dynamic time warping of their
       spectra: piper draws each phoneme's length with noise, so the agent's
       piper and ours say the same text at slightly different tempos, phoneme
       by phoneme, and no single stretch maps one onto the other;
    2. received frames are placed by their order, 40 ms each (the avatar renders
       one frame per 40 ms of audio; a long arrival gap counts dropped frames),
       starting where the lips' gap best follows the opening those phonemes ask
       for (one offset for the whole answer, searched to 5 ms).
    """
    window = (start - 0.3, end + 0.3)
    speech = avatar_speech.speak(text)
    received = _received(user, *window)
    warp = _time_warp(resample_int16(speech.samples, speech.sample_rate, _RATE), received)
    spans = [PhonemeSpan(p.phoneme, warp(p.start), max(warp(p.end), warp(p.start) + 0.005)) for p in speech.phonemes]
    times = np.array(user.video.times)
    pick = np.flatnonzero((times >= window[0] - 1.0) & (times <= window[1] + 1.0))
    track = track_lips([user.video.frames[i] for i in pick], FaceLandmarker.load())
    frame_times = _place_frames(np.nan_to_num(track.gap, nan=float(np.nanmedian(track.gap))), times[pick], spans,
                                received.size / _RATE)
    return bilabial_closure(track, frame_times, spans)


def _place_frames(gap: np.ndarray, arrivals: np.ndarray, spans: list[PhonemeSpan], duration: float) -> np.ndarray:
    """Each frame's time in the received audio: frames count 40 ms each from the first, ``- lag``, with the
    lag at which the gap best follows the opening the phonemes ask for (``open x (1 - closure)`` of the
    avatar's own track) over the whole answer.

    Frames are counted by order, not by arrival time (on a busy machine they arrive in bursts), except
    that an arrival gap of two frames or more counts the frames the network or the encoder dropped.
    The lag is then refined locally (see below), since a frame's place can still slip by one or two.
    """
    visemes = VisemeTrack(spans)
    wanted = np.array([(v := visemes.at(t)).open * (1 - v.closure) for t in np.arange(0.0, duration, 0.005)])
    steps = np.maximum(1, np.round(np.diff(arrivals) / _FRAME_S - 0.3)).astype(int)  # 1 unless >= 1.8 frames
    slots = np.concatenate([[0], np.cumsum(steps)]) * _FRAME_S

    def fit(lag: float, around: float | None = None) -> float:
        t = slots - lag
        inside = (t >= 0) & (t < duration - 0.005)
        needed = 0.8 * duration / _FRAME_S
        if around is not None:
            inside &= np.abs(t - around) <= 0.6
            needed = 10
        if inside.sum() < needed or gap[inside].std() == 0:
            return -1.0
        return float(np.corrcoef(gap[inside], wanted[(t[inside] / 0.005).astype(int)])[0, 1])

    best = max(np.arange(-duration, slots[-1], 0.005), key=fit)
    # Under load the frames also drift against the audio by a frame or two within an answer:
    # the lag is refined every 200 ms over the 1.2 s about it, within 120 ms of the whole answer's.
    anchors = np.arange(0.0, duration, 0.2)
    local = [max(best + np.arange(-0.3, 0.3001, 0.005), key=lambda lag, a=a: fit(lag, around=a)) for a in anchors]
    return slots - np.interp(slots - best, anchors, local)


def _spectra(samples: np.ndarray) -> np.ndarray:
    """Log energies in 24 bands (100 Hz - 7 kHz, log-spaced) per 10 ms, 25 ms Hann windows, each band's
    mean over the clip removed (so the two voices' channels need not match)."""
    x = np.pad(samples.astype(np.float32) / 32768.0, (_WIN // 2, _WIN // 2))
    windows = np.lib.stride_tricks.sliding_window_view(x, _WIN)[::_HOP] * np.hanning(_WIN)
    power = np.abs(np.fft.rfft(windows, axis=1)) ** 2
    freqs = np.fft.rfftfreq(_WIN, 1 / _RATE)
    edges = np.geomspace(100, 7000, 25)
    bands = np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in zip(edges, edges[1:])], axis=1).astype(np.float32)
    logs = np.log(power @ bands + 1e-10)
    return logs - logs.mean(axis=0)


def _time_warp(own: np.ndarray, received: np.ndarray) -> Callable[[float], float]:
    """Where a time (s) of ``own`` falls in ``received`` (both 16 kHz), by dynamic time warping of
    their :func:`_spectra` (steps: both, either one alone)."""
    a, b = _spectra(own), _spectra(received)
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    total[0, :] = 0.0  # the answer may start anywhere in the received window
    for i in range(1, n + 1):
        diagonal_or_down = np.minimum(total[i - 1, :-1], total[i - 1, 1:]) + cost[i - 1]
        row = total[i]
        row[1:] = diagonal_or_down
        for j in range(2, m + 1):  # a step along the received audio alone
            row[j] = min(row[j], row[j - 1] + cost[i - 1, j - 1])
    i, j = n, int(np.argmin(total[n, 1:])) + 1  # ... and end anywhere in it
    path = []
    while i > 0:
        path.append((i - 1, j - 1))
        steps = [(total[i - 1, j - 1], i - 1, j - 1), (total[i - 1, j], i - 1, j), (total[i, j - 1], i, j - 1)]
        _, i, j = min(steps, key=lambda s: s[0]) if j > 1 else (0, i - 1, j)
    own_idx, recv_idx = np.array(path[::-1]).T
    own_s, recv_s = np.unique(own_idx, return_index=True)
    recv_mean = np.array([recv_idx[own_idx == k].mean() for k in own_s])
    return lambda t: float(np.interp(t / (_HOP / _RATE), own_s, recv_mean)) * _HOP / _RATE


async def closure_of_an_answer(livekit_server: LocalLiveKitServer, room: str) -> float | None:
    """A user in ``room`` asks about the boat; bilabial_closure of the answer they receive."""
    from .speech import speak

    user = SimulatedUser(keep_video_size=512)
    await user.join(livekit_server.url, livekit_server.token("person", room))
    try:
        await user.wait_for_greeting()
        asked = await user.say(speak(BILABIAL_QUESTION))
        await user.wait_for_answer()
    finally:
        await user.leave()
    start, end = user.audio.loud_span(after=asked.end)
    return closure_at_receiver(user, BILABIAL_ANSWER, start, end)
