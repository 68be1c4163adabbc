"""Checkpoints: the five models as a diffusers pipeline folder, checked against a config; SD1.5 initialisation.

A checkpoint folder is what :meth:`DiffusionModels.save_pretrained` writes
(diffusers' own layout): ``model_index.json`` naming each model's class and
the FaceTalk config the models were built for (``facetalk_config``), and one
subfolder per model (``vae/``, ``unet/``, ``reference_net/``,
``audio_projection/``, ``face_locator/``, each ``config.json`` +
``diffusion_pytorch_model.safetensors``). Loading it into another config is
refused: the shapes would not match, and a silent partial load would give noise.
"""

from __future__ import annotations

import json
from pathlib import Path

from diffusers import AutoencoderKL, UNet2DConditionModel

from ...errors import FaceTalkError
from .components import DiffusionModels
from .configs import DiffusionConfig

__all__ = ["checkpoint_config", "init_from_sd15", "load_checkpoint", "models_for"]

_INDEX = DiffusionModels.config_name  # model_index.json
_OLD_LAYOUT = "facetalk_diffusion.json"  # what FaceTalk wrote before its models were a diffusers pipeline


def checkpoint_config(folder: Path) -> str:
    """The config name a checkpoint folder was saved for.

    Raises:
        FaceTalkError: the folder is missing, is not a FaceTalk diffusion checkpoint, or has the old layout.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FaceTalkError(f"diffusion checkpoint folder not found: {folder}",
                            hint="check avatar.checkpoint, or leave it unset for the bundled checkpoint")
    if not (folder / _INDEX).is_file() and (folder / _OLD_LAYOUT).is_file():
        raise FaceTalkError(f"{folder} has FaceTalk's old checkpoint layout ({_OLD_LAYOUT}, no {_INDEX})",
                            hint=f"convert it once: python scripts/convert_diffusion_checkpoint.py {folder}")
    index = json.loads((folder / _INDEX).read_text()) if (folder / _INDEX).is_file() else {}
    if index.get("_class_name") != DiffusionModels.__name__ or not index.get("facetalk_config"):
        raise FaceTalkError(f"{folder} is not a FaceTalk diffusion checkpoint (no {_INDEX} of {DiffusionModels.__name__})",
                            hint="point at a folder written by 'facetalk train' or DiffusionModels.save_pretrained")
    return str(index["facetalk_config"])


def load_checkpoint(folder: Path, config: DiffusionConfig) -> DiffusionModels:
    """Load a folder written by :meth:`DiffusionModels.save_pretrained` for ``config``.

    Raises:
        FaceTalkError: the folder is missing, is not a FaceTalk diffusion
            checkpoint, was saved for another config, or is damaged.
    """
    saved = checkpoint_config(folder)
    if saved != config.name:
        raise FaceTalkError(f"{folder} holds a {saved!r} checkpoint, not {config.name!r}",
                            hint=f"use --config {saved}, or a checkpoint trained for {config.name}")
    try:
        return DiffusionModels.from_pretrained(folder).eval()
    except (OSError, ValueError, RuntimeError) as e:
        raise FaceTalkError(f"{folder}: damaged checkpoint: {e}", hint="save or download it again") from e


def models_for(source: Path | DiffusionModels, config: DiffusionConfig) -> DiffusionModels:
    """``source`` as models of ``config``: a checkpoint folder is loaded, in-memory models are checked.

    Training at base scale passes models it already holds (on the GPU, or
    fresh from ``init_from_sd15``) instead of writing and re-reading gigabytes.

    Raises:
        FaceTalkError: the folder cannot be loaded for ``config``, or the models were built for another config.
    """
    if not isinstance(source, DiffusionModels):
        return load_checkpoint(Path(source), config)
    built = json.loads(json.dumps(dict(source.unet.config.unet)))
    if built != json.loads(json.dumps(config.unet)):
        raise FaceTalkError(f"the models passed in were not built for config {config.name!r}",
                            hint=f"build them with build_models(get_config({config.name!r})), or pass their config")
    return source


def init_from_sd15(models: DiffusionModels, folder: Path) -> DiffusionModels:
    """Copy SD1.5-format weights from ``folder/unet`` and ``folder/vae`` into ``models``.

    The UNet's spatial layers go into both the denoiser (its temporal motion
    modules, label embedding and audio projection stay as initialised) and
    ReferenceNet; the VAE is copied whole when the config uses AutoencoderKL.
    Raises :class:`FaceTalkError` when the folder's shapes do not fit the config.
    """
    folder = Path(folder)
    if not (folder / "unet" / "config.json").is_file():
        raise FaceTalkError(f"{folder}: no SD1.5-format unet/ folder", hint="pass the root of a diffusers SD1.5 folder")
    sd_unet = UNet2DConditionModel.from_pretrained(folder / "unet").state_dict()
    try:
        models.reference_net.backbone.load_state_dict(sd_unet)
        # The motion UNet names its spatial layers as UNet2DConditionModel does.
        missing, unexpected = models.unet.backbone.load_state_dict(sd_unet, strict=False)
    except RuntimeError as e:
        raise FaceTalkError(f"{folder}: the UNet weights do not fit this config: {e}",
                            hint="use a base config with SD1.5 weights, or a matching tiny SD folder") from e
    if unexpected or any("motion_modules" not in k and "cond_proj" not in k for k in missing):
        raise FaceTalkError(f"{folder}: UNet layers do not line up ({len(unexpected)} unexpected)",
                            hint="the folder must hold an SD1.5-format UNet")
    if (folder / "vae" / "config.json").is_file() and isinstance(models.vae, AutoencoderKL):
        try:
            models.vae.load_state_dict(AutoencoderKL.from_pretrained(folder / "vae").state_dict())
        except RuntimeError as e:
            raise FaceTalkError(f"{folder}: the VAE weights do not fit this config: {e}",
                                hint="use base-512 for SD1.5's VAE") from e
    return models
