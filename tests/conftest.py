"""Shared fixtures. The LiveKit server here is the real binary, on loopback.

``FACETALK_TEST_BURN_CPU=N`` (or ``pytest --burn-cpu N``) runs N CPU-bound
processes beside the whole session, the way a newcomer's laptop is rarely
idle: the suite must pass with them, because its timing assertions rest on
order and measured bounds, not on scheduling luck.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from facetalk.livekit_server import LocalLiveKitServer
from facetalk.testing.local_stack import running_worker

__all__ = ["CONFIGS", "REPO", "livekit_server", "running_worker"]

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
BURN_CPU_ENV = "FACETALK_TEST_BURN_CPU"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--burn-cpu",
        type=int,
        default=int(os.environ.get(BURN_CPU_ENV) or 0),
        help=f"busy processes to run beside the tests (default: ${BURN_CPU_ENV} or 0)",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    burners = config.getoption("--burn-cpu")
    return f"facetalk: {burners} CPU burner process(es) beside the tests" if burners else None


@pytest.fixture(scope="session", autouse=True)
def cpu_burners(request: pytest.FixtureRequest) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``--burn-cpu`` pure-Python busy loops, each holding one core, stopped after the session."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(request.config.getoption("--burn-cpu"))
    ]
    try:
        yield burners
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


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
