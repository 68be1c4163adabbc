"""The sampling pipeline: reference + audio windows + label (+ motion frames) → a clip of latents → frames.

Like a diffusers pipeline, :meth:`TalkingFacePipeline.__call__` is a list of
numbered steps with small helpers; unlike one, it keeps no per-stream state
(the engine owns the motion frames and the reference), so one pipeline can
serve the sequential and the staged (threaded) engine alike.

Shapes: pixels are ``(F, H, W, 3)`` uint8 at the config's resolution;
latents ``(1, C, F, h, w)`` float32 with ``h = H / vae_scale_factor``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from ...errors import FaceTalkError
from ..labels import Label
from .components import DiffusionModels
from .configs import DiffusionConfig
from .reference_attention import ReferenceBank, install_reference_attention
from .sampling import Sampler, make_scheduler

__all__ = ["LABEL_INDEX", "ReferenceState", "TalkingFacePipeline"]

LABEL_INDEX = {Label.SPEAKING: 0, Label.LISTENING: 1, Label.IDLE: 2, Label.THINKING: 1}
"""Class labels of the trained UNet; it has no class of its own for thinking."""
"""Class-embedding index of each label."""


@dataclass
class ReferenceState:
    """What the pipeline derives once per reference portrait (and expression).

    Attributes:
        latent: ``(1, C, h, w)`` the reference's latent.
        face_latent: ``(1, C, h, w)`` the face locator's output for the face mask.
        head_mask: ``(1, 1, h, w)`` the head mask at latent size, 1 where the head may move.
        tokens: ReferenceNet's self-attention inputs by layer name (the bank's content).
    """

    latent: torch.Tensor
    face_latent: torch.Tensor
    head_mask: torch.Tensor
    tokens: dict[str, torch.Tensor]


class TalkingFacePipeline:
    """Few-step sampling of talking-face clips with the engine's models.

    Args:
        models: the five models (random, loaded or SD1.5-initialised).
        config: the config they were built for.
        sampler: ``"lcm"`` (1/2/4 steps) or ``"ddim"`` (teacher).
        steps: sampling steps.
        device: where the denoiser, ReferenceNet and projections run.
        decode_device: where the VAE runs (a second GPU in pipeline mode); default ``device``.
    """

    def __init__(self, models: DiffusionModels, config: DiffusionConfig, *, sampler: Sampler = "lcm",
                 steps: int = 2, device: str | torch.device = "cpu",
                 decode_device: str | torch.device | None = None) -> None:
        self.models, self.config = models, config
        self.sampler, self.steps = sampler, steps
        self.scheduler = make_scheduler(sampler, steps)
        self.device = torch.device(device)
        self.decode_device = torch.device(decode_device or device)
        for name, model in models.items():
            model.to(self.decode_device if name == "vae" else self.device)
        self.bank = ReferenceBank()
        install_reference_attention(models.reference_net.backbone, self.bank, "write")
        install_reference_attention(models.unet.backbone, self.bank, "read")

    def set_sampler(self, sampler: Sampler, steps: int) -> None:
        """Switch sampler or step count (validated) from the next clip on."""
        self.scheduler = make_scheduler(sampler, steps)
        self.sampler, self.steps = sampler, steps

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
        self.models.reference_net(latent)
        tokens, self.bank.states = self.bank.states, {}
        mask = torch.from_numpy(np.ascontiguousarray(face_mask, np.float32))[None, None].to(self.device)
        size = latent.shape[-2:]
        head = torch.from_numpy(np.ascontiguousarray(head_mask, np.float32))[None, None]
        head = F.adaptive_avg_pool2d(head, size).to(self.device)
        return ReferenceState(latent=latent, face_latent=self.models.face_locator(mask), head_mask=head, tokens=tokens)

    def _check_image(self, image: np.ndarray) -> None:
        side = self.config.resolution
        if image.shape != (side, side, 3) or image.dtype != np.uint8:
            raise FaceTalkError(f"reference image is {image.shape} {image.dtype}, expected ({side}, {side}, 3) uint8",
                                hint="resize the persona image to the config's resolution first")

    # --- sampling -------------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, reference: ReferenceState, audio_windows: np.ndarray, label: Label,
                 motion_latents: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        """Sample one clip.

        Args:
            reference: from :meth:`encode_reference`.
            audio_windows: ``(F, window, 4)`` float32, one window per frame.
            label: the clip's label.
            motion_latents: ``(1, C, M, h, w)`` previous-clip latents, or ``None``.
            generator: CPU generator for the initial noise and LCM's re-noising.

        Returns:
            ``(1, C, F, h, w)`` float32 clean latents on ``device``.
        """
        # 1. Check inputs.
        frames = self.check_inputs(audio_windows)
        # 2. Encode audio: one window of tokens per frame.
        audio = self.models.audio_projection(torch.from_numpy(audio_windows).to(self.device))
        # 3. Reference tokens into the bank for the denoiser's processors.
        self.bank.states = reference.tokens
        # 4. Timesteps and initial noise.
        self.scheduler.set_timesteps(self.steps)
        latents = self.prepare_latents(frames, generator)
        labels = torch.tensor([LABEL_INDEX[Label(label)]], device=self.device)
        # 5. Denoising loop.
        for t in self.scheduler.timesteps:
            noise = self.models.unet(latents, t, audio, labels, face_latent=reference.face_latent,
                                     motion_latents=motion_latents)
            out = self.scheduler.step(noise, t, latents, generator=generator)
            latents = out.prev_sample
        self.bank.states = {}
        # LCM's last step returns the denoised estimate; DDIM's prev_sample at t=0 is the same.
        return out.denoised if self.sampler == "lcm" else latents

    def check_inputs(self, audio_windows: np.ndarray) -> int:
        """The clip's frame count; a :class:`FaceTalkError` if it is out of range."""
        frames = len(audio_windows)
        if not 1 <= frames <= self.config.max_clip_frames:
            raise FaceTalkError(f"a clip of {frames} frames is outside 1..{self.config.max_clip_frames}",
                                hint=f"config {self.config.name!r} renders at most {self.config.max_clip_frames} "
                                     "frames per clip; pass max_clip_frames to the runtime")
        return frames

    def prepare_latents(self, frames: int, generator: torch.Generator) -> torch.Tensor:
        """``(1, C, F, h, w)`` unit Gaussian noise (drawn on the CPU, so seeds match across devices)."""
        c, h = self.config.vae["latent_channels"], self.config.latent_size
        noise = torch.randn((1, c, frames, h, h), generator=generator, dtype=torch.float32)
        return (noise * self.scheduler.init_noise_sigma).to(self.device)

    # --- the autoencoder --------------------------------------------------------------

    @torch.no_grad()
    def encode(self, images: np.ndarray) -> torch.Tensor:
        """``(N, H, W, 3)`` uint8 → ``(N, C, h, w)`` scaled latents (on ``decode_device``)."""
        x = torch.from_numpy(images).to(self.decode_device).permute(0, 3, 1, 2).float() / 127.5 - 1.0
        vae = self.models.vae
        if isinstance(vae, AutoencoderKL):
            return vae.encode(x).latent_dist.mode() * vae.config.scaling_factor
        return vae.encode(x).latents

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``(1, C, F, h, w)`` latents → ``(F, 3, H, W)`` float in [-1, 1] on ``decode_device``."""
        z = latents[0].permute(1, 0, 2, 3).to(self.decode_device)
        vae = self.models.vae
        if isinstance(vae, AutoencoderKL):
            z = z / vae.config.scaling_factor
        return vae.decode(z).sample.clamp(-1.0, 1.0)

    @staticmethod
    def to_uint8(images: torch.Tensor) -> np.ndarray:
        """``(F, 3, H, W)`` float in [-1, 1] → ``(F, H, W, 3)`` uint8 RGB."""
        return ((images + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
