"""Voice activity detection with webrtcvad, as a livekit-agents ``vad.VAD``.

webrtcvad is the GMM detector from WebRTC: tiny, CPU-only and without a model
file, which makes it the default that drives turn-taking. It only says "speech"
or "not speech" for one 10/20/30 ms frame, so this module adds what AgentSession
expects of a VAD, with the same semantics as the Silero plugin:

- audio at any rate and channel count is downmixed and resampled to 16 kHz mono
  (by :mod:`facetalk.audio`), then judged in 30 ms windows;
- speech starts after ``min_speech_duration`` of consecutive speech windows and
  ends after ``min_silence_duration`` of consecutive non-speech windows;
- with ``quiet_tail_db`` set, a window more than that below the loudest
  recent window counts as silence, whatever webrtcvad says. webrtcvad calls breaths, soft
  endings and telephone hiss 30-40 dB below the words speech. On the 21 clips
  of the human speech set, speech ended 100 / 210 ms (p50 / p90, max 350)
  after the last word was heard; with the gate 10 / 80 ms (max 100), and no
  utterance split differently. piper's voice gains too (about 140 → 20 ms);
- every window yields an ``INFERENCE_DONE`` event (which drives interruption and
  the user's speaking state); ``START_OF_SPEECH`` and ``END_OF_SPEECH`` carry the
  buffered speech, with ``prefix_padding_duration`` of audio before the onset, at
  the input sample rate.

A window takes about 2 µs to judge, far less than a hop to an executor thread,
so detection runs on the event loop; a warning is logged if a pushed frame ever
takes longer to process than the audio it holds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

import numpy as np
import webrtcvad
from livekit import rtc
from livekit.agents import utils, vad
from livekit.agents.types import NOT_GIVEN, NotGivenOr
from livekit.agents.utils import is_given

from facetalk.audio import SPEECH_RATE, MonoResampler, mono_int16

__all__ = ["WebRTCVAD", "WebRTCVADStream"]

logger = logging.getLogger(__name__)

WINDOW_SAMPLES = SPEECH_RATE * 30 // 1000
"""One webrtcvad window: 30 ms at 16 kHz, 480 samples."""
WINDOW_DURATION = WINDOW_SAMPLES / SPEECH_RATE

QUIET_TAIL_DB = 30.0
"""How far below the utterance's loudest window a window counts as silence.

Measured on the human speech set (``facetalk eval fetch-speech``), whose words
peak at an RMS of about 5000: webrtcvad (aggressiveness 2) still calls windows
of RMS 20-150 speech after the last word. 30 dB below the peak is an RMS of
about 160: under every syllable's nucleus, over those tails."""

QUIET_TAIL_FADE_DB = 1.5
"""dB per second by which the remembered loudness fades, so that a quieter
speaker after a loud one is heard, while a hiss that outlasts the words stays
silence for seconds rather than starting a new utterance."""
_FADE_PER_WINDOW = 10 ** (-QUIET_TAIL_FADE_DB * WINDOW_DURATION / 20)


@dataclass
class _VADOptions:
    aggressiveness: int
    min_speech_duration: float
    min_silence_duration: float
    prefix_padding_duration: float
    max_buffered_speech: float
    quiet_tail_db: float | None


def _check(opts: _VADOptions) -> _VADOptions:
    if opts.aggressiveness not in (0, 1, 2, 3):
        raise ValueError(f"aggressiveness must be 0, 1, 2 or 3, got {opts.aggressiveness}")
    for name in ("min_speech_duration", "min_silence_duration", "max_buffered_speech"):
        if getattr(opts, name) <= 0:
            raise ValueError(f"{name} must be > 0 seconds, got {getattr(opts, name)}")
    if opts.quiet_tail_db is not None and opts.quiet_tail_db <= 0:
        raise ValueError(f"quiet_tail_db must be > 0 dB or None, got {opts.quiet_tail_db}")
    if opts.prefix_padding_duration < 0:
        raise ValueError(
            f"prefix_padding_duration must be >= 0 seconds, got {opts.prefix_padding_duration}"
        )
    return opts


