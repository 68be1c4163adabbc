"""Start the worker from the command line, with livekit-agents' own CLI.

``facetalk agent dev|start|connect …`` hands its arguments to livekit-agents'
CLI unchanged, so its conventions (dev mode with reload, production ``start``,
``connect --room``) and its dispatch across many workers stay as documented
upstream. Before that, this module checks the configs and models, so a
mistake fails at start-up rather than in the first room, and serves the
embedded LLM when the pipeline asks for it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from livekit.agents import cli

from ..config import EmbeddedLLMConfig, load_persona, load_pipeline
from .embedded_llm import EmbeddedLLMServer
from .providers import build_llm
from .worker import EMBEDDED_LLM_URL_ENV, PERSONA_ENV, PIPELINE_ENV, WorkerResources, create_server

__all__ = ["run_worker_cli", "serving_embedded_llm"]


@contextlib.contextmanager
def serving_embedded_llm(needed: bool) -> Iterator[str | None]:
    """Yield the embedded LLM's base URL while it runs, or None if not needed."""
    if not needed:
        yield None
        return
    with EmbeddedLLMServer() as server:
        yield server.base_url


def run_worker_cli(persona: Path, pipeline: Path, argv: Sequence[str]) -> None:
    """Check everything, then run livekit-agents' CLI with ``argv`` (e.g. ``["start"]``)."""
    persona_path, pipeline_path = persona.resolve(), pipeline.resolve()
    config = load_pipeline(pipeline_path)
    load_persona(persona_path)
    # Loads every model once here: a missing one fails now, with its fix.
    WorkerResources.load(persona_path, pipeline_path)

    os.environ[PERSONA_ENV] = str(persona_path)
    os.environ[PIPELINE_ENV] = str(pipeline_path)
    os.environ.setdefault("LIVEKIT_URL", config.livekit.url)
    os.environ.setdefault("LIVEKIT_API_KEY", config.livekit.api_key)
    os.environ.setdefault("LIVEKIT_API_SECRET", config.livekit.api_secret.get_secret_value())
    with serving_embedded_llm(isinstance(config.llm, EmbeddedLLMConfig)) as llm_url:
        build_llm(config.llm, embedded_base_url=llm_url)  # a bad class path fails here
        if llm_url is not None:
            os.environ[EMBEDDED_LLM_URL_ENV] = llm_url
        sys.argv = ["facetalk agent", *argv]
        cli.run_app(create_server(config.worker))
