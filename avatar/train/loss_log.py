"""``losses.csv``: one row per optimizer step, appended as training goes, cut back on resume.

Rows are flushed every step, so after a kill the file may run ahead of the last
checkpoint; :meth:`LossLog.truncate` drops those rows when the run resumes,
so the file ends up with each step exactly once and no gap.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TextIO

__all__ = ["LossLog"]


class LossLog:
    """Appends rows of ``columns`` to ``path`` (header written once).

    Args:
        path: the CSV file.
        columns: column names; the first is ``step``.
    """

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path, self.columns = Path(path), columns
        self._file: TextIO | None = None

    def truncate(self, step: int) -> None:
        """Keep the header and the rows with ``step`` ≤ ``step`` (atomic rewrite)."""
        if not self.path.is_file():
            return
        with self.path.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)

    def append(self, row: dict[str, float | int]) -> None:
        """Write one row and flush it to the OS."""
        if self._file is None:
            new = not self.path.is_file() or self.path.stat().st_size == 0
            self._file = self.path.open("a", newline="")
            if new:
                csv.writer(self._file).writerow(self.columns)
        csv.DictWriter(self._file, self.columns).writerow(row)
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
