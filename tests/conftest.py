"""Shared fixtures. The LiveKit server here is the real binary, on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facetalk.livekit_server import LocalLiveKitServer
from facetalk.local_stack import running_worker

__all__ = ["CONFIGS", "REPO", "livekit_server", "running_worker"]

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


@pytest.fixture(scope="session")
def livekit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLiveKitServer]:
    """A ``livekit-server --dev`` on free loopback ports, stopped after the session."""
    log = tmp_path_factory.mktemp("livekit") / "server.log"
    with LocalLiveKitServer(log_path=log) as server:
        yield server


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread: the tiny diffusion models only lose from threading on a shared 2-core box."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
