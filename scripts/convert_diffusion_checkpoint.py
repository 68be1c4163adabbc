#!/usr/bin/env python3
"""Convert diffusion checkpoints of FaceTalk's old layout to the diffusers pipeline layout, in place.

The old layout had the same model subfolders (``vae/``, ``unet/``, ...) but
``facetalk_diffusion.json`` instead of diffusers' ``model_index.json``. Each
model is loaded from its subfolder and the bundle is written again with
:meth:`DiffusionModels.save_pretrained`; the weights do not change. Used once
for the bundled checkpoint (``avatar/diffusion/checkpoint`` and its ``teacher/``)::

    .venv/bin/python scripts/convert_diffusion_checkpoint.py avatar/diffusion/checkpoint avatar/diffusion/checkpoint/teacher
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from diffusers import AutoencoderKL, AutoencoderTiny

from facetalk.avatar.diffusion.audio_projection import AudioProjection
from facetalk.avatar.diffusion.components import DiffusionModels
from facetalk.avatar.diffusion.face_locator import FaceLocator
from facetalk.avatar.diffusion.reference_net import ReferenceNet
from facetalk.avatar.diffusion.unet import TalkingFaceUNet

_OLD_META = "facetalk_diffusion.json"
_CLASSES = {"unet": TalkingFaceUNet, "reference_net": ReferenceNet, "audio_projection": AudioProjection,
            "face_locator": FaceLocator}


def convert(folder: Path) -> None:
    """Rewrite ``folder`` (old layout) as a :class:`DiffusionModels` pipeline folder."""
    config = json.loads((folder / _OLD_META).read_text())["config"]
    vae_class = json.loads((folder / "vae" / "config.json").read_text())["_class_name"]
    models = {name: cls.from_pretrained(folder / name) for name, cls in _CLASSES.items()}
    vae = {"AutoencoderKL": AutoencoderKL, "AutoencoderTiny": AutoencoderTiny}[vae_class].from_pretrained(folder / "vae")
    DiffusionModels(vae=vae, **models, facetalk_config=config).save_pretrained(folder)
    (folder / _OLD_META).unlink()


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} FOLDER [FOLDER ...]")
    for path in sys.argv[1:]:
        convert(Path(path))
        print(f"converted {path}")
