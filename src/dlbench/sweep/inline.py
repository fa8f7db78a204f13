"""The inline executor: run a planned sweep's trials one after another in this process.

Each trial goes through the one trial entry point (:func:`dlbench.sweep.trial.run_trial_here`): cached trials
cost nothing, interrupted ones resume, failures are rows. Several processes may run overlapping sweeps on one
cache: a trial another process is training is skipped and come back to after this process's other trials
(polling until that process stores it, or until its claim goes stale and this process takes it over), so the
sweep's table is always complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dlbench.cache import Store
from dlbench.errors import DlbenchError
from dlbench.sweep.grid import SweepPlan, Trial
from dlbench.sweep.trial import TrialBusy, poll_seconds, run_trial_here


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

    def add(self, k: int, row: dict, cached: bool, fail_fast: bool = False) -> None:
        """Count trial ``k``'s row; with ``fail_fast`` a diverged or out-of-memory trial ends the sweep."""
        self.cached += cached
        self.done += not cached and row["status"] == "ok"
        self.failed += row["status"] != "ok"
        if fail_fast and row["status"] != "ok":
            raise TrialFailed(
                f"trial {k + 1} of {self.total} ({row['status']}): {row['message']}; "
                "rerun without --fail-fast to record it and go on"
            )


def open_study(plan: SweepPlan, store: Store, command: str = "", replace: bool = False) -> dict:
    """What every executor does before its first trial: check the name, save the study (so a killed sweep is
    still known to `report`) and reap what killed processes left. Returns the study to save again at the end
    (a concurrent sweep of the same name may have replaced it meanwhile)."""
    store.check_writable()
    check_name(plan, store, replace=replace)
    study = plan.study(command).to_dict()
    store.save_sweep(study)
    store.clean_tmp()
    return study


class _Datasets:
    """One load per dataset config, shared by the trials that need training (cached ones need none)."""

    def __init__(self, data_dir: Path | None):
        self.data_dir = data_dir
        self.loaded: dict[str, object] = {}

    def for_config(self, cfg):
        key = f"{cfg.dataset}:{sorted(cfg.dataset_options.items())}"
        if key not in self.loaded:
            from dlbench.data import get_dataset

            self.loaded[key] = get_dataset(cfg.dataset).load(self.data_dir, cfg.dataset_options)
        return self.loaded[key]


def check_name(plan: SweepPlan, store: Store, *, replace: bool = False) -> str | None:
    """Make sure the sweep's name is not another study's; writes nothing.

    A name made from the axes (no ``--name``) that the cache already gives to another study (other fixed
    values or repeats) becomes ``<name>-<hash of what is held fixed>``, and the note says so. A name given
    with ``--name`` that holds another study is refused, unless ``replace``.

    Returns:
        A one-line note for the user (the name changed, a study is replaced, or this study now covers other
        values than before), else None.

    Raises:
        UsageError: ``--name`` holds another study (another model, dataset, axes, repeats or fixed values).
    """
    from dlbench.errors import UsageError

    mine = plan.study()
    stored = _stored(store, plan.name)
    why = mine.conflict(stored) if stored else None
    if why and not plan.named and not replace:
        taken, plan.name = plan.name, f"{plan.name}-{plan.held[:6]}"
        return _name_taken(plan, store, taken, why)
    if why and not replace:
        raise UsageError(
            f"the sweep name '{plan.name}' holds another study ({why}); give this one another --name, "
            "or add --replace to replace it (its runs stay cached)"
        )
    if why:
        return f"sweep '{plan.name}' replaces the study of that name ({why}); its runs stay cached"
    return _values_note(plan.name, stored, mine) if stored else None


