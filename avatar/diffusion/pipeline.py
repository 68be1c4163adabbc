"""The sampling pipeline: reference + audio windows + label + motion frames → a clip of latents → frames.

Like a diffusers pipeline, :meth:`TalkingFacePipeline.__call__` is a list of
numbered steps with small helpers. A stream's state (the motion frames, the
posed reference) belongs to the engine and is passed in with each clip. The
pipeline's one mutable member is the :class:`ReferenceBank` its attention
processors read: each call fills it with the given reference's tokens and
empties it again, so one pipeline serves the sequential and the staged
(threaded) engine alike as long as one call runs at a time (the staged
engine denoises on one thread).

Everything a clip reads lives in device buffers (:class:`ClipInputs`) and
every step is tensor arithmetic on the device: no timestep, label or noise
comes from the host, and nothing is read back. That is what lets
:mod:`.clip_runner` capture a clip once per length as a CUDA graph.

Precision: the models run in ``dtype`` (bf16 on GPUs); the pipeline casts
its inputs to it at the five places they enter a model, keeps the latents
and the sampler's arithmetic in float32, and returns float32 images.

Shapes: pixels are ``(F, H, W, 3)`` uint8 at the config's resolution;
latents ``(1, C, F, h, w)`` float32 with ``h = H / vae_scale_factor``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from ...errors import FaceTalkError
from ..labels import Label
from .components import DiffusionModels
from .configs import AUDIO_FEATURES, DiffusionConfig
from .drift import DriftGuard
from .light_decoder import LightDecoder
from .reference_attention import ReferenceBank, install_reference_attention
from .sampling import Sampler, make_scheduler, plan_steps

__all__ = ["LABEL_INDEX", "ClipInputs", "ReferenceState", "TalkingFacePipeline"]

LABEL_INDEX = {Label.SPEAKING: 0, Label.LISTENING: 1, Label.IDLE: 2, Label.THINKING: 1}
"""Class-embedding index of each label; the trained UNet has no class of its own for thinking."""


@dataclass
class ReferenceState:
    """What the pipeline derives once per reference portrait (and expression).

    Attributes:
        latent: ``(1, C, h, w)`` float32, the reference's latent.
        face_latent: ``(1, C, h, w)`` the face locator's output for the face mask (models' dtype).
        head_mask: ``(1, 1, h, w)`` float32, the head mask at latent size, 1 where the head may move.
        tokens: ReferenceNet's self-attention inputs by layer name (the bank's content, models' dtype).
    """

    latent: torch.Tensor
    face_latent: torch.Tensor
    head_mask: torch.Tensor
    tokens: dict[str, torch.Tensor]

    def copy_(self, other: ReferenceState) -> None:
        """Take ``other``'s values in place: captured graphs keep reading the same memory."""
        for f in fields(self):
            if f.name != "tokens":
                getattr(self, f.name).copy_(getattr(other, f.name))
        for name, tokens in self.tokens.items():
            tokens.copy_(other.tokens[name])


@dataclass
class ClipInputs:
    """The device buffers one clip of ``frames`` frames reads (see :meth:`TalkingFacePipeline.fill`).

    Attributes:
        windows: ``(F, window, 4)`` float32 audio windows.
        label: ``(1,)`` int64 label index.
        previous: ``(1, C, M, h, w)`` float32 motion latents before the drift guard.
        noise: ``(1, C, M + F * (1 + R), h, w)`` float32 unit Gaussian noise for the drift
            guard, the initial latents and ``R`` re-noising steps, drawn in one call.
    """

    windows: torch.Tensor
    label: torch.Tensor
    previous: torch.Tensor
    noise: torch.Tensor

    @property
    def frames(self) -> int:
        return self.windows.shape[0]


