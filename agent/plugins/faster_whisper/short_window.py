"""Whisper decoding of a short utterance in a short window instead of a 30 s one.

Whisper was trained on 30 s windows, and faster-whisper pads every clip to one,
so for a 2 s question on the CPU most of the decode is spent encoding silence
(tiny.en on two cores: about 0.27 s, of which the encoder takes 0.16 s and
cross-attention over 1500 frames most of the rest). CTranslate2 encodes
shorter feature windows too, and an 8 s window decodes the same question in
about 0.05 s.

A short window can make Whisper loop ("Hi. Hi. Hi. …"), because it never saw
speech end that early in a window. Three guards keep the transcript as good as
the 30 s one (over 60 piper utterances, clean and noisy, the word error rate
stayed within 0.03 of it):

- the window is never shorter than ``MIN_WINDOW_S``; at 5 s tiny.en looped on
  one word in twenty;
- decoding runs with timestamps, and text that the model places after the
  audio has ended is dropped;
- the decode may run to only about 15 tokens per second of audio, and a
  transcript cut off there mid-segment, or that looks like a loop (Whisper's own
  compression-ratio test), is refused, and the caller decodes the 30 s window.

faster-whisper's public API has no short window, so this module is the ONE place
that uses its internals: ``WhisperModel.model`` (the CTranslate2 model:
``is_multilingual``, ``encode``, ``generate``), ``hf_tokenizer``,
``feature_extractor``, and ``Tokenizer``, ``get_compression_ratio`` and
``get_suppressed_tokens``, which are outside faster-whisper's ``__all__``. An
upgrade that removes them fails this module's import with a message that says
so; one that changes them at run time makes :func:`decode_in_short_window` log
a warning and fall back to the 30 s window. ``tests/test_whisper_window.py``
checks :func:`missing_internals` against the installed version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel

from facetalk.audio import SPEECH_RATE

try:
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens
except ImportError as e:  # pragma: no cover - only on a faster-whisper upgrade
    raise ImportError(
        f"this faster-whisper no longer has the internals the short-window decode uses ({e}); "
        "update facetalk/agent/plugins/faster_whisper/short_window.py, or pin faster-whisper "
        "to the version in pyproject.toml"
    ) from e

__all__ = [
    "MIN_WINDOW_S",
    "WindowTranscript",
    "decode_in_short_window",
    "is_multilingual",
    "missing_internals",
]

logger = logging.getLogger(__name__)

MIN_WINDOW_S = 8.0
"""The shortest window decoded; shorter ones made tiny.en loop on short words."""

TRAILING_SILENCE_S = 0.5
"""Silence after the utterance inside the window, so its last word is heard whole."""

LOOP_COMPRESSION_RATIO = 2.4
"""Whisper's threshold (``compression_ratio_threshold``) above which text is a loop."""

# Whisper's rule (no_speech_threshold, log_prob_threshold), as faster-whisper
# applies it: text the model thinks is probably not speech, and is unsure of, is
# a hallucination on noise (a cough heard as "Thank you.") and is dropped.
NO_SPEECH_PROB = 0.6
"""Above this probability that the window holds no speech, unsure text is dropped."""
UNSURE_LOGPROB = -1.0
"""Below this mean token log-probability, text is unsure."""

_FULL_WINDOW_S = 30.0
_SECONDS_PER_TIMESTAMP = 0.02
_MAX_TOKENS = 400  # Whisper's decoder holds 448 positions, the prompt included
_TOKENS_PER_SECOND = 15  # far above speech (about 4 words/s) with its timestamps


@dataclass(frozen=True)
class WindowTranscript:
    """What a short-window decode heard.

    Attributes:
        text: the transcript, stripped.
        avg_logprob: the decoder's mean log-probability per token.
    """

    text: str
    avg_logprob: float


def missing_internals(model: WhisperModel) -> list[str]:
    """The faster-whisper internals this module uses that ``model`` lacks (empty: none)."""
    wanted = {
        "WhisperModel.hf_tokenizer": (model, "hf_tokenizer"),
        "WhisperModel.model": (model, "model"),
        "WhisperModel.feature_extractor": (model, "feature_extractor"),
    }
    missing = [name for name, (obj, attribute) in wanted.items() if not hasattr(obj, attribute)]
    inner = {
        "WhisperModel.model.is_multilingual": (getattr(model, "model", None), "is_multilingual"),
        "WhisperModel.model.encode": (getattr(model, "model", None), "encode"),
        "WhisperModel.model.generate": (getattr(model, "model", None), "generate"),
        "WhisperModel.feature_extractor.hop_length": (
            getattr(model, "feature_extractor", None),
            "hop_length",
        ),
    }
    missing += [name for name, (obj, attribute) in inner.items() if not hasattr(obj, attribute)]
    for name in ("sot_sequence", "timestamp_begin", "decode"):
        if not hasattr(Tokenizer, name):
            missing.append(f"faster_whisper.tokenizer.Tokenizer.{name}")
    return missing