def _name_taken(plan: SweepPlan, store: Store, taken: str, why: str) -> str:
    from dlbench.errors import UsageError

    stored = _stored(store, plan.name)
    mine = plan.study()
    if stored and mine.conflict(stored):  # a hash prefix shared by two studies: ask for a name
        raise UsageError(f"the sweep names '{taken}' and '{plan.name}' hold other studies; give --name")
    note = f"'{taken}' is another study ({why}): this sweep is '{plan.name}'"
    return "; ".join(filter(None, [note, _values_note(plan.name, stored, mine) if stored else None]))


def _stored(store: Store, name: str):
    """The study saved under ``name``, or None (none, or unreadable)."""
    from dlbench.errors import CacheError, UnknownNameError
    from dlbench.sweep.study import Study

    try:
        return Study.from_dict(store.get_sweep(name))
    except (UnknownNameError, CacheError, KeyError, TypeError, ValueError):
        return None


def _values_note(name: str, stored, mine) -> str | None:
    """The same study over other values: the report shows the new ones, the old runs stay cached."""
    old = {a.name: a.values for a in stored.axes}
    if all(old.get(a.name) == a.values for a in mine.axes):
        return None
    was = "; ".join(f"{n}={','.join(v)}" for n, v in old.items())
    return f"sweep '{name}' was over {was}: the report shows the values of this run; those runs stay cached"


def run_sweep(
    plan: SweepPlan,
    store: Store,
    *,
    data_dir: Path | None = None,
    force: bool = False,
    fail_fast: bool = False,
    on_trial: Callable[[int, Trial, SweepCounts], Callable | None] | None = None,
    command: str = "",
    replace: bool = False,
    fuse=None,
) -> SweepCounts:
    """Train every trial not in the cache. ``on_trial(k, trial, counts)`` may return an engine callback.

    ``fuse`` (a :class:`dlbench.sweep.fused.Fuse`; None: off) trains groups of trials as one fused model first
    (:mod:`dlbench.sweep.fused_run`); the trials left run one by one as before.

    The name is checked first (:func:`check_name`; call it yourself to show its note): a default name the
    cache gives to another study becomes ``<name>-<hash>`` in ``plan.name``.

    Raises:
        TrialFailed: ``fail_fast`` and a trial diverged or ran out of memory.
        UsageError: ``--name`` holds another study and ``replace`` is False.
    """
    study = open_study(plan, store, command, replace)
    counts = SweepCounts(len(plan.trials))
    datasets = _Datasets(data_dir)
    rows: dict[int, dict] = {}

    def attempt(k: int, trial: Trial) -> bool:
        """Run (or fetch) one trial; False if another live process is training it now."""
        callback = on_trial(k, trial, counts) if on_trial else None
        cfg = trial.config
        data = datasets.for_config(cfg) if force or not store.has(cfg.key) else None
        try:
            row, cached = run_trial_here(
                cfg, store, data_dir=data_dir, force=force, callback=callback, data=data, wait=False
            )
        except TrialBusy:
            return False
        rows[k] = row
        counts.add(k, row, cached, fail_fast)
        return True

    if fuse is not None and not fuse.off:
        from dlbench.sweep.fused_run import run_fused

        def record(k: int, row: dict) -> None:
            rows[k] = row
            counts.add(k, row, False, fail_fast)

        def progress(k: int, trial: Trial):
            return on_trial(k, trial, counts) if on_trial else None

        run_fused(
            plan,
            store,
            fuse,
            datasets=datasets,
            force=force,
            data_dir=data_dir,
            on_trial=progress,
            record=record,
        )
    todo = [(k, trial) for k, trial in enumerate(plan.trials) if k not in rows]
    pending = [(k, trial) for k, trial in todo if not attempt(k, trial)]
    while pending:  # trials other processes were training: wait for their results (or stale claims)
        time.sleep(poll_seconds())
        pending = [(k, trial) for k, trial in pending if not attempt(k, trial)]
    counts.rows = [rows[k] for k in sorted(rows)]
    store.save_sweep(study)  # again: a concurrent sweep of the same name may have replaced it meanwhile
    return counts
