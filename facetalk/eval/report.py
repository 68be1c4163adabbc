"""The latency report: ``report.json``, an HTML page with plots, a terminal summary.

``summary`` maps each measure to ``{p50, p90, p95, n}`` in milliseconds over
the turns where it applies; ``by_speech`` gives response and avatar latency
for human recordings and synthetic speech side by side; ``stages`` does the
same for the agent's own per-reply metrics and the legs between agent and
user, which break ``response_ms`` down (see docs/latency.md).

Two kinds of turn are counted apart rather than averaged: ``false_cut_ins``,
where the agent's audio started before the user had finished, and
``flagged_turns``, whose legs are negative or do not add up to the response
(a measuring fault, such as a turn the agent ended at a pause inside it).
``preflight`` says how often the reply played was the one prepared on the
preflight transcript, before the turn ended.
"""

from __future__ import annotations

import base64
import io
import json
import os
import platform
from dataclasses import asdict
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from .latency import LatencyRun
from .measures import STAGES, TurnResult

__all__ = ["MEASURES", "build_report", "leg_fault", "print_summary", "used_preflight", "write_html"]

MEASURES = (
    "response_ms",
    "avatar_ms",
    "lipsync_lag_ms",
    "barge_in_audio_stop_ms",
    "barge_in_listening_ms",
    "join_first_frame_ms",
    "join_greeting_ms",
)


def _stats(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"p50": None, "p90": None, "p95": None, "n": 0}
    p50, p90, p95 = np.percentile(values, [50, 90, 95])
    return {"p50": round(float(p50), 1), "p90": round(float(p90), 1), "p95": round(float(p95), 1), "n": len(values)}


def _values(run: LatencyRun, measure: str) -> list[float]:
    rows = [asdict(j) for j in run.joins] if measure.startswith("join_") else [asdict(t) for t in run.turns]
    return [row[measure] for row in rows if row.get(measure) is not None]


_LEGS = ("to_agent", "e2e_latency", "to_user")
_LEGS_TOLERANCE_MS = 30.0


def leg_fault(turn: TurnResult) -> str | None:
    """Why the turn's legs cannot be trusted, or None when they are negative nowhere and add up."""
    stages = turn.stages_ms
    if turn.response_ms is None or not all(leg in stages for leg in _LEGS):
        return None
    negative = [leg for leg in _LEGS if stages[leg] < 0]
    if negative:
        return "negative " + ", ".join(f"{leg} ({stages[leg]:.0f} ms)" for leg in negative)
    total = sum(stages[leg] for leg in _LEGS)
    if abs(total - turn.response_ms) > _LEGS_TOLERANCE_MS:
        return f"legs add up to {total:.0f} ms, the response was {turn.response_ms:.0f} ms"
    return None


def used_preflight(turn: TurnResult) -> bool | None:
    """Whether the reply played was the one prepared on the preflight transcript.

    A reply generated after the turn ended cannot start playing sooner than
    its LLM's first token plus its TTS's first audio; one that does was
    started before, on the preflight. None without the stages to tell.
    """
    stages = turn.stages_ms
    needed = ("e2e_latency", "end_of_turn_delay", "llm_node_ttft", "tts_node_ttfb")
    if not all(k in stages for k in needed):
        return None
    after_turn_end = stages["e2e_latency"] - stages["end_of_turn_delay"]
    return after_turn_end < stages["llm_node_ttft"] + stages["tts_node_ttfb"] - _LEGS_TOLERANCE_MS


