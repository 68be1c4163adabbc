"""Number formats of the diffusion engine: the models' dtype and what each device can run.

bf16 halves memory traffic and runs on the GPU's tensor cores (3.3x faster
than fp32 at base-512 on an H200, see docs/diffusion-gpu.md); the CPU keeps
fp32 by default, since its bf16 kernels are slower there than fp32 ones for
the tiny config. Every request a device cannot honour is refused with the fix,
never silently changed.

:func:`device_capability` is the one place the CUDA compute capability is
read, so a test can stand in an old or a new GPU on a CPU-only machine.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from ...errors import FaceTalkError

__all__ = ["DTYPES", "Dtype", "Quantization", "check_dtype", "check_quantization", "default_dtype",
           "device_capability"]

Dtype = Literal["bf16", "fp16", "fp32"]
DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
Quantization = Literal["none", "int8", "fp8"]

_BF16_CAPABILITY = (8, 0)  # Ampere: bf16 tensor cores
_FP8_CAPABILITY = (8, 9)  # Ada and Hopper: fp8 tensor cores


def device_capability(device: torch.device) -> tuple[int, int] | None:
    """``(major, minor)`` CUDA compute capability of ``device``; ``None`` off CUDA."""
    return torch.cuda.get_device_capability(device) if device.type == "cuda" else None


def default_dtype(device: torch.device) -> Dtype:
    """bf16 on a GPU that has it, fp32 elsewhere (and on the CPU)."""
    capability = device_capability(device)
    return "bf16" if capability is not None and capability >= _BF16_CAPABILITY else "fp32"


def check_dtype(name: str | None, device: torch.device) -> torch.dtype:
    """The torch dtype for ``name`` (``None``: the device's default) on ``device``.

    Raises:
        FaceTalkError: an unknown name, fp16 on the CPU, or bf16 on a GPU older than Ampere.
    """
    name = name or default_dtype(device)
    if name not in DTYPES:
        raise FaceTalkError(f"unknown dtype {name!r}", hint=f"use one of: {', '.join(get_args(Dtype))}")
    capability = device_capability(device)
    if device.type == "cpu" and name == "fp16":
        raise FaceTalkError("fp16 is not supported on the CPU (its half-precision kernels are incomplete)",
                            hint="use --dtype fp32 (or bf16) on the CPU")
    if capability is not None and name == "bf16" and capability < _BF16_CAPABILITY:
        raise FaceTalkError(f"bf16 needs a GPU of compute capability 8.0 (Ampere) or newer; {device} is "
                            f"{capability[0]}.{capability[1]}", hint="use --dtype fp16 on this GPU")
    return DTYPES[name]


def check_quantization(name: str, device: torch.device) -> Quantization:
    """``name`` if ``device`` can run it.

    ``int8`` is dynamic int8 on the CPU and torchao's int8 weight-only on a GPU;
    ``fp8`` is torchao's fp8 (weights and activations) on Ada or Hopper GPUs.

    Raises:
        FaceTalkError: an unknown name, fp8 on the CPU, or fp8 on a GPU older than Ada.
    """
    if name not in get_args(Quantization):
        raise FaceTalkError(f"unknown quantization {name!r}", hint=f"use one of: {', '.join(get_args(Quantization))}")
    capability = device_capability(device)
    if name == "fp8" and capability is None:
        raise FaceTalkError("fp8 quantization needs an Ada or Hopper GPU; the CPU has no fp8 matmul",
                            hint="use --quantize int8 on the CPU")
    if name == "fp8" and capability is not None and capability < _FP8_CAPABILITY:
        raise FaceTalkError(f"fp8 needs a GPU of compute capability 8.9 (Ada) or newer; {device} is "
                            f"{capability[0]}.{capability[1]}", hint="use --quantize int8 (weight-only) on this GPU")
    return name  # type: ignore[return-value]
