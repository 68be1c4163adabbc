"""The face-mesh model persona preparation runs, fetched once into a cache.

MediaPipe's face-landmark network (Apache-2.0) ships inside the ``mediapipe``
wheel on PyPI. Installing mediapipe itself would pin protobuf<5 and numpy<2,
so FaceTalk downloads the wheel without installing it and extracts the one
``.tflite`` file, which ``ai-edge-litert`` runs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..errors import FaceTalkError
from ..resources import cache_dir  # re-exported: the avatar's models live in FaceTalk's one cache

__all__ = ["cache_dir", "ensure_face_landmark_model", "face_landmark_model_path"]

MEDIAPIPE_VERSION = "0.10.21"
_MEMBER = "mediapipe/modules/face_landmark/face_landmark.tflite"
_DOWNLOAD_ARGS = [
    "download", f"mediapipe=={MEDIAPIPE_VERSION}", "--no-deps", "--only-binary=:all:",
    "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64",
]


def face_landmark_model_path() -> Path:
    """Where the face-mesh model lives once fetched (it may not exist yet)."""
    return cache_dir() / "models" / f"face_landmark-mediapipe-{MEDIAPIPE_VERSION}.tflite"


def _pythons_with_pip() -> list[str]:
    """Interpreters that can run ``-m pip`` (uv-made venvs have no pip)."""
    found = []
    for python in (sys.executable, shutil.which("python3")):
        if python and python not in found:
            probe = subprocess.run([python, "-m", "pip", "--version"], capture_output=True)
            if probe.returncode == 0:
                found.append(python)
    return found


def ensure_face_landmark_model() -> Path:
    """Return the face-mesh model path, downloading the wheel once if needed."""
    target = face_landmark_model_path()
    if target.is_file():
        return target
    manual = f"python3 -m pip {' '.join(_DOWNLOAD_ARGS)} -d /tmp/mp && unzip -p /tmp/mp/*.whl {_MEMBER} > {target}"
    pythons = _pythons_with_pip()
    if not pythons:
        raise FaceTalkError(
            "cannot fetch the face-landmark model: no Python with pip found",
            hint=f"install pip for python3, or run by hand: {manual}",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(
            [pythons[0], "-m", "pip", *_DOWNLOAD_ARGS, "-d", tmp], capture_output=True, text=True
        )
        wheels = list(Path(tmp).glob("mediapipe-*.whl"))
        if run.returncode != 0 or not wheels:
            raise FaceTalkError(
                f"could not download mediapipe {MEDIAPIPE_VERSION} from PyPI:\n{run.stderr.strip()[-500:]}",
                hint=f"check the network, or run by hand: {manual}",
            )
        with zipfile.ZipFile(wheels[0]) as wheel:
            data = wheel.read(_MEMBER)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)  # atomic: a crash never leaves a truncated model
    return target
