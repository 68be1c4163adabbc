"""Training datasets for the avatar engines: the format, a reader, and two ways to make one.

- :mod:`.format`: the on-disk layout (read its docstring, or ``docs/datasets.md``);
- :mod:`.reader`: :class:`FaceTalkDataset`, clips of consecutive frames for the trainers;
- :mod:`.synth`: ``facetalk data synth``, rendered offline by the CPU engine;
- :mod:`.build`: ``facetalk data build``, from recorded talking-head videos;
- :mod:`.tracking`, :mod:`.labelling`, :mod:`.convert`: the steps the two share.

Numpy, OpenCV and PyAV only: this package imports without torch.
"""

from __future__ import annotations

from .build import BuildResult, SourceOutcome, build_dataset
from .format import FEATURES, LABELS
from .labelling import VadLabelRule, speech_labels
from .reader import ClipSample, FaceTalkDataset, Span
from .synth import SynthResult, synth_dataset

__all__ = [
    "FEATURES",
    "LABELS",
    "BuildResult",
    "ClipSample",
    "FaceTalkDataset",
    "SourceOutcome",
    "Span",
    "SynthResult",
    "VadLabelRule",
    "build_dataset",
    "speech_labels",
    "synth_dataset",
]