def build_report(run: LatencyRun) -> dict:
    """The JSON-able report of ``run``."""
    per_room = []
    for join in run.joins:
        responses = [t.response_ms for t in run.turns if t.room == join.room and t.response_ms is not None]
        per_room.append({**asdict(join), "response_ms": _stats(responses)})
    faults = {id(t): fault for t in run.turns if (fault := leg_fault(t)) is not None}
    sound = [t for t in run.turns if id(t) not in faults]
    spoken = [t for t in run.turns if not t.interrupt]
    return {
        "setup": {
            "llm": run.llm,
            "rooms": run.rooms,
            "turns_per_room": len(run.turns) // max(run.rooms, 1),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        },
        "summary": {m: _stats(_values(run, m)) for m in MEASURES},
        "by_speech": {
            speech: {
                m: _stats([getattr(t, m) for t in run.turns if t.speech == speech and getattr(t, m) is not None])
                for m in ("response_ms", "avatar_ms")
            }
            for speech in sorted({t.speech for t in run.turns})
        },
        "false_cut_ins": {
            "count": sum(t.cut_in for t in spoken),
            "of_turns": len(spoken),
            "turns": [_turn_id(t) for t in spoken if t.cut_in],
        },
        "flagged_turns": [{**_turn_id(t), "fault": faults[id(t)]} for t in run.turns if id(t) in faults],
        "preflight": _preflight_rate([used_preflight(t) for t in sound]),
        "stages": {s: _stats([t.stages_ms[s] for t in sound if s in t.stages_ms]) for s in STAGES},
        "rooms": per_room,
        "turns": [asdict(t) for t in run.turns],
    }


def _preflight_rate(used: list[bool | None]) -> dict:
    known = [u for u in used if u is not None]
    return {"used": sum(known), "of_turns": len(known), "hit_rate": round(sum(known) / len(known), 2) if known else None}


def _turn_id(turn: TurnResult) -> dict:
    return {"room": turn.room, "index": turn.index, "text": turn.text, "speech": turn.speech}


def print_summary(report: dict, console: Console) -> None:
    """A one-screen table of the summary and the stage breakdown."""
    table = Table(title=f"turn-taking latency ({report['setup']['rooms']} room(s), LLM: {report['setup']['llm']})")
    for column in ("measure", "p50 ms", "p90 ms", "p95 ms", "n"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    for name, stats in [*report["summary"].items(), *((f"stage: {k}", v) for k, v in report["stages"].items())]:
        table.add_row(name, *(("-" if stats[k] is None else f"{stats[k]:.0f}") for k in ("p50", "p90", "p95")), str(stats["n"]))
    console.print(table)
    for speech, measures in report["by_speech"].items():
        figures = ", ".join(f"{m} p50 {v['p50']} / p90 {v['p90']} (n={v['n']})" for m, v in measures.items())
        console.print(f"{speech} speech: {figures}")
    cut_ins = report["false_cut_ins"]
    console.print(f"false cut-ins: {cut_ins['count']} of {cut_ins['of_turns']} turns")
    preflight = report["preflight"]
    console.print(f"replies prepared on the preflight transcript: {preflight['used']} of {preflight['of_turns']}")
    for turn in report["flagged_turns"]:
        console.print(f"[yellow]flagged, not averaged:[/] {turn['room']}#{turn['index']}: {turn['fault']}")
    fps = [r["delivered_fps"] for r in report["rooms"]]
    console.print(f"delivered video: {min(fps):.1f}–{max(fps):.1f} fps per room")


def _png(figure: object) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")  # type: ignore[attr-defined]
    return base64.b64encode(buffer.getvalue()).decode()


def _plots(report: dict) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    turns = report["turns"]
    plots = []

    fig, ax = plt.subplots(figsize=(7, 4))
    for measure in ("response_ms", "avatar_ms", "barge_in_audio_stop_ms"):
        values = np.sort([t[measure] for t in turns if t[measure] is not None])
        if len(values):
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post", label=measure)
    ax.set_xlabel("ms")
    ax.set_ylabel("fraction of turns")
    ax.grid(alpha=0.3)
    ax.legend()
    plots.append(("Latency CDFs", _png(fig)))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 0.35 * len(turns) + 1.2))
    colours = {"to agent": "#8c8c8c", "end of turn": "#4c72b0", "reply (LLM, TTS, avatar)": "#55a868", "to user": "#c44e52"}
    for row, turn in enumerate(turns):
        left = 0.0
        for (name, colour), width in zip(colours.items(), _timeline(turn["stages_ms"]), strict=True):
            ax.barh(row, width, left=left, color=colour, label=name if row == 0 else None)
            left += width
        if turn["response_ms"] is not None:
            ax.plot(turn["response_ms"], row, "k|", markersize=12, label="user-side response" if row == 0 else None)
    ax.set_yticks(range(len(turns)), [f"{t['room'][-4:]}#{t['index']}" for t in turns])
    ax.invert_yaxis()
    ax.set_xlabel("ms after end of user speech")
    ax.legend(loc="lower right", fontsize=8)
    plots.append(("Per-turn timeline: stages (bars) and user-side response (|)", _png(fig)))
    plt.close(fig)

    lags = [t["lipsync_lag_ms"] for t in turns if t["lipsync_lag_ms"] is not None]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.scatter(range(len(lags)), lags)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("turn")
    ax.set_ylabel("lip-sync lag, ms (video later > 0)")
    plots.append(("Lip-sync lags", _png(fig)))
    plt.close(fig)
    return plots


def _timeline(stages: dict[str, float]) -> tuple[float, float, float, float]:
    """A turn as consecutive spans: to the agent, end of turn, the reply's start, to the user.

    The LLM and TTS start during the end-of-turn wait (preemptive generation),
    so their own times overlap it; what they add is e2e minus end of turn.
    """
    end_of_turn = stages.get("end_of_turn_delay", 0.0)
    reply = max(stages.get("e2e_latency", end_of_turn) - end_of_turn, 0.0)
    return stages.get("to_agent", 0.0), end_of_turn, reply, stages.get("to_user", 0.0)


def write_html(report: dict, path: Path) -> None:
    """A self-contained page: the summary table and the plots (PNG, inline)."""
    rows = "".join(
        f"<tr><td>{name}</td>" + "".join(f"<td>{'-' if s[k] is None else s[k]}</td>" for k in ("p50", "p90", "p95", "n")) + "</tr>"
        for name, s in [*report["summary"].items(), *report["stages"].items()]
    )
    figures = "".join(f"<h2>{title}</h2><img src='data:image/png;base64,{png}'>" for title, png in _plots(report))
    setup = json.dumps(report["setup"], indent=1)
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>FaceTalk latency report</title>"
        "<style>body{font-family:system-ui;max-width:960px;margin:2em auto}td,th{padding:2px 10px;text-align:right}"
        "td:first-child{text-align:left}img{max-width:100%}</style>"
        f"<h1>FaceTalk turn-taking latency</h1><pre>{setup}</pre>"
        f"<table><tr><th>measure (ms)</th><th>p50</th><th>p90</th><th>p95</th><th>n</th></tr>{rows}</table>{figures}",
        encoding="utf-8",
    )
