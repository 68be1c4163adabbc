"""faster-whisper as a livekit-agents STT plugin (recognition of whole utterances)."""

from .stt import BUNDLED_MODEL, FasterWhisperSTT, speech_float32

__all__ = ["BUNDLED_MODEL", "FasterWhisperSTT", "speech_float32"]
