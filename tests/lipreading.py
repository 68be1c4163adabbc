"""Reading the avatar's lips at the receiver: when each phoneme was heard, and whether the lips shut.

The user's side knows only what it received (audio, frames) and the text
of the answer (the scripted LLM's). It gets the phoneme timing from its own
piper (with alignments) and reads the lips with the face mesh on the
received frames.
"""

from __future__ import annotations

import numpy as np

from facetalk.agent.pcm import resample_int16
from facetalk.avatar import speech as avatar_speech
from facetalk.avatar.landmarks import FaceLandmarker
from facetalk.avatar.phonemes import PhonemeSpan
from facetalk.eval.mouth import LipTrack, bilabial_closure, track_lips
from facetalk.simulated_user import MIC_RATE, SimulatedUser

_RATE = 16_000
_HOP = 160  # 10 ms at 16 kHz, the size of a received chunk


def _features(samples: np.ndarray) -> np.ndarray:
    """13 cepstral coefficients of 32 log mel-spaced bands and their deltas, per 10 ms."""
    x = samples.astype(np.float32) / 32768.0
    n = max(1, (x.size - 400) // _HOP + 1)
    frames = np.stack([x[i * _HOP:i * _HOP + 400] * np.hamming(400) for i in range(n)])
    power = np.abs(np.fft.rfft(frames, n=512, axis=1)) ** 2
    mel = np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 34)
    edges = np.round((700 * (10 ** (mel / 2595) - 1)) / 8000 * 256).astype(int)
    bands = np.stack([power[:, a:max(b, a + 1)].sum(1) for a, b in zip(edges[:-2], edges[2:], strict=True)], axis=1)
    logs = np.log(bands + 1e-9)
    basis = np.cos(np.pi / logs.shape[1] * (np.arange(logs.shape[1]) + 0.5)[None, :] * np.arange(13)[:, None])
    cep = logs @ basis.T
    cep = (cep - cep.mean(0)) / (cep.std(0) + 1e-6)
    return np.hstack([cep, np.gradient(cep, axis=0)])


def _warp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each frame of ``a``, the matching frame of ``b``: dynamic time warping
    whose steps keep the local tempo between half and double."""
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    n, m = cost.shape
    acc = np.full((n, m), np.inf)
    step = np.zeros((n, m), np.int8)
    acc[0, 0] = cost[0, 0]
    for i in range(n):
        for j in range(m):
            if i == 0 and j == 0:
                continue
            options = (acc[i - 1, j - 1] if i and j else np.inf,
                       acc[i - 1, j - 2] + cost[i, j - 1] if i and j > 1 else np.inf,
                       acc[i - 2, j - 1] + cost[i - 1, j] if i > 1 and j else np.inf)
            k = int(np.argmin(options))
            acc[i, j], step[i, j] = options[k] + cost[i, j], k
    match = np.zeros(n, int)
    i, j = n - 1, int(np.argmin(acc[n - 1, m // 2:]) + m // 2)  # a's end may fall before b's
    while i >= 0 and j >= 0:
        match[i] = j
        k = step[i, j]
        if i == 0 and j == 0:
            break
        if k == 0:
            i, j = i - 1, j - 1
        elif k == 1:
            i, j = i - 1, j - 2
        else:
            match[i - 1] = j
            i, j = i - 2, j - 1
    return match


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

    1. our piper speaks ``text`` with its phoneme alignment, and dynamic time
       warping maps it onto the received audio (piper's durations vary a little
       from process to process), giving each phoneme's time in that audio;
    2. received frames are placed by their order, 40 ms each (the avatar renders
       one frame per 40 ms of audio), starting where the mouth's opening best
       follows the received loudness.
    """
    window = (start - 0.3, end + 0.3)
    speech = avatar_speech.speak(text)
    received = _received(user, *window)
    match = _warp(_features(resample_int16(speech.samples, speech.sample_rate, _RATE)), _features(received))

    def place(t: float) -> float:
        return float(match[int(np.clip(round(t * 100), 0, match.size - 1))]) / 100

    spans = [PhonemeSpan(p.phoneme, place(p.start), max(place(p.end), place(p.start) + 0.005)) for p in speech.phonemes]
    loud = 20 * np.log10(np.sqrt(_blocks(received, _FRAME_S).mean(1)) + 1e-4)
    times = np.array(user.video.times)
    pick = np.flatnonzero((times >= window[0] - 1.0) & (times <= window[1] + 1.0))
    track = track_lips([user.video.frames[i] for i in pick], FaceLandmarker.load())
    gap = np.nan_to_num(track.gap, nan=float(np.nanmedian(track.gap)))
    n = loud.size
    first = max(range(0, gap.size - n + 1), key=lambda f: float(np.corrcoef(gap[f:f + n], loud)[0, 1]))
    answer = slice(first, first + n)
    media = (np.arange(n) + 0.5) * _FRAME_S
    return bilabial_closure(LipTrack(track.gap[answer], track.width[answer], track.points[answer]), media, spans)


def _blocks(samples: np.ndarray, seconds: float) -> np.ndarray:
    per = int(seconds * _RATE)
    x = samples[: samples.size // per * per].astype(np.float64) / 32768.0
    return x.reshape(-1, per) ** 2
