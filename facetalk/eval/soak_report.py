"""The soak's report: ``soak.json`` with a summary against the soak's targets, and ``soak.png``.

The targets are those of a healthy hour (issue 17): the A/V offset drifts at
most 40 ms from the first to the last 5 minutes, delivered fps stays at or
above 24.5, the worker's RSS grows at most 50 MB after the first 5 minutes,
and nothing fails. RSS growth is the trend: the median of the last span
against the median of the span right after the first 5 minutes, since one
long answer lifts RSS for a window or two and then it falls back; the peak
above that span's start is reported beside it. Runs shorter than 10 minutes
compare their first and last thirds instead of 5-minute spans, so a short run
reads the same way.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .soak import SoakRun

__all__ = ["TARGETS", "soak_summary", "write_soak_report"]

TARGETS = {"av_offset_drift_ms": 40.0, "min_fps": 24.5, "rss_growth_mb": 50.0, "errors": 0}


def _span_s(run: SoakRun) -> float:
    """The length of the early and late spans compared: 5 minutes, or a third of a short run."""
    return 300.0 if run.minutes >= 10 else run.minutes * 60 / 3


def _first_last_p50(run: SoakRun, span: float, length: float) -> list[float | None]:
    """The median response in the first and in the last span: a reply that slows over the run shows here."""
    def p50(picked: list[float]) -> float | None:
        return round(float(np.median(picked)), 1) if picked else None

    answered = [(t.t_s, t.response_ms) for t in run.turns if t.response_ms is not None]
    return [p50([r for t, r in answered if t < span]), p50([r for t, r in answered if t >= length - span])]


def soak_summary(run: SoakRun) -> dict:
    """Figures over the whole run, and whether each target was met."""
    span, length = _span_s(run), run.minutes * 60
    lags = [(t.t_s, t.lipsync_lag_ms) for t in run.turns if t.lipsync_lag_ms is not None]
    early = [lag for t, lag in lags if t < span]
    late = [lag for t, lag in lags if t >= length - span]
    drift = abs(float(np.mean(late)) - float(np.mean(early))) if early and late else None
    fps = [w.fps for w in run.windows]
    rss_after = [w.worker_rss_mb for w in run.windows if w.t_s >= span]
    compared = min(span, (length - span) / 2)  # short runs split what follows the warm-up in two
    settled = [w.worker_rss_mb for w in run.windows if span <= w.t_s < span + compared]
    last = [w.worker_rss_mb for w in run.windows if w.t_s >= length - compared]
    growth = float(np.median(last) - np.median(settled)) if settled and last else None
    responses = [t.response_ms for t in run.turns if t.response_ms is not None]
    psnr = [w.background_psnr_db for w in run.windows if w.background_psnr_db is not None]
    summary = {
        "minutes": run.minutes,
        "turns": len(run.turns),
        "answered": len(responses),
        "av_offset_ms_mean": round(float(np.mean([lag for _, lag in lags])), 1) if lags else None,
        "av_offset_drift_ms": None if drift is None else round(drift, 1),
        "min_fps": min(fps) if fps else None,
        "mean_fps": round(float(np.mean(fps)), 2) if fps else None,
        "max_frame_gap_ms": max(w.max_gap_ms for w in run.windows) if run.windows else None,
        "response_ms_p50": round(float(np.percentile(responses, 50)), 1) if responses else None,
        "response_ms_max": round(max(responses), 1) if responses else None,
        "response_ms_p50_first_last": _first_last_p50(run, span, length),
        "worker_rss_mb_first": run.windows[0].worker_rss_mb if run.windows else None,
        "worker_rss_mb_last": run.windows[-1].worker_rss_mb if run.windows else None,
        "rss_growth_mb": None if growth is None else round(growth, 1),
        "rss_peak_above_settled_mb": round(max(rss_after) - rss_after[0], 1) if rss_after else None,
        "background_psnr_db_min": min(psnr) if psnr else None,
        "errors": len(run.errors),
        "compared_span_s": span,
    }
    summary["targets_met"] = {
        "av_offset_drift_ms": drift is not None and drift <= TARGETS["av_offset_drift_ms"],
        "min_fps": bool(fps) and min(fps) >= TARGETS["min_fps"],
        "rss_growth_mb": growth is not None and growth <= TARGETS["rss_growth_mb"],
        "errors": not run.errors,
    }
    return summary


def write_soak_report(run: SoakRun, out: Path) -> dict:
    """Write ``soak.json`` and ``soak.png`` into ``out``; return the summary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    summary = soak_summary(run)
    report = {
        "summary": summary,
        "targets": TARGETS,
        "turns": [asdict(t) for t in run.turns],
        "windows": [asdict(w) for w in run.windows],
        "errors": run.errors,
    }
    (out / "soak.json").write_text(json.dumps(report, indent=2))

    minutes = np.array([w.t_s for w in run.windows]) / 60
    turn_minutes = np.array([t.t_s for t in run.turns]) / 60
    fig, axes = plt.subplots(5, 1, figsize=(9, 12), sharex=True)
    panels = [
        ("A/V offset (ms, + video late)", turn_minutes, [t.lipsync_lag_ms for t in run.turns], "o"),
        ("response latency (ms)", turn_minutes, [t.response_ms for t in run.turns], "o"),
        ("delivered fps / max frame gap (ms, right)", minutes, [w.fps for w in run.windows], "-"),
        ("worker RSS (MB)", minutes, [w.worker_rss_mb for w in run.windows], "-"),
        ("background PSNR vs persona (dB)", minutes, [w.background_psnr_db for w in run.windows], "-"),
    ]
    for ax, (title, x, y, style) in zip(axes, panels, strict=True):
        values = np.array([np.nan if v is None else v for v in y], dtype=float)
        ax.plot(x, values, style, markersize=4)
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    axes[2].axhline(TARGETS["min_fps"], color="tab:red", linewidth=0.8, linestyle="--")
    gaps = axes[2].twinx()
    gaps.plot(minutes, [w.max_gap_ms for w in run.windows], color="tab:orange", linewidth=0.8)
    axes[-1].set_xlabel("minutes since the greeting")
    errors = f", {len(run.errors)} error(s)" if run.errors else ", no errors"
    fig.suptitle(f"FaceTalk soak: {run.minutes:g} min, {len(run.turns)} turns{errors}")
    fig.tight_layout()
    fig.savefig(out / "soak.png", dpi=90)
    plt.close(fig)
    return summary
