"""ReferenceNet → denoiser: self-attention keys and values injected through attention processors.

As in Animate Anyone and LLIA, ReferenceNet runs once over the reference
latent; each of its spatial self-attention layers *writes* its input tokens
into a :class:`ReferenceBank`. The denoiser's spatial self-attention layer of
the same name *reads* them and attends over ``[own tokens, reference tokens]``,
so every frame can copy identity and texture from the reference. Temporal
(motion-module) attention is left alone.

The bank belongs to one pipeline (no global state); both models' processors
point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from torch import nn

__all__ = ["ReferenceAttnProcessor", "ReferenceBank", "install_reference_attention"]


@dataclass
class ReferenceBank:
    """Reference tokens per layer name: ``(B_ref, N, C)`` float, written by ReferenceNet."""

    states: dict[str, torch.Tensor] = field(default_factory=dict)


class ReferenceAttnProcessor:
    """Self-attention that writes its tokens to, or reads extra keys/values from, a bank.

    Args:
        bank: the shared bank.
        name: the layer's name, the same in ReferenceNet and the denoiser
            (``down_blocks.0.attentions.0.transformer_blocks.0.attn1``).
        mode: ``"write"`` in ReferenceNet, ``"read"`` in the denoiser.
    """

    def __init__(self, bank: ReferenceBank, name: str, mode: Literal["write", "read"]) -> None:
        self.bank, self.name, self.mode = bank, name, mode

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 **kwargs: object) -> torch.Tensor:
        """``hidden_states``: ``(B, N, C)`` tokens of ``B`` frames; returns the same shape."""
        context = hidden_states
        if self.mode == "write":
            self.bank.states[self.name] = hidden_states
        elif (ref := self.bank.states.get(self.name)) is not None:
            ref = ref.to(hidden_states.dtype).repeat_interleave(hidden_states.shape[0] // ref.shape[0], dim=0)
            context = torch.cat([hidden_states, ref], dim=1)
        batch, tokens, _ = hidden_states.shape
        heads = attn.heads
        q = attn.to_q(hidden_states)
        k, v = attn.to_k(context), attn.to_v(context)
        split = lambda x: x.view(batch, -1, heads, x.shape[-1] // heads).transpose(1, 2)  # noqa: E731
        out = F.scaled_dot_product_attention(split(q), split(k), split(v))
        out = out.transpose(1, 2).reshape(batch, tokens, -1).to(q.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        return out / attn.rescale_output_factor


def install_reference_attention(model: nn.Module, bank: ReferenceBank, mode: Literal["write", "read"]) -> int:
    """Give ``model``'s spatial self-attention layers a :class:`ReferenceAttnProcessor`.

    ``model`` is a diffusers UNet (it has ``attn_processors``). Returns how many
    layers were hooked; the other processors are kept as they were.
    """
    processors = dict(model.attn_processors)
    hooked = 0
    for key in processors:
        name = key.removesuffix(".processor")
        if name.endswith("attn1") and ".attentions." in f".{name}" and "motion_modules" not in name:
            processors[key] = ReferenceAttnProcessor(bank, name, mode)
            hooked += 1
    model.set_attn_processor(processors)
    return hooked
