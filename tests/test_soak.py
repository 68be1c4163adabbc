"""A one-minute soak: the real server and worker, a user who talks and talks over the agent.

The hour-long run is `facetalk eval soak --minutes 60` (docs/soak.md); this
short one checks that every figure is recorded over time, that the report is
written, and that nothing failed. Speed targets (24.5 fps, drift ≤ 40 ms)
are the long run's to check, not a test's on a shared machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from facetalk.eval.soak import SoakRun, SoakWindow
from facetalk.eval.soak_report import soak_summary

from .conftest import CONFIGS



@pytest.mark.e2e
def test_a_short_soak_records_every_figure_over_time(tmp_path: Path) -> None:
    """`facetalk eval soak --minutes 1` answers every turn, keeps the video coming, and writes its report."""
    out = tmp_path / "soak"
    result = subprocess.run(
        [sys.executable, "-m", "facetalk", "eval", "soak", "--minutes", "1", "--out", str(out),
         "--persona", str(CONFIGS / "persona.yaml"), "--pipeline", str(CONFIGS / "pipeline.yaml")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "soak.json").read_text())
    summary = report["summary"]
    assert report["errors"] == [] and summary["errors"] == 0
    assert summary["turns"] >= 2 and summary["answered"] == summary["turns"], report["turns"]
    assert all("e2e_latency" in t["stages_ms"] for t in report["turns"]), report["turns"]  # where the time went
    assert all(p50 is not None for p50 in summary["response_ms_p50_first_last"]), summary
    windows = report["windows"]
    assert len(windows) >= 10 and windows[-1]["t_s"] >= 50
    assert all(w["fps"] > 5 and w["max_gap_ms"] < 2000 for w in windows), windows  # never frozen
    assert all(w["worker_rss_mb"] > 100 for w in windows)
    assert all(w["background_psnr_db"] > 25 for w in windows), windows  # the persona's background, intact
    assert (out / "soak.png").stat().st_size > 10_000


def _hour(rss_at: Callable[[float], float]) -> SoakRun:
    """A 60-minute run's windows (every 5 s) with the worker's RSS given by ``rss_at(seconds)``."""
    windows = [SoakWindow(t_s=t, fps=25.0, max_gap_ms=40.0, background_psnr_db=35.0, worker_rss_mb=rss_at(t))
               for t in np.arange(5.0, 3600.1, 5.0)]  # fmt: skip
    return SoakRun(minutes=60, windows=windows)


def test_rss_growth_is_the_trend_after_the_warm_up_not_one_long_answer() -> None:
    warm_then_spike = _hour(lambda t: (2300 if t < 300 else 2400) + (80 if 1800 <= t < 1815 else 0))
    summary = soak_summary(warm_then_spike)
    assert summary["rss_growth_mb"] == 0.0 and summary["targets_met"]["rss_growth_mb"]
    assert summary["rss_peak_above_settled_mb"] == 80.0  # shown, not hidden

    leaking = soak_summary(_hour(lambda t: 2400 + t / 60))  # 1 MB a minute
    assert leaking["rss_growth_mb"] == pytest.approx(50.0, abs=1.0)
    assert not soak_summary(_hour(lambda t: 2400 + 1.2 * t / 60))["targets_met"]["rss_growth_mb"]
