"""Per-turn latency figures, computed from what the simulated user received.

Every time is ``time.monotonic()`` in the measuring process, taken when audio
or video had been received and decoded (see :mod:`facetalk.testing.simulated_user`).
Definitions (also in docs/latency.md):

- *end of user speech*: the last sample above speech level in the audio the
  user sent, placed at its play-out time;
- ``response_ms``: end of user speech → first received agent audio above
  speech level (after a barge-in: after the talked-over answer has stopped; so is ``avatar_ms``);
- ``avatar_ms``: end of user speech → first received frame whose mouth is
  open beyond its listening range;
- ``lipsync_lag_ms``: the lag of the highest peak of the correlation between
  the received agent audio's loudness and the mouth's openness over the answer
  (positive: video later than audio);
- ``barge_in_audio_stop_ms``: onset of the interrupting speech → start of the
  first 300 ms of quiet in received agent audio;
- ``barge_in_listening_ms``: same onset → first frame from which the mouth
  stays closed for 200 ms.

Two stages put the agent's own timestamps (wall clock) beside ours, which is
sound because the evaluator and the worker it starts share one machine's
clock: ``to_agent`` (end of user speech → the agent's VAD places the end of
speech: the network, the receiver's jitter buffer and the quiet tail of the
last word the VAD still hears) and ``to_user`` (the agent starts playing → the
user hears it: the audio queue to the room, the network and the jitter buffer). With
``e2e_latency`` between them they add up to ``response_ms``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..avatar.measures import pearson
from ..testing.simulated_user import SPEECH_RMS, Recording, SimulatedUser, Utterance
from .mouth import MouthRegion

__all__ = ["STAGES", "JoinResult", "TurnResult", "measure_join", "measure_turn", "voiced_bounds"]

AGENT_STAGES = ("end_of_turn_delay", "transcription_delay", "llm_node_ttft", "llm_node_ttfs", "tts_node_ttfb", "playback_latency", "e2e_latency")
"""The agent's own per-reply metrics (livekit-agents' MetricsReport), reported in ms."""

STAGES = ("to_agent", *AGENT_STAGES, "to_user")
"""Every stage of a turn's breakdown, in ms: the agent's, and the two legs between it and the user."""

_MAX_LAG_S = 0.3
_CLOSED_FRAMES = 5  # 200 ms at 25 fps


@dataclass
class TurnResult:
    """The figures of one user turn; None where a figure does not apply or was not seen."""

    index: int
    text: str
    interrupt: bool
    room: str
    speech_start: float
    speech_end: float
    speech: str = "synthetic"  # "human" for a recording
    cut_in: bool = False  # the agent's audio started before the user had finished
    response_ms: float | None = None
    avatar_ms: float | None = None
    lipsync_lag_ms: float | None = None
    barge_in_audio_stop_ms: float | None = None
    barge_in_listening_ms: float | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class JoinResult:
    room: str
    join_first_frame_ms: float | None
    join_greeting_ms: float | None
    delivered_fps: float


def voiced_bounds(utterance: Utterance, samples: np.ndarray, rate: int) -> tuple[float, float]:
    """Play-out times of the first and last speech-level sample of what the user said."""
    frame = rate // 100
    usable = samples[: len(samples) // frame * frame].astype(np.float64).reshape(-1, frame)
    loud = np.flatnonzero(np.sqrt((usable**2).mean(axis=1)) > SPEECH_RMS)
    if not len(loud):
        return utterance.start, utterance.end
    return utterance.start + loud[0] * 0.01, utterance.start + (loud[-1] + 1) * 0.01


def _mouth_threshold(openness: np.ndarray, times: np.ndarray, start: float, end: float) -> float:
    """Openness above the listening range seen while the user spoke."""
    listening = openness[(times >= start) & (times <= end)]
    base = float(np.percentile(listening, 95)) if len(listening) else 0.0
    return base + 0.02


def _lipsync_lag_ms(received: Recording, mouth: MouthRegion, start: float, end: float) -> float | None:
    frame_times, openness = mouth.openness(received.video)
    pick = (frame_times >= start) & (frame_times <= end)
    if pick.sum() < 20:
        return None
    audio_times, levels = received.audio.rms()
    smoothed = np.convolve(levels, np.ones(4) / 4, mode="same")  # 40 ms, about one frame
    lags = np.arange(-_MAX_LAG_S, _MAX_LAG_S + 1e-9, 0.01)
    corrs = np.array([pearson(openness[pick], np.interp(frame_times[pick] - lag, audio_times, smoothed))
                      for lag in lags], dtype=float)  # None (a flat envelope) becomes NaN
    if np.isnan(corrs).all():
        return None
    return float(lags[_best_peak(corrs)]) * 1000


def _best_peak(corrs: np.ndarray) -> int:
    """Index of the highest local maximum inside the range, or of the maximum if there is none.

    Speech has a syllable rhythm of 4-5 Hz, so over a short answer the
    correlation rises again towards ±300 ms; an end of the range is a peak
    only when the correlation climbs all the way to it.
    """
    filled = np.nan_to_num(corrs, nan=-2.0)
    inner = np.arange(1, filled.size - 1)
    peaks = inner[(filled[inner] >= filled[inner - 1]) & (filled[inner] >= filled[inner + 1])]
    return int(peaks[np.argmax(filled[peaks])]) if peaks.size else int(np.argmax(filled))


def measure_turn(
    received: Recording,
    mouth: MouthRegion,
    *,
    index: int,
    text: str,
    interrupt: bool,
    voiced: tuple[float, float],
    until: float,
    speech: str = "synthetic",
) -> TurnResult:
    """Figures for the turn whose speech spans ``voiced``, looking at what arrived before ``until``."""
    start, end = voiced
    result = TurnResult(index, text, interrupt, received.room_name, start, end, speech)
    if not interrupt:  # an interruption starts over the agent's audio by design
        reply_start = received.audio.first_loud(after=start)
        result.cut_in = bool(reply_start is not None and reply_start < end)
    frame_times, openness = mouth.openness(received.video)
    threshold = _mouth_threshold(openness, frame_times, start + 0.2, end)

    heard_from = end
    if interrupt:
        stopped = received.audio.first_silence(after=start)
        result.barge_in_audio_stop_ms = (stopped - start) * 1000
        # The talked-over answer may still be playing when the user stops (on a busy machine it
        # once took 1.6 s to stop): that is no response to them, the next answer is.
        heard_from = max(end, stopped)
    first_audio = received.audio.first_loud(after=heard_from)
    if first_audio is not None and first_audio < until:
        result.response_ms = (first_audio - end) * 1000
        answer_end = received.audio.loud_span(after=end)[1]
        result.lipsync_lag_ms = _lipsync_lag_ms(received, mouth, first_audio, min(answer_end, until))
    opened = np.flatnonzero((frame_times > heard_from) & (frame_times < until) & (openness > threshold))
    if len(opened):
        result.avatar_ms = (frame_times[opened[0]] - end) * 1000

    if interrupt:
        after = np.flatnonzero(frame_times > start)
        closed = openness[after] <= threshold
        for i in range(len(after) - _CLOSED_FRAMES):
            if closed[i : i + _CLOSED_FRAMES].all():
                result.barge_in_listening_ms = (frame_times[after[i]] - start) * 1000
                break

    # The user's message carries the end-of-turn stages, the agent's reply the rest.
    # They are matched by the agent's own stamps (wall clock, shared with ours):
    # an interrupted reply's metrics only arrive after the next turn has begun.
    to_monotonic = time.monotonic() - time.time()
    heard_end = _turn_metrics(received, "user", "stopped_speaking_at", start, until, to_monotonic)
    reply = _turn_metrics(received, "assistant", "started_speaking_at", end, until, to_monotonic)
    for metrics in (heard_end, reply):
        result.stages_ms |= {k: metrics[k] * 1000 for k in AGENT_STAGES if k in metrics}
    if heard_end:
        result.stages_ms["to_agent"] = (heard_end["stopped_speaking_at"] + to_monotonic - end) * 1000
    if reply and first_audio is not None and result.response_ms is not None:
        result.stages_ms["to_user"] = (first_audio - reply["started_speaking_at"] - to_monotonic) * 1000
    return result


def _turn_metrics(
    received: Recording, role: str, stamp: str, after: float, before: float, to_monotonic: float
) -> dict:
    """The metrics of the first ``role`` message whose ``stamp`` (wall clock) falls in (after, before)."""
    for _, report in received.turn_metrics:
        metrics = report.get("metrics", {})
        if report.get("role") == role and stamp in metrics and after < metrics[stamp] + to_monotonic < before:
            return metrics
    return {}


def measure_join(user: SimulatedUser) -> JoinResult:
    """Join figures, and the video frame rate delivered over the whole session."""
    first_frame = user.video.times[0] if user.video.times else None
    greeting = user.audio.first_loud(after=user.joined_at)
    span = (user.video.times[-1] - user.video.times[0]) if len(user.video.times) > 1 else 0.0
    return JoinResult(
        room=user.room_name,
        join_first_frame_ms=None if first_frame is None else (first_frame - user.joined_at) * 1000,
        join_greeting_ms=None if greeting is None else (greeting - user.joined_at) * 1000,
        delivered_fps=(len(user.video.times) - 1) / span if span > 0 else 0.0,
    )
