"""FaceTalk's speech plugins, shaped like livekit-agents plugins (``livekit.plugins.*``).

One package per provider: :mod:`.webrtcvad` (a ``vad.VAD``), :mod:`.faster_whisper`
(a non-streaming ``stt.STT``) and :mod:`.piper` (a ``tts.TTS``). Each fills in the
narrow hook of its livekit base class, keeps its options in a private dataclass,
and knows nothing of FaceTalk's config: :mod:`facetalk.agent.providers` maps the
pipeline file onto their constructors. Streaming recognition (interims and
preflights) is not a plugin's job: :mod:`facetalk.agent.vad_stream_adapter` adds it
to any non-streaming STT, driven by the session's own VAD.

Inside a hook a plugin uses what the livekit base class gives the hook and
nothing else, as livekit's own plugins do: a VAD or STT stream reads
``self._input_ch`` and writes ``self._event_ch`` (there is no public way to),
a TTS stream writes through the ``output_emitter`` passed to ``_run``. No
plugin reads or overrides any other private member of a livekit or
faster-whisper object; faster-whisper's internals are used in one module,
:mod:`.faster_whisper.short_window`, with a test that names what an upgrade broke.
"""
