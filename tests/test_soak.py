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
from pathlib import Path

import pytest

from .conftest import CONFIGS

pytestmark = pytest.mark.e2e


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
    windows = report["windows"]
    assert len(windows) >= 10 and windows[-1]["t_s"] >= 50
    assert all(w["fps"] > 5 and w["max_gap_ms"] < 2000 for w in windows), windows  # never frozen
    assert all(w["worker_rss_mb"] > 100 for w in windows)
    assert all(w["background_psnr_db"] > 25 for w in windows), windows  # the persona's background, intact
    assert (out / "soak.png").stat().st_size > 10_000