class TalkingFacePipeline:
    """Few-step sampling of talking-face clips with the engine's models.

    Args:
        models: the five models (random, loaded or SD1.5-initialised); moved and cast here, and their
            attention processors replaced by the reference-attention ones.
        config: the config they were built for.
        sampler: ``"lcm"`` (1/2/4 steps) or ``"ddim"`` (teacher).
        steps: sampling steps.
        device: where the denoiser, ReferenceNet and projections run.
        decode_device: where the VAE runs (a second GPU in pipeline mode); default ``device``.
        dtype: the models' dtype (float32, bfloat16 or float16).
        drift: the long-duration guards applied to the motion frames.
        decoder: a light decoder used instead of the VAE's decoder (the VAE still encodes the reference).
    """

    def __init__(self, models: DiffusionModels, config: DiffusionConfig, *, sampler: Sampler = "lcm",
                 steps: int = 2, device: str | torch.device = "cpu",
                 decode_device: str | torch.device | None = None, dtype: torch.dtype = torch.float32,
                 drift: DriftGuard | None = None, decoder: LightDecoder | None = None) -> None:
        self.models, self.config = models, config
        self.device = torch.device(device)
        self.decode_device = torch.device(decode_device or device)
        self.dtype = dtype
        self.drift = drift or DriftGuard()
        for name, model in models.components.items():
            # nn.Module's own to(): diffusers' override warns on every dtype cast, even with no fp32 modules.
            torch.nn.Module.to(model, device=self.decode_device if name == "vae" else self.device, dtype=dtype)
        self.decoder = decoder
        if decoder is not None:
            torch.nn.Module.to(decoder.eval(), device=self.decode_device, dtype=dtype)
        self.bank = ReferenceBank()
        install_reference_attention(models.reference_net.backbone, self.bank, "write")
        install_reference_attention(models.unet.backbone, self.bank, "read")
        # Labels as device tensors, made once: a clip copies one on the device.
        self.labels = {label: torch.tensor([i], device=self.device) for label, i in LABEL_INDEX.items()}
        self.set_sampler(sampler, steps)

    def set_sampler(self, sampler: Sampler, steps: int) -> None:
        """Switch sampler or step count (validated); clips captured before must be captured again."""
        scheduler = make_scheduler(sampler, steps)
        self.sampler, self.steps = sampler, steps
        self.plan = plan_steps(scheduler, self.device)
        self.noise_level = self.drift.noise_level(scheduler)

    # --- reference ------------------------------------------------------------------

    @torch.no_grad()
    def encode_reference(self, image: np.ndarray, face_mask: np.ndarray, head_mask: np.ndarray) -> ReferenceState:
        """Reference latent, ReferenceNet tokens and face-locator output.

        Args:
            image: ``(H, W, 3)`` uint8 RGB at the config's resolution (already expression-posed).
            face_mask: ``(H, W)`` float32 in [0, 1], the face oval.
            head_mask: ``(H, W)`` float32 in [0, 1], where the head may move.
        """
        self._check_image(image)
        latent = self.encode(image[None]).to(self.device)
        self.bank.states = {}
        self.models.reference_net(latent.to(self.dtype))
        tokens, self.bank.states = self.bank.states, {}
        mask = torch.from_numpy(np.ascontiguousarray(face_mask, np.float32))[None, None].to(self.device)
        head = torch.from_numpy(np.ascontiguousarray(head_mask, np.float32))[None, None]
        head = F.adaptive_avg_pool2d(head, latent.shape[-2:]).to(self.device)
        return ReferenceState(latent=latent, face_latent=self.models.face_locator(mask.to(self.dtype)),
                              head_mask=head, tokens=tokens)

    def _check_image(self, image: np.ndarray) -> None:
        side = self.config.resolution
        if image.shape != (side, side, 3) or image.dtype != np.uint8:
            raise FaceTalkError(f"reference image is {image.shape} {image.dtype}, expected ({side}, {side}, 3) uint8",
                                hint="resize the persona image to the config's resolution first")

    # --- a clip's inputs ----------------------------------------------------------------

    def clip_inputs(self, frames: int) -> ClipInputs:
        """Zeroed device buffers for clips of ``frames`` frames (made once per clip length)."""
        c, h, m = self.config.vae["latent_channels"], self.config.latent_size, self.config.motion_frames
        noise_frames = m + frames * (1 + self.plan.noised_steps)
        zeros = lambda *shape, dtype=torch.float32: torch.zeros(shape, dtype=dtype, device=self.device)  # noqa: E731
        return ClipInputs(windows=zeros(frames, self.config.audio_window, AUDIO_FEATURES),
                          label=zeros(1, dtype=torch.int64), previous=zeros(1, c, m, h, h),
                          noise=zeros(1, c, noise_frames, h, h))

    def fill(self, inputs: ClipInputs, windows: np.ndarray, label: Label, previous: torch.Tensor,
             generator: torch.Generator) -> None:
        """Write one clip's values into ``inputs``: one host→device copy (the audio), the rest on the device.

        Args:
            windows: ``(F, window, 4)`` float32 audio windows, ``F = inputs.frames``.
            label: the clip's label.
            previous: ``(1, C, M, h, w)`` the motion latents on ``device``.
            generator: a generator on ``device``: the clip's noise is drawn there, reproducible by seed.
        """
        inputs.windows.copy_(torch.from_numpy(windows), non_blocking=True)
        inputs.label.copy_(self.labels[Label(label)])
        inputs.previous.copy_(previous)
        inputs.noise.normal_(generator=generator)

    # --- sampling -------------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, reference: ReferenceState, inputs: ClipInputs) -> torch.Tensor:
        """Sample one clip from filled ``inputs``: ``(1, C, F, h, w)`` float32 clean latents on ``device``."""
        frames, motion_count = inputs.frames, self.config.motion_frames
        plan = self.plan
        # 1. Split the clip's noise: drift augmentation, initial latents, re-noising per step.
        noise = inputs.noise.split([motion_count] + [frames] * (1 + plan.noised_steps), dim=2)
        # 2. Guard the motion frames against drift.
        motion = self.drift(inputs.previous, reference.latent, reference.head_mask, noise[0], self.noise_level)
        motion = motion.to(self.dtype)
        # 3. Encode audio: one window of tokens per frame.
        audio = self.models.audio_projection(inputs.windows.to(self.dtype))
        # 4. Reference tokens into the bank for the denoiser's processors.
        self.bank.states = reference.tokens
        # 5. Denoising loop: the scheduler's update as fixed coefficients (see StepPlan).
        latents = noise[1] * plan.init_noise_sigma
        renoise = iter(noise[2:])
        for i in range(len(plan.signal)):
            eps = self.models.unet(latents.to(self.dtype), plan.timesteps[i], audio, inputs.label,
                                   face_latent=reference.face_latent, motion_latents=motion)
            latents = plan.signal[i] * latents + plan.eps[i] * eps.float()
            if plan.noise[i]:
                latents = latents + plan.noise[i] * next(renoise)
        self.bank.states = {}
        return latents

    # --- the autoencoder --------------------------------------------------------------

    @torch.no_grad()
    def encode(self, images: np.ndarray) -> torch.Tensor:
        """``(N, H, W, 3)`` uint8 → ``(N, C, h, w)`` float32 scaled latents (on ``decode_device``)."""
        x = torch.from_numpy(images).to(self.decode_device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        vae = self.models.vae
        x = x.to(self.dtype)
        if isinstance(vae, AutoencoderKL):
            return (vae.encode(x).latent_dist.mode() * vae.config.scaling_factor).float()
        return vae.encode(x).latents.float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``(1, C, F, h, w)`` latents → ``(F, 3, H, W)`` float32 in [-1, 1] on ``decode_device``."""
        z = latents[0].permute(1, 0, 2, 3).to(self.decode_device)
        if self.decoder is not None:
            return self.decoder(z.to(self.dtype)).float().clamp(-1.0, 1.0)
        vae = self.models.vae
        if isinstance(vae, AutoencoderKL):
            z = z / vae.config.scaling_factor
        return vae.decode(z.to(self.dtype)).sample.float().clamp(-1.0, 1.0)

    @staticmethod
    def to_uint8(images: torch.Tensor) -> np.ndarray:
        """``(F, 3, H, W)`` float in [-1, 1] → ``(F, H, W, 3)`` uint8 RGB (the one read back to the host)."""
        return ((images + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
