"""The local executor: a study's trials on N worker processes of this machine (``sweep --executor local``).

Each worker is a fresh (spawned) Python process that runs trials only through the one trial entry point,
:func:`dlbench.sweep.trial.run_trial`, on the shared cache folder, so the claims keep every trial trained exactly
once, also beside other sweeps on the same cache. Workers do not oversubscribe the machine: with G visible GPUs
each worker is pinned to one of them (``CUDA_VISIBLE_DEVICES``, round robin); on a CPU the cores available to this
process (its affinity mask, capped by a cgroup CPU quota) are split among the workers
(``torch.set_num_threads``). Trials the cache already holds are answered here without starting a worker. With
``--fuse``, a fused group (:mod:`dlbench.sweep.fused_run`) is one worker's task, trained on that worker's slot.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from dlbench.cache import Store
from dlbench.errors import DlbenchError, UsageError
from dlbench.hardware import available_cpus
from dlbench.sweep.grid import SweepPlan, Trial
from dlbench.sweep.inline import SweepCounts, open_study


@dataclass(frozen=True)
class WorkerSlot:
    """Where one worker runs: a GPU (its ``CUDA_VISIBLE_DEVICES`` value) or none, and its CPU threads."""

    gpu: str | None
    threads: int


def visible_gpus() -> list[str]:
    """The CUDA devices this process sees, as ``CUDA_VISIBLE_DEVICES`` values for one worker each."""
    import torch

    if not torch.cuda.is_available():
        return []
    given = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return given or [str(i) for i in range(torch.cuda.device_count())]


def worker_slots(jobs: int | None, gpus: list[str], cores: int) -> list[WorkerSlot]:
    """One slot per worker. ``jobs`` None: one worker per GPU, or one per core on a CPU."""
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    n = jobs or len(gpus) or cores
    if gpus:
        return [WorkerSlot(gpus[i % len(gpus)], max(1, cores // n)) for i in range(n)]
    return [WorkerSlot(None, max(1, cores // n)) for _ in range(n)]


def _stop_requested(signum, _frame) -> None:
    raise KeyboardInterrupt  # unwinds the trial: its claim is released, finished epochs stay checkpointed


def _start_worker(slots, pids) -> None:
    """Worker initializer: take a slot before torch is imported, and say who we are (for a clean stop).

    Ctrl-C reaches the whole foreground process group; only the parent acts on it, and it stops the workers
    with SIGTERM, so a worker never races the parent to report the interruption.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_requested)
    slot = slots.get()
    if slot.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = slot.gpu
    os.environ["OMP_NUM_THREADS"] = str(slot.threads)
    import torch

    torch.set_num_threads(slot.threads)
    pids.put(os.getpid())


def _work(config, cache_dir: str, data_dir: str | None, force: bool) -> dict:
    """One trial in a worker. A dlbench error comes back as data: custom exceptions need not unpickle."""
    from dlbench.sweep.trial import run_trial

    try:
        return run_trial(config, cache_dir, data_dir, force=force)
    except DlbenchError as exc:
        return {"error": str(exc), "exit_code": exc.exit_code}


def _work_group(configs, cache_dir: str, data_dir: str | None, force: bool) -> list[dict]:
    """A fused group in a worker (:func:`dlbench.sweep.fused_run.run_group`): one row per config, in order."""
    from dlbench.sweep.fused_run import run_group

    try:
        return run_group(configs, cache_dir, data_dir, force)
    except DlbenchError as exc:
        return [{"error": str(exc), "exit_code": exc.exit_code}]


def _units(plan: SweepPlan, todo: list[int], fuse) -> list[list[int]]:
    """What the workers are given: fused groups (``fuse``: a :class:`dlbench.sweep.fused.Fuse`, None: off),
    then every other trial alone."""
    if fuse is None or fuse.off:
        return [[k] for k in todo]
    from dlbench.sweep.fused_run import work_units

    units, _ = work_units([plan.trials[k].config for k in todo], fuse)
    return [[todo[i] for i in unit] for unit in units]


def run_local(
    plan: SweepPlan,
    store: Store,
    *,
    jobs: int | None = None,
    data_dir: Path | None = None,
    force: bool = False,
    fail_fast: bool = False,
    on_done: Callable[[int, Trial, SweepCounts], None] | None = None,
    command: str = "",
    replace: bool = False,
    fuse=None,
) -> SweepCounts:
    """Run every trial not in the cache on worker processes; returns the counts and rows in the plan's order.

    The name is checked first, as the inline executor does (:func:`dlbench.sweep.inline.check_name`).
    ``fuse`` (a :class:`dlbench.sweep.fused.Fuse`; None: off): each fused group is one worker's task.

    Raises:
        TrialFailed: ``fail_fast`` and a trial diverged or ran out of memory (the other workers are stopped).
        UsageError: ``--name`` holds another study and ``replace`` is False.
    """
    study = open_study(plan, store, command, replace)
    counts = SweepCounts(len(plan.trials))
    rows: dict[int, dict] = {}

    def finish(k: int, row: dict, cached: bool) -> None:
        rows[k] = row
        counts.add(k, row, cached, fail_fast)
        if on_done:
            on_done(k, plan.trials[k], counts)

    todo = []
    for k, trial in enumerate(plan.trials):
        if not force and store.has(trial.config.key):
            finish(k, store.get(trial.config.key), True)
        else:
            todo.append(k)
    if todo:
        units = _units(plan, todo, fuse)
        slots = worker_slots(jobs, visible_gpus(), available_cpus())[: len(units)]
        _run_workers(plan, store, units, slots, data_dir, force, finish)
    counts.rows = [rows[k] for k in sorted(rows)]
    store.save_sweep(study)  # again: a concurrent sweep of the same name may have replaced it meanwhile
    return counts


def _submit(pool, plan, unit: list[int], folder: str, data: str | None, force: bool):
    configs = [plan.trials[k].config for k in unit]
    if len(unit) == 1:
        return pool.submit(_work, configs[0], folder, data, force)
    return pool.submit(_work_group, configs, folder, data, force)


def _run_workers(plan, store, units, slots, data_dir, force, finish) -> None:
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no torch state copied by fork
    slot_queue, pids = ctx.Queue(), ctx.Queue()
    for slot in slots:
        slot_queue.put(slot)
    pool = ProcessPoolExecutor(
        len(slots), mp_context=ctx, initializer=_start_worker, initargs=(slot_queue, pids)
    )
    folder = str(store.root)
    data = str(data_dir) if data_dir is not None else None
    try:
        futures = {_submit(pool, plan, unit, folder, data, force): unit for unit in units}
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                raise DlbenchError(
                    "a worker process died while training (killed, or out of memory); finished trials are "
                    "in the cache: rerun the same command to resume, perhaps with fewer --jobs"
                ) from None
            rows = result if isinstance(result, list) else [result]  # a group's error: one row, first
            for k, row in zip(futures[future], rows, strict=False):
                if "error" in row:
                    error = DlbenchError(row["error"])
                    error.exit_code = row["exit_code"]
                    raise error
                cached = bool(row.pop("cached"))
                finish(k, row, cached)
    except BaseException:
        _interrupt_workers(pids)  # they release their claims on the way out; finished epochs stay resumable
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _interrupt_workers(pids) -> None:
    while True:
        try:
            pid = pids.get_nowait()
        except (queue.Empty, OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:  # already gone
            pass
