"""Checkpoints: save/load the five models with safetensors, and initialise from SD1.5 weights.

A checkpoint folder holds one diffusers subfolder per model (``vae/``,
``unet/``, ``reference_net/``, ``audio_projection/``, ``face_locator/``, each
``config.json`` + ``diffusion_pytorch_model.safetensors``) and
``facetalk_diffusion.json`` naming the config it was built for. Loading it into
another config is refused: the shapes would not match, and a silent partial
load would give noise.
"""

from __future__ import annotations

import json
from pathlib import Path

from diffusers import AutoencoderKL, AutoencoderTiny, UNet2DConditionModel
from diffusers.models.modeling_utils import ModelMixin

from ...errors import FaceTalkError
from .audio_projection import AudioProjection
from .components import DiffusionModels
from .configs import DiffusionConfig
from .face_locator import FaceLocator
from .reference_net import ReferenceNet
from .unet import TalkingFaceUNet

__all__ = ["checkpoint_config", "init_from_sd15", "load_checkpoint", "models_for", "save_checkpoint"]

FORMAT = 1
_META = "facetalk_diffusion.json"


def save_checkpoint(models: DiffusionModels, config: DiffusionConfig, folder: Path) -> None:
    """Write every model (safetensors) and the config name into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, model in models.items():
        model.save_pretrained(folder / name, safe_serialization=True)
    (folder / _META).write_text(json.dumps({"format": FORMAT, "config": config.name}, indent=2))


def checkpoint_config(folder: Path) -> str:
    """The config name a checkpoint folder was saved for.

    Raises:
        FaceTalkError: the folder is missing or is not a FaceTalk diffusion checkpoint.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FaceTalkError(f"diffusion checkpoint folder not found: {folder}",
                            hint="check avatar.checkpoint, or leave it unset for the bundled checkpoint")
    meta_path = folder / _META
    if not meta_path.is_file():
        raise FaceTalkError(f"{folder} is not a FaceTalk diffusion checkpoint (no {_META})",
                            hint="point at a folder written by 'facetalk train' or save_checkpoint")
    return str(json.loads(meta_path.read_text()).get("config"))


def load_checkpoint(folder: Path, config: DiffusionConfig) -> DiffusionModels:
    """Load a folder written by :func:`save_checkpoint` for ``config``.

    Raises:
        FaceTalkError: the folder is missing, is not a FaceTalk diffusion
            checkpoint, or was saved for another config.
    """
    saved = checkpoint_config(folder)
    if saved != config.name:
        raise FaceTalkError(f"{folder} holds a {saved!r} checkpoint, not {config.name!r}",
                            hint=f"use --config {saved}, or a checkpoint trained for {config.name}")
    classes: dict[str, type[ModelMixin]] = {
        "vae": AutoencoderKL if config.vae_type == "kl" else AutoencoderTiny, "unet": TalkingFaceUNet,
        "reference_net": ReferenceNet, "audio_projection": AudioProjection, "face_locator": FaceLocator,
    }
    try:
        loaded = {name: cls.from_pretrained(folder / name) for name, cls in classes.items()}
    except (OSError, ValueError, RuntimeError) as e:
        raise FaceTalkError(f"{folder}: damaged checkpoint: {e}", hint="save or download it again") from e
    return DiffusionModels(**loaded).eval()


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
