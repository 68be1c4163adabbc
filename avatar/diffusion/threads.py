"""Torch's intra-op thread count for the length of a block (bench, training, evaluation), then restored.

The tiny config's small ops gain nothing from more threads, and on a shared
CPU extra threads oversubscribe it: a teacher step measured here took 15 s
with torch's default of 2 threads next to other jobs, 0.25 s with 1.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
