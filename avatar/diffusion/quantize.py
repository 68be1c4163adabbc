"""Quantization of the denoiser's and ReferenceNet's Linear layers: dynamic int8 on the CPU, torchao on a GPU.

- CPU, ``int8``: ``torch.ao.quantization.quantize_dynamic`` stores Linear
  weights as int8 with one scale per tensor and quantizes activations on the
  fly per call. Convolutions stay fp32.
- GPU, ``int8``: torchao's int8 weight-only (weights int8 per channel,
  matmuls in the activations' dtype), as LLIA runs on consumer GPUs.
- GPU, ``fp8``: torchao's fp8 weights and dynamically scaled fp8 activations,
  on Ada and Hopper tensor cores.

In these UNets the Linear layers are the attention projections (q, k, v,
out), the feed-forwards and the time/label embeddings. The bench reports the
speed-up and the PSNR against the unquantized path.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

from ...errors import FaceTalkError
from .components import DiffusionModels
from .precision import Quantization

__all__ = ["quantize", "quantize_int8", "quantize_weights"]


def quantize(models: DiffusionModels, kind: Quantization, device: torch.device, dtype: torch.dtype) -> DiffusionModels:
    """``models`` with quantized linears per ``kind`` (checked for ``device`` by ``check_quantization``).

    On a GPU the two UNets are moved to ``device`` and ``dtype`` first, since
    torchao quantizes weights where they are.
    """
    if kind == "none":
        return models
    if device.type == "cpu":
        if dtype != torch.float32:
            raise FaceTalkError("dynamic int8 on the CPU quantizes fp32 activations",
                                hint="use --dtype fp32 with --quantize int8 on the CPU")
        return quantize_int8(models)
    for model in (models.unet, models.reference_net):
        torch.nn.Module.to(model, device=device, dtype=dtype)  # diffusers' to() warns on dtype casts
    return quantize_weights(models, kind)


def quantize_weights(models: DiffusionModels, kind: Quantization) -> DiffusionModels:
    """torchao's ``kind`` quantization of ``unet``'s and ``reference_net``'s linears, in place, where they are."""
    config = _torchao_config(kind)
    from torchao.quantization import quantize_

    for model in (models.unet, models.reference_net):
        quantize_(model, config, filter_fn=_quantizable)
    return models


def _torchao_config(kind: Quantization) -> object:
    """torchao's config object for ``kind``; a :class:`FaceTalkError` saying how to install it when missing."""
    try:
        from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, Int8WeightOnlyConfig
    except ImportError as e:
        raise FaceTalkError(f"{kind} quantization on a GPU needs torchao ({e})",
                            hint="pip install 'facetalk[gpu]' (torchao)") from e
    return Int8WeightOnlyConfig() if kind == "int8" else Float8DynamicActivationFloat8WeightConfig()


def quantize_int8(models: DiffusionModels) -> DiffusionModels:
    """A copy of ``models`` with dynamic int8 Linear layers in ``unet`` and ``reference_net`` (CPU).

    The originals are untouched. Attention processors are copied along;
    the pipeline installs its own again when it is built.
    """
    with warnings.catch_warnings():
        # torch marks torch.ao quantization as deprecated in favour of torchao;
        # it is still the one dynamic int8 path for the CPU that needs no extra package.
        warnings.simplefilter("ignore")
        unet = quantize_dynamic(models.unet, _linears(models.unet), inplace=False)
        reference_net = quantize_dynamic(models.reference_net, _linears(models.reference_net), inplace=False)
    return models.replace(unet=unet, reference_net=reference_net)


def _quantizable(module: nn.Module, name: str) -> bool:
    """Linear layers, except the motion modules' ``proj_in``/``proj_out``.

    diffusers calls those as ``proj_in(input=...)``, a keyword the quantized
    Linear does not take; they are two small layers per motion module.
    """
    return isinstance(module, nn.Linear) and not ("motion_modules" in name and name.endswith(("proj_in", "proj_out")))


def _linears(model: nn.Module) -> dict[str, object]:
    """qconfig per quantizable Linear layer name."""
    return {name: default_dynamic_qconfig for name, m in model.named_modules() if _quantizable(m, name)}
