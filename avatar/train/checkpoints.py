"""Training checkpoints under ``RUN/checkpoints/step-NNNNNNNN/``, written atomically.

Each checkpoint folder holds ``trainer.pt`` (trainable weights, optimizer,
learning-rate scheduler, every random generator's state and the step) and an
engine-loadable export of the models (``DiffusionModels.save_pretrained``'s layout), so any
checkpoint can be sampled or evaluated while training goes on. A folder is
written as ``.tmp-step-…`` and renamed when complete: a kill mid-write leaves
only a temp folder, removed on the next start, and the previous checkpoint.
The newest ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointStore"]

_PREFIX, _TMP = "step-", ".tmp-"


class CheckpointStore:
    """The checkpoint folders of one run.

    Args:
        run: the run folder.
        keep: how many of the newest checkpoints to keep.
    """

    def __init__(self, run: Path, *, keep: int = 2) -> None:
        self.root = Path(run) / "checkpoints"
        self.keep = keep

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints, ascending; removes leftover temp folders."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            if folder.name.startswith(_TMP):
                shutil.rmtree(folder, ignore_errors=True)
            elif folder.name.startswith(_PREFIX) and (folder / "trainer.pt").is_file():
                found.append(int(folder.name.removeprefix(_PREFIX)))
        return sorted(found)

    def folder(self, step: int) -> Path:
        return self.root / f"{_PREFIX}{step:08d}"

    def latest(self) -> Path | None:
        """The newest complete checkpoint folder, or ``None``."""
        steps = self.steps()
        return self.folder(steps[-1]) if steps else None

    def save(self, step: int, state: dict[str, Any], export: Callable[[Path], None]) -> Path:
        """Write ``state`` and the model export for ``step``; prune old checkpoints."""
        final = self.folder(step)
        tmp = self.root / f"{_TMP}{final.name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        export(tmp)
        torch.save(state, tmp / "trainer.pt")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        for old in self.steps()[:-self.keep]:
            shutil.rmtree(self.folder(old), ignore_errors=True)
        return final

    @staticmethod
    def load(folder: Path) -> dict[str, Any]:
        """The ``trainer.pt`` state of a checkpoint folder."""
        return torch.load(folder / "trainer.pt", map_location="cpu", weights_only=False)
