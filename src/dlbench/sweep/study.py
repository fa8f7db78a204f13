"""Run a planned sweep trial by trial: cached trials are skipped, interrupted ones resume, failures are rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dlbench.cache import Store
from dlbench.errors import DlbenchError
from dlbench.sweep.grid import SweepPlan, Trial
from dlbench.sweep.runner import run_one


class TrialFailed(DlbenchError):
    """--fail-fast: a trial diverged or ran out of memory."""


@dataclass
class SweepCounts:
    total: int
    cached: int = 0
    done: int = 0
    failed: int = 0
    rows: list[dict] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.cached} cached, {self.done} trained, {self.failed} failed"


def run_sweep(plan: SweepPlan, store: Store, *, data_dir: Path | None = None, force: bool = False,
              fail_fast: bool = False, on_trial: Callable[[int, Trial, SweepCounts], Callable | None] | None = None,
              command: str = "") -> SweepCounts:
    """Train every trial not in the cache. ``on_trial(k, trial, counts)`` may return an engine callback."""
    definition = plan.definition()
    definition["command"] = command
    store.save_sweep(definition)  # first, so a killed sweep is still known to `report`
    counts = SweepCounts(len(plan.trials))
    datasets: dict[str, object] = {}  # one load per dataset config, shared by its trials
    for k, trial in enumerate(plan.trials):
        callback = on_trial(k, trial, counts) if on_trial else None
        cfg = trial.config
        data = None
        if not store.has(cfg.key) or force:
            data_key = f"{cfg.dataset}:{sorted(cfg.dataset_options.items())}"
            if data_key not in datasets:
                from dlbench.data import get_dataset

                datasets[data_key] = get_dataset(cfg.dataset).load(data_dir, cfg.dataset_options)
            data = datasets[data_key]
        row, cached = run_one(cfg, store, data_dir=data_dir, force=force, callback=callback, data=data)
        counts.cached += cached
        counts.done += not cached and row["status"] == "ok"
        counts.failed += row["status"] != "ok"
        counts.rows.append(row)
        if fail_fast and row["status"] != "ok":
            raise TrialFailed(f"trial {k + 1} of {counts.total} ({row['status']}): {row['message']}; "
                              "rerun without --fail-fast to record it and go on")
    return counts
