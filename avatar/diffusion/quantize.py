"""int8 quantization of the denoiser and ReferenceNet: dynamic, Linear layers only.

``torch.ao.quantization.quantize_dynamic`` stores Linear weights as int8 with
one scale per tensor and quantizes activations on the fly per call. In these
UNets the Linear layers are the attention projections (q, k, v, out), the
feed-forwards and the time/label embeddings; convolutions stay fp32. It runs
on the CPU only. The bench reports its speed-up and its PSNR against fp32.
"""

from __future__ import annotations

import dataclasses
import warnings

from torch import nn
from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

from .components import DiffusionModels

__all__ = ["quantize_int8"]


def quantize_int8(models: DiffusionModels) -> DiffusionModels:
    """A copy of ``models`` with int8 Linear layers in ``unet`` and ``reference_net``.

    The originals are untouched. Attention processors are copied along;
    the pipeline installs its own again when it is built.
    """
    with warnings.catch_warnings():
        # torch marks torch.ao quantization as deprecated in favour of torchao;
        # it is still the one int8 path that needs no extra package.
        warnings.simplefilter("ignore")
        unet = quantize_dynamic(models.unet, _linears(models.unet), inplace=False)
        reference_net = quantize_dynamic(models.reference_net, _linears(models.reference_net), inplace=False)
    return dataclasses.replace(models, unet=unet, reference_net=reference_net)


def _linears(model: nn.Module) -> dict[str, object]:
    """qconfig per Linear layer name, except the motion modules' ``proj_in``/``proj_out``.

    diffusers calls those as ``proj_in(input=...)``, a keyword the quantized
    Linear does not take; they are two small layers per motion module.
    """
    return {name: default_dynamic_qconfig for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and not ("motion_modules" in name and name.endswith(("proj_in", "proj_out")))}
