"""Measure how quickly the avatar takes turns, and what a pipeline setting changes.

Run it from the repository root::

    python -m examples.latency_eval                                   # 6 turns, piper's voice
    python -m examples.latency_eval --script mixed --turns 12         # real people's recordings too
    python -m examples.latency_eval --set turn.min_endpointing_delay_s=0.4 --set vad.min_silence_ms=300
    python -m examples.latency_eval --llm http://127.0.0.1:8080/v1   # your endpoint, not the scripted one

A simulated user joins a room on a local LiveKit server, waits for the
greeting and speaks the script turn by turn, and everything is measured on
the user's side, as a person would experience it: from the end of their
speech to the first sound of the answer (``response_ms``) and to the first
frame where the avatar's mouth moves (``avatar_ms``). The agent's own stage
metrics say where the time went. With the default scripted LLM the answer
is instant, so the figures are FaceTalk's own share of the delay.

``--set SECTION.FIELD=VALUE`` overrides one pipeline field for this run, so
the same command compares settings. The full report (JSON and an HTML page
with plots) goes to ``--out``; ``facetalk eval latency`` is the same
measurement as a command.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import yaml

from facetalk.avatar.models import cache_dir
from facetalk.config import load_pipeline
from facetalk.eval.latency import run_latency_eval
from facetalk.eval.report import build_report, write_html
from facetalk.errors import FaceTalkError
from facetalk.eval.script import builtin_script
from facetalk.resources import PACKAGED_CONFIGS

__all__ = ["evaluate", "main", "pipeline_with"]


def pipeline_with(overrides: list[str], path: Path) -> Path:
    """The default pipeline with ``SECTION.FIELD=VALUE`` overrides, validated, written to ``path``."""
    config = yaml.safe_load((PACKAGED_CONFIGS / "pipeline.yaml").read_text())
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, field = key.partition(".")
        if not (sep and dot and section and field):
            raise SystemExit(f"error: bad --set {item!r}; write SECTION.FIELD=VALUE, e.g. turn.min_endpointing_delay_s=0.4")
        config.setdefault(section, {})[field] = yaml.safe_load(value)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    load_pipeline(path)  # a wrong field or value is reported here, naming it
    return path


def evaluate(turns: int, script: str, llm: str, overrides: list[str], out: Path) -> dict:
    """Run the evaluation and write ``out/report.json`` and ``out/report.html``; return the report."""
    out.mkdir(parents=True, exist_ok=True)
    run = asyncio.run(
        run_latency_eval(
            turns=turns,
            script=builtin_script(script, cache_dir() / "human-speech"),
            llm=llm,
            rooms=1,
            persona=PACKAGED_CONFIGS / "persona.yaml",
            pipeline=pipeline_with(overrides, out / "pipeline.yaml"),
            work_dir=out / "logs",
        )
    )
    report = build_report(run)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    write_html(report, out / "report.html")
    return report


def summarize(report: dict) -> str:
    """A few lines a person reads: latency by kind of speech, cut-ins, and the slowest stages."""
    lines = []
    for speech, measures in report["by_speech"].items():
        response, avatar = measures["response_ms"], measures["avatar_ms"]
        lines.append(
            f"{speech} speech: answer heard after p50 {response['p50']} / p90 {response['p90']} ms, "
            f"mouth moving after p50 {avatar['p50']} / p90 {avatar['p90']} ms ({response['n']} turns)"
        )
    cut_ins = report["false_cut_ins"]
    lines.append(f"the agent cut in {cut_ins['count']} times in {cut_ins['of_turns']} turns")
    stages = sorted(
        ((name, s["p50"]) for name, s in report["stages"].items() if s["p50"] is not None and name != "e2e_latency"),
        key=lambda item: -item[1],
    )
    lines.append("slowest stages (p50 ms): " + ", ".join(f"{name} {ms:.0f}" for name, ms in stages[:3]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--script", default="synthetic", choices=["synthetic", "human", "mixed"])
    parser.add_argument("--llm", default="scripted", help="'scripted', 'embedded' or an OpenAI-compatible URL")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.FIELD=VALUE")
    parser.add_argument("--out", type=Path, default=Path("latency-example"))
    args = parser.parse_args(argv)
    try:
        report = evaluate(args.turns, args.script, args.llm, args.overrides, args.out)
    except FaceTalkError as e:
        raise SystemExit(f"error: {e}") from e
    print(summarize(report))
    print(f"full report: {args.out / 'report.html'}")


if __name__ == "__main__":
    main()
