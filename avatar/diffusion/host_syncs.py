"""Counting host round-trips in a block of engine work: the bench reports them, a test holds them at zero.

A GPU runs ahead of Python only while nothing waits for it. Two kinds of
calls break that in a per-clip path:

- **syncs**: reading a device value on the host (``.item()``, ``.tolist()``,
  ``.cpu()``, ``.numpy()``, ``bool()``/``float()``/``int()`` of a tensor).
  On CUDA, torch's own sync debug mode counts every synchronising call; on
  the CPU nothing synchronises, so the same methods are counted by wrapping
  them for the length of the block.
- **host draws**: random numbers drawn without naming both a generator and
  the device they land on. Such a draw uses the CPU's generator (and then a
  copy to the GPU), or the global generator (not reproducible by the engine's
  seed). The allowed form is ``buffer.normal_(generator=g)`` with ``g`` on
  ``buffer``'s device, or ``torch.randn(..., generator=g, device=g.device)``.

The wrapping replaces public ``torch.Tensor`` methods and ``torch`` functions
for the block only and restores them after; it is not thread-safe, so count
only while nothing else runs torch.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

__all__ = ["HostSyncs", "count_host_syncs"]

_SYNC_METHODS = ("item", "tolist", "cpu", "numpy", "__array__", "__bool__", "__float__", "__int__")
_ALLOCATING_DRAWS = ("randn", "rand", "randint", "randn_like", "rand_like", "randint_like", "randperm", "normal")
_IN_PLACE_DRAWS = ("normal_", "uniform_", "random_", "bernoulli_", "exponential_")


@dataclass
class HostSyncs:
    """What :func:`count_host_syncs` saw.

    Attributes:
        syncs: calls that read a device value on the host (CUDA: counted by torch's sync debug mode).
        host_draws: random draws that did not name both a generator and their device.
        calls: the counted calls by name, for a readable failure.
    """

    syncs: int = 0
    host_draws: int = 0
    calls: list[str] = field(default_factory=list)


@contextlib.contextmanager
def count_host_syncs(device: torch.device) -> Iterator[HostSyncs]:
    """Count host round-trips of the work done in the block on ``device``."""
    counts = HostSyncs()
    with contextlib.ExitStack() as stack:
        if device.type == "cuda":
            stack.enter_context(_cuda_sync_warnings(counts))
        else:
            for name in _SYNC_METHODS:
                stack.enter_context(_wrapped(torch.Tensor, name, _counting(
                    counts, f"Tensor.{name}", "syncs", lambda *args, **kwargs: True)))
        for name in _ALLOCATING_DRAWS:
            stack.enter_context(_wrapped(torch, name, _counting(
                counts, f"torch.{name} (generator and device not both given)", "host_draws", _draw_off_device)))
        for name in _IN_PLACE_DRAWS:
            stack.enter_context(_wrapped(torch.Tensor, name, _counting(
                counts, f"Tensor.{name} (no generator on the tensor's device)", "host_draws",
                _in_place_draw_off_device)))
        yield counts


@contextlib.contextmanager
def _cuda_sync_warnings(counts: HostSyncs) -> Iterator[None]:
    """torch's sync debug mode at "warn", its warnings counted."""
    before = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield
        finally:
            torch.cuda.set_sync_debug_mode(before)
    for warning in caught:
        if "synchroniz" in str(warning.message):
            counts.syncs += 1
            counts.calls.append(str(warning.message).split("\n")[0])


@contextlib.contextmanager
def _wrapped(owner: object, name: str, make: Callable[[Callable[..., object]], Callable[..., object]]) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, make(original))
    try:
        yield
    finally:
        setattr(owner, name, original)


def _counting(counts: HostSyncs, call: str, kind: str,
              is_round_trip: Callable[..., bool]) -> Callable[[Callable[..., object]], Callable[..., object]]:
    """A wrapper maker: the wrapped call adds 1 to ``counts.<kind>`` whenever ``is_round_trip(*args, **kwargs)``."""
    def make(original: Callable[..., object]) -> Callable[..., object]:
        @functools.wraps(original)
        def counted(*args: object, **kwargs: object) -> object:
            if is_round_trip(*args, **kwargs):
                setattr(counts, kind, getattr(counts, kind) + 1)
                counts.calls.append(call)
            return original(*args, **kwargs)
        return counted
    return make


def _draw_off_device(*args: object, generator: object = None, device: object = None, **kwargs: object) -> bool:
    """An allocating draw that does not name both a generator and, as its device, the generator's."""
    return not (isinstance(generator, torch.Generator) and device is not None
                and torch.device(device) == generator.device)  # type: ignore[arg-type]


def _in_place_draw_off_device(tensor: torch.Tensor, *args: object, generator: object = None, **kwargs: object) -> bool:
    """An in-place draw into ``tensor`` from no generator, or from one on another device."""
    return not (isinstance(generator, torch.Generator) and generator.device == tensor.device)
