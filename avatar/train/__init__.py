"""Training the diffusion engine: autoencoder, teacher, consistency-distilled student, and their evaluation.

Needs the ``diffusion`` extra (importing :mod:`facetalk.avatar.diffusion`
raises a :class:`~facetalk.errors.FaceTalkError` with the install hint otherwise).

One concept per module: :mod:`.dataset` (clips from a dataset folder),
:mod:`.conditioning` (a batch as denoiser inputs, CFG dropout, loss weights),
:mod:`.denoiser` (a model set with its reference bank), :mod:`.objectives`
(ε and consistency objectives), :mod:`.schedule` (LLIA's clip-length phases,
warm-up), :mod:`.checkpoints`, :mod:`.loss_log`, :mod:`.trainer` (the shared
loop), the stages :mod:`.autoencoder`, :mod:`.teacher`, :mod:`.distill`, the
light decoder's :mod:`.decoder`, and :mod:`.evaluate` (``facetalk eval generator``).
"""

from __future__ import annotations

from .. import diffusion  # noqa: F401  (raises the install hint without torch)
from .autoencoder import AutoencoderTask
from .distill import DistillTask
from .teacher import TeacherTask
from .trainer import TrainOptions, TrainResult, train

__all__ = ["AutoencoderTask", "DistillTask", "TeacherTask", "TrainOptions", "TrainResult", "train"]
