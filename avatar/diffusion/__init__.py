"""The diffusion engine (LLIA's design): audio-driven portrait diffusion with few-step sampling.

Needs the ``diffusion`` extra (torch, diffusers, safetensors); importing this
package without it raises a :class:`~facetalk.errors.FaceTalkError` saying how
to install it, so the CPU engine and everything else import without torch.

Modules, one concept each: :mod:`.configs` (named model sizes), models
(:mod:`.unet`, :mod:`.reference_net`, :mod:`.audio_projection`,
:mod:`.face_locator`), :mod:`.reference_attention` (K/V injection),
:mod:`.sampling` (LCM/DDIM, and their steps as fixed coefficients),
:mod:`.pipeline` (numbered sampling steps), :mod:`.drift` (long-duration
guards), :mod:`.precision` (dtypes and what a device can run),
:mod:`.quantize` (int8, fp8), :mod:`.clip_runner` (fixed clip lengths, CUDA
graphs, streams), :mod:`.light_decoder` (a distilled TAESD-shaped decoder),
:mod:`.engine` (the runtime's FrameEngine), :mod:`.parallel` (staged threads),
:mod:`.components` (the models as a diffusers pipeline), :mod:`.checkpoint` (loading
checked against a config, SD1.5 init), :mod:`.host_syncs` (counting
host round-trips), :mod:`.bench`, :mod:`.projection` (a GPU estimate from FLOPs).
"""

from __future__ import annotations

from ...errors import FaceTalkError

try:
    import diffusers  # noqa: F401
    import safetensors  # noqa: F401
    import torch  # noqa: F401
except ImportError as e:
    raise FaceTalkError(f"the diffusion engine needs torch and diffusers ({e.name} is missing)",
                        hint="pip install 'facetalk[diffusion]'") from e

from .checkpoint import init_from_sd15, load_checkpoint  # noqa: E402
from .components import DiffusionModels, build_models  # noqa: E402
from .configs import CONFIGS, DiffusionConfig, get_config  # noqa: E402
from .drift import DriftGuard  # noqa: E402
from .engine import DiffusionEngine, DiffusionOptions  # noqa: E402
from .pipeline import TalkingFacePipeline  # noqa: E402

__all__ = [
    "CONFIGS",
    "DiffusionConfig",
    "DiffusionEngine",
    "DiffusionModels",
    "DiffusionOptions",
    "DriftGuard",
    "TalkingFacePipeline",
    "build_models",
    "get_config",
    "init_from_sd15",
    "load_checkpoint",
]