def is_multilingual(model: WhisperModel) -> bool:
    """Whether the model can transcribe other languages than English (and detect them)."""
    return bool(model.model.is_multilingual)


def decode_in_short_window(
    model: WhisperModel, audio: np.ndarray, *, language: str, beam_size: int
) -> WindowTranscript | None:
    """Transcribe 16 kHz float32 ``audio`` in a window just long enough for it.

    Returns ``None`` when a short window does not apply (the audio needs the
    full 30 s window) or its result looks unreliable; decode the 30 s window
    then. The text is empty when Whisper judges the audio not to be speech.
    The language must be known: detecting it needs the full window.
    """
    try:
        return _decode(model, audio, language=language, beam_size=beam_size)
    except (AttributeError, TypeError) as e:  # faster-whisper's internals changed
        logger.warning(
            "short-window decoding failed (%s: %s); decoding in the 30 s window. "
            "faster-whisper's internals changed: see %s",
            type(e).__name__,
            e,
            __name__,
        )
        return None


def _decode(
    model: WhisperModel, audio: np.ndarray, *, language: str, beam_size: int
) -> WindowTranscript | None:
    duration = audio.size / SPEECH_RATE
    window_s = max(MIN_WINDOW_S, duration + TRAILING_SILENCE_S)
    if window_s >= _FULL_WINDOW_S:
        return None
    tokenizer = Tokenizer(
        model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
    )
    # A loop runs to the length limit; one fitted to the audio ends it soon.
    max_tokens = min(_MAX_TOKENS, 30 + round(_TOKENS_PER_SECOND * duration))
    result = model.model.generate(
        model.model.encode(_features(model, audio, window_s)),
        [tokenizer.sot_sequence],  # no <|notimestamps|>: the timestamps expose a loop
        beam_size=beam_size,
        max_length=max_tokens,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        return_scores=True,
        return_no_speech_prob=True,
    )[0]
    tokens = result.sequences_ids[0]
    text = _text_before(tokens, tokenizer, end_s=duration, finished=len(tokens) < max_tokens)
    if text is None or get_compression_ratio(text) > LOOP_COMPRESSION_RATIO:
        return None
    avg_logprob = result.scores[0]
    if result.no_speech_prob > NO_SPEECH_PROB and avg_logprob < UNSURE_LOGPROB:
        text = ""
    return WindowTranscript(text=text.strip(), avg_logprob=avg_logprob)


def _features(model: WhisperModel, audio: np.ndarray, window_s: float) -> ctranslate2.StorageView:
    """Log-mel features of ``audio`` followed by silence up to ``window_s``."""
    samples = round(window_s * SPEECH_RATE)
    padded = np.zeros(samples, np.float32)
    padded[: audio.size] = audio
    frames = samples // model.feature_extractor.hop_length
    features = model.feature_extractor(padded)[:, :frames]
    return ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None]))


def _text_before(tokens: list[int], tokenizer: Tokenizer, *, end_s: float, finished: bool) -> str | None:
    """The text of the timestamped segments that start before ``end_s``.

    Whisper may end its last segment without a closing timestamp; that counts
    when the decoder stopped by itself (``finished``). ``None`` when it was
    stopped by the length limit in mid-segment, which is what a loop does.
    """
    texts: list[str] = []
    segment: list[int] = []
    start: float | None = None
    for token in tokens:
        if token < tokenizer.timestamp_begin:
            segment.append(token)
            continue
        time = (token - tokenizer.timestamp_begin) * _SECONDS_PER_TIMESTAMP
        if start is None:
            start = time
        else:  # the segment's closing timestamp
            if start < end_s:
                texts.append(tokenizer.decode(segment))
            start, segment = None, []
    if segment:
        if not finished:
            return None
        if start is None or start < end_s:
            texts.append(tokenizer.decode(segment))
    return "".join(texts)
