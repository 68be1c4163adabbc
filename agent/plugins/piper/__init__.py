"""piper as a livekit-agents TTS plugin: a small VITS voice on the CPU, with phoneme timing."""

from .tts import BUNDLED_VOICE, PiperChunkedStream, PiperSynthesizeStream, PiperTTS

__all__ = ["BUNDLED_VOICE", "PiperChunkedStream", "PiperSynthesizeStream", "PiperTTS"]
