"""A helper process that serves HTTP on loopback: started, awaited, always stopped.

The LiveKit server and the embedded LLM server are both run this way. Their
output goes to a log file, whose tail explains a failed start. They run in
their own session and die with their parent (:mod:`facetalk.shutdown`).
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from .errors import FaceTalkError
from .shutdown import child_process_options

__all__ = ["ServiceProcess", "StartStopContext"]


class StartStopContext:
    """``with obj:`` calls ``obj.start()`` and always ``obj.stop()``."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


@dataclass
class ServiceProcess:
    """Runs ``args`` and waits until ``ready_url`` answers HTTP 200."""

    name: str
    args: list[str]
    ready_url: str
    log_path: Path
    hint: str
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def start(self, timeout_s: float) -> None:
        """Start and wait until ready; on failure (or Ctrl-C/SIGTERM meanwhile) stop it and raise."""
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, **child_process_options()
            )
        try:
            ready = self._wait_until_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        if ready:
            return
        tail = self.log_path.read_text(errors="replace")[-2000:]
        self.stop()
        raise FaceTalkError(f"{self.name} did not start (log: {self.log_path}):\n{tail}", hint=self.hint)

    def _wait_until_ready(self, timeout_s: float) -> bool:
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._process.poll() is None:
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        return False

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s. Safe to call twice."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
