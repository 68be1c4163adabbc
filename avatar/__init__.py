"""The avatar generators (CPU engine, diffusion engine) and their streaming runtime.

``create_video_generator`` is the one entry point the agent needs::

    gen = create_video_generator(persona, pipeline.avatar)
    publisher = AvatarPublisher(room, audio_recv=..., video_gen=gen)  # facetalk.agent.avatar_publisher

The generator yields RGB24 video at ``avatar.resolution`` square and
``avatar.fps``, and int16 mono audio at :data:`SAMPLE_RATE` (24 kHz), whatever
the input audio's rate and channels.

The streaming runtime (and with it livekit) is imported on first use of
``AvatarVideoGenerator``, ``FrameInfo`` or ``create_video_generator``, so the
engines and the diffusion bench import on a machine without livekit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import AvatarConfig, PersonaConfig
from .audio import CHANNELS, SAMPLE_RATE
from .engine import Clip, CpuEngine, FrameEngine
from .labels import Label
from .motion import MotionParams
from .persona import PersonaPack, PortraitError, prepare_persona

if TYPE_CHECKING:
    from .runtime import AvatarVideoGenerator, FrameInfo

__all__ = [
    "CHANNELS",
    "SAMPLE_RATE",
    "AvatarVideoGenerator",
    "Clip",
    "CpuEngine",
    "FrameEngine",
    "FrameInfo",
    "Label",
    "MotionParams",
    "PersonaPack",
    "PortraitError",
    "create_video_generator",
    "prepare_persona",
]


def __getattr__(name: str) -> object:
    """``AvatarVideoGenerator`` and ``FrameInfo``, imported from the runtime on first use (PEP 562)."""
    if name in ("AvatarVideoGenerator", "FrameInfo"):
        from . import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_video_generator(persona: PersonaConfig, avatar: AvatarConfig, *, seed: int = 0) -> AvatarVideoGenerator:
    """A ready generator for ``persona``, preparing (or loading the cached) persona pack.

    Blocking (pack preparation can take a few hundred ms the first time): call
    it at worker prewarm or in a thread.
    """
    from .runtime import AvatarVideoGenerator

    pack = prepare_persona(persona.portrait, resolution=avatar.resolution)
    if avatar.engine == "diffusion":
        from .diffusion import DiffusionEngine, DiffusionOptions  # needs the diffusion extra

        options = DiffusionOptions.for_checkpoint(avatar.checkpoint, seed=seed, devices=tuple(avatar.devices),
                                                  dtype=avatar.dtype, decoder=avatar.decoder,
                                                  decoder_checkpoint=avatar.decoder_checkpoint)
        diffusion = DiffusionEngine(pack, options=options,
                                    expression=persona.expression)
        return AvatarVideoGenerator(diffusion, fps=avatar.fps, expression=persona.expression,
                                    max_clip_frames=diffusion.max_clip_frames)
    engine = CpuEngine(pack, fps=avatar.fps, seed=seed, expression=persona.expression)
    return AvatarVideoGenerator(engine, fps=avatar.fps, expression=persona.expression)
