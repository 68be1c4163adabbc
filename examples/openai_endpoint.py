"""Give the avatar any OpenAI-compatible LLM: vLLM, llama.cpp, Ollama, OpenAI.

Run it from the repository root::

    python -m examples.openai_endpoint --base-url http://127.0.0.1:11434/v1 --model llama3.2    # Ollama
    OPENAI_API_KEY=sk-... python -m examples.openai_endpoint --base-url https://api.openai.com/v1 --model gpt-4o-mini

It first asks the endpoint for one token with the ``openai`` client, so a
wrong URL, model or key is reported before anything starts. Then it writes
the pipeline file a worker would use (``--pipeline-out``, for
``facetalk agent start --pipeline ...`` later), starts a local LiveKit server
and a worker with it, and has a user ask one question in a room
(:mod:`examples.talk_in_a_room`).

The key is never written to the pipeline: the file holds only the *name* of
the environment variable that holds it (``api_key_env``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import openai
import yaml

from examples.talk_in_a_room import run, speech_to_say
from facetalk.config import PipelineConfig
from facetalk.resources import PACKAGED_CONFIGS

__all__ = ["check_endpoint", "llm_section", "main"]


def llm_section(base_url: str, model: str, api_key_env: str) -> dict:
    """The pipeline's ``llm`` section for an OpenAI-compatible endpoint."""
    return {"provider": "openai", "base_url": base_url, "model": model, "api_key_env": api_key_env}


def check_endpoint(base_url: str, model: str, api_key_env: str, timeout_s: float = 20.0) -> None:
    """Ask the endpoint for one token; raise ``SystemExit`` with what to fix if it cannot answer."""
    client = openai.OpenAI(base_url=base_url, api_key=os.environ.get(api_key_env) or "none", timeout=timeout_s,
                           max_retries=0)  # fmt: skip
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    except openai.APIConnectionError as e:
        raise SystemExit(f"error: nothing answers at {base_url} ({e}); start the server or fix --base-url") from e
    except openai.AuthenticationError as e:
        raise SystemExit(f"error: {base_url} refused the key; put it in ${api_key_env}") from e
    except openai.APIStatusError as e:
        raise SystemExit(
            f"error: {base_url} answered {e.status_code} for model {model!r}: {e.message}; check --model"
        ) from e


def write_pipeline(section: dict, path: Path) -> None:
    """The default pipeline with ``section`` as its LLM, validated, written to ``path``."""
    config = yaml.safe_load((PACKAGED_CONFIGS / "pipeline.yaml").read_text())
    config["llm"] = section
    PipelineConfig.model_validate(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"))
    parser.add_argument("--model", required=True, help="the model name the endpoint serves")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="the variable holding the key, if any")
    parser.add_argument("--say", default="What is your name?", help="what the user asks")
    parser.add_argument("--pipeline-out", type=Path, default=Path("pipeline-openai.yaml"))
    args = parser.parse_args(argv)

    section = llm_section(args.base_url, args.model, args.api_key_env)
    check_endpoint(args.base_url, args.model, args.api_key_env)
    write_pipeline(section, args.pipeline_out)
    print(f"pipeline for this endpoint: {args.pipeline_out}", file=sys.stderr)
    run(section, speech_to_say(args.say, None))


if __name__ == "__main__":
    main()
