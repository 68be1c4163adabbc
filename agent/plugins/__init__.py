"""FaceTalk's speech plugins, shaped like livekit-agents plugins (``livekit.plugins.*``).

One package per provider: :mod:`.webrtcvad` (a ``vad.VAD``), :mod:`.faster_whisper`
(a non-streaming ``stt.STT``) and :mod:`.piper` (a ``tts.TTS``). Each fills in the
narrow hook of its livekit base class, keeps its options in a private dataclass,
and knows nothing of FaceTalk's config: :mod:`facetalk.agent.providers` maps the
pipeline file onto their constructors. Streaming recognition (interims and
preflights) is not a plugin's job: :mod:`facetalk.agent.streaming_stt` adds it
to any non-streaming STT, driven by the session's own VAD.
"""
