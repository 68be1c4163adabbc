"""webrtcvad as a livekit-agents VAD plugin: tiny, CPU-only, no model file."""

from .vad import WebRTCVAD, WebRTCVADStream

__all__ = ["WebRTCVAD", "WebRTCVADStream"]
