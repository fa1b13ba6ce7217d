"""Grid status lines: run i/N, the run's label, elapsed and the ETA of the whole grid."""

from __future__ import annotations

import re
from typing import Any

from embedlab.bench import BenchRecord, Grid, GridRun, run_grid
from embedlab.bench._grid import GridClock, format_seconds


def _task(data: Any, run: GridRun) -> BenchRecord:
    return BenchRecord(
        suite="t", dataset="d", method=run.method, seed=run.seed, compression=run.compression
    )


def test_status_lines_count_runs_and_skip_recorded_ones() -> None:
    runs = [GridRun(m, s, c) for s in (0, 1) for m, c in (("full", 1.0), ("qr", 10.0))]
    grid = Grid(suite="t", dataset="d", config_hash="h", runs=runs, task=_task, data=lambda s: s)
    lines: list[str] = []
    records = run_grid(grid, announce=lines.append)
    assert len(records) == 4
    assert [line.split(" · ")[0] for line in lines] == ["run 1/4", "run 2/4", "run 3/4", "run 4/4"]
    assert lines[1].split(" · ")[1] == "qr @ 10x seed 0"
    assert lines[0].endswith("ETA ?")  # nothing finished yet: no estimate
    assert all(re.search(r"elapsed \d+s · ETA (\d+s|\?)$", line) for line in lines)
    # a resumed grid counts only the runs it still has to do
    for r in records:
        r.config_hash = "h"
    again: list[str] = []
    run_grid(grid, recorded=records[:3], announce=again.append)
    assert [line.split(" · ")[0] for line in again] == ["run 1/1"]


def test_eta_is_mean_time_per_finished_run_times_runs_left() -> None:
    clock = GridClock(10)
    clock.start -= 100.0  # 100 s elapsed
    clock.finished = 4
    line = clock.status(GridRun("qr", 0, 100.0), starting=True)
    assert line.startswith("run 1/10 · qr @ 100x seed 0 · elapsed 1m40s")
    assert line.endswith("ETA 2m30s")  # 25 s per run, 6 left
    assert [format_seconds(s) for s in (0.4, 59, 61, 3599, 3720)] == [
        "0s",
        "59s",
        "1m01s",
        "59m59s",
        "1h02m",
    ]
