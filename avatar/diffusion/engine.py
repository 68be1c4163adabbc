"""The diffusion engine: a :class:`~facetalk.avatar.engine.FrameEngine` the streaming runtime drives.

One :meth:`DiffusionEngine.render_clip` call is four stages — audio windows,
denoising (with the previous clip's motion frames), VAE decode, and output
frames resized to the persona's resolution. The stages are separate methods
so :mod:`.parallel` can run them on threads and devices with bounded queues;
:mod:`.clip_runner` runs denoise and decode at fixed clip lengths (CUDA
graphs on a GPU), prepared when the engine is built.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch

from ...config import Expression
from ...errors import FaceTalkError
from ..audio import AudioFeatures
from ..engine import Clip
from ..labels import Label
from ..persona import PersonaPack
from ..renderer import CpuRenderer
from .audio_windows import AudioWindows
from .checkpoint import checkpoint_config, init_from_sd15, load_checkpoint
from .components import DiffusionModels, build_models
from .configs import DiffusionConfig, get_config
from .clip_runner import ClipAudio, ClipLatents, ClipRunner, clip_lengths
from .drift import DriftGuard
from .expression import posed_reference
from .light_decoder import BUNDLED_LIGHT_DECODER, LightDecoder, load_light_decoder
from .pipeline import ReferenceState, TalkingFacePipeline
from .precision import Dtype, Quantization, check_dtype, check_quantization
from .quantize import quantize
from .sampling import Sampler

__all__ = ["BUNDLED_CHECKPOINT", "DiffusionEngine", "DiffusionOptions", "check_device", "load_models"]

logger = logging.getLogger(__name__)

BUNDLED_CHECKPOINT = Path(__file__).parent / "checkpoint"
"""The tiny checkpoint shipped in the repository (written by the training issue)."""


@dataclass(frozen=True)
class DiffusionOptions:
    """How the diffusion engine runs.

    Attributes:
        config: ``tiny``, ``base-384`` or ``base-512``.
        checkpoint: a folder from ``DiffusionModels.save_pretrained``; ``None`` = the bundled one
            for ``tiny`` if present, else random weights (with a warning).
        init_from: an SD1.5-format folder whose UNet/VAE weights initialise the models.
        sampler: ``lcm`` (1/2/4 steps) or ``ddim`` (teacher).
        steps: sampling steps.
        devices: one device, or two (denoise, decode) for pipeline parallelism.
        dtype: ``bf16``, ``fp16`` or ``fp32``; ``None``: bf16 on GPUs that have it, fp32 on the CPU.
        quantize: ``none``; ``int8`` (dynamic on the CPU, torchao weight-only on a GPU);
            ``fp8`` (torchao, Ada/Hopper GPUs): the denoiser's and ReferenceNet's linears.
        graphs: capture each clip length as CUDA graphs at start-up (``None``: on CUDA devices).
        decoder: ``kl`` (the VAE's decoder) or ``light`` (a TAESD-shaped decoder distilled from it).
        decoder_checkpoint: the light decoder's folder; ``None``: the bundled one (``tiny`` only).
        drift: the long-duration guards.
        seed: weights (when random) and sampling noise (drawn on the denoising device).
    """

    config: str = "tiny"
    checkpoint: Path | None = None
    init_from: Path | None = None
    sampler: Sampler = "lcm"
    steps: int = 2
    devices: tuple[str, ...] = ("cpu",)
    dtype: Dtype | None = None
    quantize: Quantization = "none"
    graphs: bool | None = None
    decoder: Literal["kl", "light"] = "kl"
    decoder_checkpoint: Path | None = None
    drift: DriftGuard = field(default_factory=DriftGuard)
    seed: int = 0

    @classmethod
    def for_checkpoint(cls, checkpoint: Path | None, **options: object) -> DiffusionOptions:
        """Options whose ``config`` is the one ``checkpoint`` was saved for (``tiny`` when unset)."""
        config = checkpoint_config(checkpoint) if checkpoint is not None else "tiny"
        return cls(config=config, checkpoint=checkpoint, **options)  # type: ignore[arg-type]


def check_device(name: str) -> torch.device:
    """``name`` as a device that exists here; a :class:`FaceTalkError` otherwise."""
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise FaceTalkError(f"bad device {name!r}: {e}", hint="use cpu, cuda or cuda:N") from e
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise FaceTalkError(f"device {name!r} does not exist here ({count} CUDA device(s))",
                                hint="use --devices cpu, or an index below the GPU count")
    elif device.type != "cpu":
        raise FaceTalkError(f"device type {device.type!r} is not supported", hint="use cpu or cuda:N")
    return device


def load_models(config: DiffusionConfig, options: DiffusionOptions) -> DiffusionModels:
    """The models ``options`` name: its checkpoint (the bundled one for ``tiny`` when unset), else random
    weights, SD1.5-initialised when ``options.init_from`` is set."""
    checkpoint = options.checkpoint
    if checkpoint is None and config.name == "tiny" and BUNDLED_CHECKPOINT.is_dir():
        checkpoint = BUNDLED_CHECKPOINT
    if checkpoint is not None:
        return load_checkpoint(checkpoint, config)
    models = build_models(config, seed=options.seed)
    if options.init_from is not None:
        return init_from_sd15(models, options.init_from)
    logger.warning("diffusion engine %r: no checkpoint, random weights (frames will be noise)", config.name)
    return models


class DiffusionEngine:
    """Audio-driven portrait diffusion, LLIA-style, behind the runtime's engine seam.

    Construction loads the models and prepares every clip length (CUDA graphs
    on a GPU), so the first user clip runs at full speed; ``startup_s`` says
    how long that preparation took.

    Args:
        pack: the prepared persona; frames are returned at its resolution.
        options: models, sampling, devices, precision, quantization, drift guards.
        expression: initial expression controls (usually the persona's).
        models: already-built models (tests, training); otherwise per ``options``.
            The pipeline moves and casts them in place: pass a copy to keep the originals.
        light_decoder: an already-built light decoder; otherwise per ``options.decoder``.

    Raises:
        FaceTalkError: unknown config, missing or mismatched checkpoint, bad
            step count, nonexistent device, a dtype or quantization the device cannot run,
            a light decoder for another config.
    """

    def __init__(self, pack: PersonaPack, *, options: DiffusionOptions | None = None,
                 expression: Expression | None = None, models: DiffusionModels | None = None,
                 light_decoder: LightDecoder | None = None) -> None:
        self.options = options = options or DiffusionOptions()
        self.config = get_config(options.config)
        if not 1 <= len(options.devices) <= 2:
            raise FaceTalkError(f"{len(options.devices)} devices given", hint="pass one device, or two: denoise,decode")
        devices = [check_device(d) for d in options.devices]
        dtype = check_dtype(options.dtype, devices[0])
        check_dtype(options.dtype, devices[-1])
        quantization = check_quantization(options.quantize, devices[0])
        if options.decoder not in ("kl", "light"):
            raise FaceTalkError(f"unknown decoder {options.decoder!r}", hint="use kl (the VAE's) or light")
        if light_decoder is None and options.decoder == "light":  # before the models: a wrong one fails fast
            light_decoder = load_light_decoder(options.decoder_checkpoint or BUNDLED_LIGHT_DECODER, self.config)
        models = models if models is not None else load_models(self.config, options)
        self.pipeline = TalkingFacePipeline(quantize(models, quantization, devices[0], dtype), self.config,
                                            sampler=options.sampler, steps=options.steps, device=devices[0],
                                            decode_device=devices[-1], dtype=dtype, drift=options.drift,
                                            decoder=light_decoder)
        self.pack = pack
        self.width = self.height = pack.resolution
        self._renderer = CpuRenderer(pack)
        self._windows = AudioWindows(self.config.audio_window)
        self._generator = torch.Generator(devices[0]).manual_seed(options.seed)
        self.clips = ClipRunner(self.pipeline, self._encode_reference(expression or Expression()),
                                lengths=clip_lengths(self.config.max_clip_frames),
                                graphs=options.graphs if options.graphs is not None else devices[0].type == "cuda")
        self.startup_s = self.clips.start()
        self._motion: torch.Tensor | None = None

    @property
    def max_clip_frames(self) -> int:
        return self.config.max_clip_frames

    @property
    def reference(self) -> ReferenceState:
        """The current (expression-posed) reference the clips are conditioned on."""
        return self.clips.reference

    # --- FrameEngine ------------------------------------------------------------------

    def render_clip(self, features: Sequence[AudioFeatures | None], label: Label) -> Clip:
        """Render one frame per entry of ``features`` under ``label`` (1..max_clip_frames)."""
        windows = self.audio_stage(features)
        latents = self.denoise_stage(windows, label)
        return self.output_stage(self.decode_stage(latents))

    def set_expression(self, expression: Expression) -> None:
        """Pose the reference to ``expression`` (CPU engine) and re-encode it for ReferenceNet."""
        self.clips.set_reference(self._encode_reference(expression))

    def reset(self, *, seed: int | None = None) -> None:
        """Forget motion frames and audio context: the next clip starts from the reference.

        The runtime calls it after an interruption, so the next answer does not
        continue the cut-off one. With ``seed``, the sampling noise also restarts,
        so a run can be repeated exactly.
        """
        self._motion = None
        self._windows.reset()
        if seed is not None:
            self._generator.manual_seed(seed)

    # --- stages -----------------------------------------------------------------------

    def audio_stage(self, features: Sequence[AudioFeatures | None]) -> ClipAudio:
        """The clip's audio windows, padded to its captured length (a clip too long is refused here)."""
        length = self.clips.length_for(len(features))  # before the windows' history advances
        windows = self._windows(features)
        padding = np.repeat(windows[-1:], length - len(windows), axis=0)
        return ClipAudio(windows=np.concatenate([windows, padding]), frames=len(windows))

    def denoise_stage(self, audio: ClipAudio, label: Label) -> ClipLatents:
        """The clip's latents (on the device); updates the motion frames for the next one."""
        previous = self._motion if self._motion is not None else self.clips.reference_motion()
        latents, self._motion = self.clips.denoise(audio, label, previous, self._generator)
        return latents

    def decode_stage(self, latents: ClipLatents) -> torch.Tensor:
        """``(F, 3, H, W)`` float32 images in [-1, 1] at the config's resolution."""
        return self.clips.decode(latents)

    def output_stage(self, images: torch.Tensor) -> Clip:
        """uint8 RGB frames at the persona's resolution."""
        frames = self.pipeline.to_uint8(images)
        side = self.pack.resolution
        if frames.shape[1] != side:
            frames = np.stack([cv2.resize(f, (side, side), interpolation=cv2.INTER_LINEAR) for f in frames])
        return Clip(frames=list(frames))

    def _encode_reference(self, expression: Expression) -> ReferenceState:
        image, face, head = posed_reference(self.pack, expression, self.config.resolution, self._renderer)
        return self.pipeline.encode_reference(image, face, head)
