"""Heavy models loaded once per worker process, shared by every room it serves.

A livekit-agents worker runs several jobs in one process; each job builds its own
STT and TTS. Loading Whisper or a piper voice per job would cost a second and
hundreds of megabytes each time, so the plugins keep their models here, keyed by
the options that change the loaded weights. The worker's prewarm fills the cache
before the first room arrives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["ModelCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ModelCache(Generic[K, V]):
    """A thread-safe map from load options to a loaded model.

    Loads happen under the lock, so two jobs asking for the same model at the
    same time load it once.
    """

    def __init__(self) -> None:
        self._models: dict[K, V] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """The model for ``key``, calling the blocking ``load()`` the first time only."""
        with self._lock:
            if key not in self._models:
                self._models[key] = load()
            return self._models[key]