class WebRTCVAD(vad.VAD):
    """webrtcvad behind livekit-agents' VAD interface; cheap to build, no model to load."""

    def __init__(
        self,
        *,
        aggressiveness: int = 2,
        min_speech_duration: float = 0.09,
        min_silence_duration: float = 0.25,
        prefix_padding_duration: float = 0.15,
        max_buffered_speech: float = 60.0,
        quiet_tail_db: float | None = None,
    ) -> None:
        """
        Args:
            aggressiveness: 0 (lets most audio through as speech) to 3 (filters
                non-speech hardest). 2 suits a quiet room with a headset.
            min_speech_duration: seconds of consecutive speech before the start of
                speech is reported, so clicks and coughs do not take the turn.
            min_silence_duration: seconds of consecutive silence before the end of
                speech is reported; the pauses between words must be shorter. The
                default is the pipeline's (``vad.min_silence_ms``, 250 ms): short
                enough for a quick reply, long enough for pauses between words.
            prefix_padding_duration: seconds of audio kept before the detected
                onset, so the first phoneme reaches the recogniser.
            max_buffered_speech: cap, in seconds, on the speech buffered for one
                utterance; later audio is still detected but not kept.
            quiet_tail_db: a window this many dB quieter than the loudest
                recent window is silence; None (the default) leaves webrtcvad
                alone. :data:`QUIET_TAIL_DB` is the measured choice. Off by
                default because it also ends speech at pauses of
                ``min_silence_duration`` that webrtcvad bridged (piper's commas),
                which ``turn.end_of_turn: transcript`` tolerates and ``silence``
                does not.
        """
        super().__init__(capabilities=vad.VADCapabilities(update_interval=WINDOW_DURATION))
        self._opts = _check(
            _VADOptions(
                aggressiveness=aggressiveness,
                min_speech_duration=min_speech_duration,
                min_silence_duration=min_silence_duration,
                prefix_padding_duration=prefix_padding_duration,
                max_buffered_speech=max_buffered_speech,
                quiet_tail_db=quiet_tail_db,
            )
        )

    @property
    def model(self) -> str:
        return f"webrtcvad-{self._opts.aggressiveness}"

    @property
    def provider(self) -> str:
        return "webrtcvad"

    @property
    def min_silence_duration(self) -> float:
        """Read by AgentSession to check the end-of-turn detector's timing."""
        return self._opts.min_silence_duration

    def update_options(
        self,
        *,
        aggressiveness: NotGivenOr[int] = NOT_GIVEN,
        min_speech_duration: NotGivenOr[float] = NOT_GIVEN,
        min_silence_duration: NotGivenOr[float] = NOT_GIVEN,
        prefix_padding_duration: NotGivenOr[float] = NOT_GIVEN,
        max_buffered_speech: NotGivenOr[float] = NOT_GIVEN,
        quiet_tail_db: NotGivenOr[float | None] = NOT_GIVEN,
    ) -> None:
        """Change the options of streams created from now on; running ones keep theirs."""
        changes = {
            name: value
            for name, value in (
                ("aggressiveness", aggressiveness),
                ("min_speech_duration", min_speech_duration),
                ("min_silence_duration", min_silence_duration),
                ("prefix_padding_duration", prefix_padding_duration),
                ("max_buffered_speech", max_buffered_speech),
                ("quiet_tail_db", quiet_tail_db),
            )
            if is_given(value)
        }
        self._opts = _check(replace(self._opts, **changes))

    def stream(self) -> WebRTCVADStream:
        return WebRTCVADStream(self, replace(self._opts))


