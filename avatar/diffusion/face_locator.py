"""The face locator: the persona's face mask, encoded to latent size and added to the noisy latents."""

from __future__ import annotations

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from torch import nn

__all__ = ["FaceLocator"]


class FaceLocator(ModelMixin, ConfigMixin):
    """Tells the denoiser where the face is (as EMO's and EchoMimic's face locators).

    Stride-2 convolutions take the pixel-space mask down to latent size; the
    last convolution starts at zero, so an SD1.5-initialised UNet starts
    unchanged (ControlNet's zero-conv trick) and training grows its effect.

    Args:
        channels: widths of the conv stages; ``len(channels)`` stride-2 steps
            must equal log2 of the VAE scale factor (3 for 8x).
        latent_channels: channels of the latents it is added to.
    """

    @register_to_config
    def __init__(self, channels: tuple[int, ...] = (16, 32, 64), latent_channels: int = 4) -> None:
        super().__init__()
        widths = list(channels)  # a list once the config has been through JSON
        layers: list[nn.Module] = [nn.Conv2d(1, widths[0], 3, padding=1), nn.SiLU()]
        for c_in, c_out in zip(widths, widths[1:] + widths[-1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.SiLU()]
        self.encoder = nn.Sequential(*layers)
        self.out = nn.Conv2d(widths[-1], latent_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` mask in [0, 1] → ``(B, latent_channels, H / 2**len(channels), W / ...)``."""
        return self.out(self.encoder(mask))