class WebRTCVADStream(vad.VADStream):
    """Push frames in, read ``VADEvent``s out; ``flush()`` starts a fresh segment."""

    def __init__(self, vad_: WebRTCVAD, opts: _VADOptions) -> None:
        super().__init__(vad_)
        self._opts = opts

    @utils.log_exceptions(logger=logger)
    async def _main_task(self) -> None:
        segmenter: _Segmenter | None = None
        input_rate = 0
        async for item in self._input_ch:
            if isinstance(item, self._FlushSentinel):
                segmenter = None
                continue
            if not input_rate:
                input_rate = item.sample_rate
            elif item.sample_rate != input_rate:
                logger.error(
                    "dropping a %d Hz frame: this stream already receives %d Hz",
                    item.sample_rate,
                    input_rate,
                )
                continue
            if segmenter is None:
                segmenter = _Segmenter(self._opts, input_rate)

            started = time.perf_counter()
            for event in segmenter.push(item):
                self._event_ch.send_nowait(event)
            elapsed = time.perf_counter() - started
            if elapsed > item.duration:
                logger.warning(
                    "webrtcvad is slower than realtime: %.1f ms for %.1f ms of audio",
                    elapsed * 1000,
                    item.duration * 1000,
                )


class _Segmenter:
    """Turns one segment's audio into VAD events; a flush replaces it with a new one.

    Mirrors the state machine of livekit's Silero stream (``pub_*`` values are
    what the events report; the ``*_run`` values count consecutive windows of
    one kind, which is what the thresholds are compared against).
    """

    def __init__(self, opts: _VADOptions, input_rate: int) -> None:
        self._opts = opts
        self._input_rate = input_rate
        self._detector = webrtcvad.Vad(opts.aggressiveness)
        self._resampler = MonoResampler(SPEECH_RATE, quality="quick")
        self._smoothed = utils.ExpFilter(alpha=0.35)
        self._quiet_ratio = (
            None if opts.quiet_tail_db is None else 10 ** (-opts.quiet_tail_db / 20)
        )
        self._loudness = 0.0  # RMS of recent speech: the loudest window, fading by QUIET_TAIL_FADE_DB

        # input-rate samples not yet assigned to a window, and 16 kHz samples not yet judged
        self._pending_input = np.zeros(0, dtype=np.int16)
        self._pending_speech = np.zeros(0, dtype=np.int16)
        self._input_per_window = WINDOW_SAMPLES * input_rate / SPEECH_RATE
        self._input_carry = 0.0  # fraction of an input sample owed to the next window

        self._padding_samples = int(opts.prefix_padding_duration * input_rate)
        self._buffer = np.zeros(
            int(opts.max_buffered_speech * input_rate) + self._padding_samples, dtype=np.int16
        )
        self._buffered = 0
        self._buffer_full_warned = False

        self._speaking = False
        self._pub_speech = 0.0
        self._pub_silence = 0.0
        self._windows = 0
        self._speech_run = 0.0
        self._silence_run = 0.0

    def push(self, frame: rtc.AudioFrame) -> list[vad.VADEvent]:
        """Events for every complete 30 ms window the frame completes, in order."""
        mono = mono_int16(frame)
        self._pending_input = np.concatenate([self._pending_input, mono])
        resampled = self._resampler.push_samples(mono, self._input_rate)
        self._pending_speech = np.concatenate([self._pending_speech, resampled])

        events: list[vad.VADEvent] = []
        while self._pending_speech.size >= WINDOW_SAMPLES:
            window = self._pending_speech[:WINDOW_SAMPLES]
            self._pending_speech = self._pending_speech[WINDOW_SAMPLES:]
            events.extend(self._judge(window))
        return events

    def _take_input(self) -> np.ndarray:
        """The input-rate samples that correspond to one window, drift-free."""
        wanted = self._input_per_window + self._input_carry
        count = int(wanted)
        self._input_carry = wanted - count
        taken = self._pending_input[:count]
        self._pending_input = self._pending_input[count:]
        return taken

    def _judge(self, window: np.ndarray) -> list[vad.VADEvent]:
        started = time.perf_counter()
        is_speech = self._is_speech(window)
        inference_duration = time.perf_counter() - started
        probability = self._smoothed.apply(exp=1.0, sample=1.0 if is_speech else 0.0)

        chunk = self._take_input()
        self._append(chunk)
        self._windows += 1
        if self._speaking:
            self._pub_speech += WINDOW_DURATION
        else:
            self._pub_silence += WINDOW_DURATION

        events = [
            self._event(
                vad.VADEventType.INFERENCE_DONE,
                frames=[self._frame(chunk)],
                probability=probability,
                inference_duration=inference_duration,
                raw_accumulated_silence=self._silence_run,
                raw_accumulated_speech=self._speech_run,
            )
        ]

        if is_speech:
            self._speech_run += WINDOW_DURATION
            self._silence_run = 0.0
            if not self._speaking and self._speech_run >= self._opts.min_speech_duration:
                self._speaking = True
                self._pub_silence = 0.0
                self._pub_speech = self._speech_run
                events.append(
                    self._event(vad.VADEventType.START_OF_SPEECH, frames=[self._speech_frame()])
                )
        else:
            self._silence_run += WINDOW_DURATION
            self._speech_run = 0.0
            if not self._speaking:
                self._keep_only_padding()
            elif self._silence_run >= self._opts.min_silence_duration:
                self._speaking = False
                self._pub_silence = self._silence_run
                self._pub_speech = max(0.0, self._pub_speech - self._silence_run)
                events.append(
                    self._event(vad.VADEventType.END_OF_SPEECH, frames=[self._speech_frame()])
                )
                self._pub_speech = 0.0
                self._keep_only_padding()
        return events

    def _is_speech(self, window: np.ndarray) -> bool:
        """webrtcvad's verdict, overruled to silence on a quiet tail."""
        if not self._detector.is_speech(window.tobytes(), SPEECH_RATE):
            return False
        if self._quiet_ratio is None:
            return True
        rms = float(np.sqrt(np.mean(window.astype(np.float32) ** 2)))
        self._loudness = max(self._loudness * _FADE_PER_WINDOW, rms)
        return rms >= self._loudness * self._quiet_ratio

    def _event(self, kind: vad.VADEventType, **fields: object) -> vad.VADEvent:
        return vad.VADEvent(
            type=kind,
            samples_index=self._windows * WINDOW_SAMPLES,
            timestamp=self._windows * WINDOW_DURATION,
            speech_duration=self._pub_speech,
            silence_duration=self._pub_silence,
            speaking=self._speaking,
            **fields,  # type: ignore[arg-type]
        )

    def _append(self, chunk: np.ndarray) -> None:
        room = self._buffer.size - self._buffered
        kept = chunk[:room]
        self._buffer[self._buffered : self._buffered + kept.size] = kept
        self._buffered += kept.size
        if kept.size < chunk.size and not self._buffer_full_warned:
            self._buffer_full_warned = True
            logger.warning(
                "max_buffered_speech (%.0f s) reached; the rest of this utterance is not kept",
                self._opts.max_buffered_speech,
            )

    def _keep_only_padding(self) -> None:
        """Outside speech, only the last ``prefix_padding_duration`` is worth keeping."""
        if self._buffered <= self._padding_samples:
            return
        tail = self._buffer[self._buffered - self._padding_samples : self._buffered].copy()
        self._buffer[: tail.size] = tail
        self._buffered = tail.size
        self._buffer_full_warned = False

    def _speech_frame(self) -> rtc.AudioFrame:
        return self._frame(self._buffer[: self._buffered])

    def _frame(self, samples: np.ndarray) -> rtc.AudioFrame:
        return rtc.AudioFrame(
            data=samples.tobytes(),
            sample_rate=self._input_rate,
            num_channels=1,
            samples_per_channel=samples.size,
        )
