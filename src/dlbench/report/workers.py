"""Drawing the studies' figures in worker processes, one study per task, while the report's main process
builds its tables and test-image strips.

Matplotlib draws on one core, and a first report of a big cache spends most of its time drawing: with forked
workers (they inherit the imported modules and the cache's rows, so they start in milliseconds) the studies draw
side by side. Each worker returns PNG bytes, the very bytes serial drawing gives (the same functions on the same
data), and the results are taken in the studies' order, so the report stays byte for byte deterministic.

Serial where forking is unavailable (macOS and Windows default to spawning, which imports everything again),
with one CPU, or with fewer than two studies to draw. ``DLBENCH_REPORT_WORKERS`` sets the number of worker
processes (``1``: draw serially).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from dlbench.errors import UsageError
from dlbench.hardware import available_cpus

WORKERS_ENV = "DLBENCH_REPORT_WORKERS"

_TASKS: list[Callable[[], object]] = []  # set before the fork: each worker calls one by index


def report_workers(tasks: int) -> int:
    """Worker processes for ``tasks`` drawing tasks: ``DLBENCH_REPORT_WORKERS`` or the CPUs this process may
    use, at most one per task; 1 (serial) where fork is unavailable or there are fewer than two tasks.

    Raises:
        UsageError: ``DLBENCH_REPORT_WORKERS`` is not a positive whole number.
    """
    given = os.environ.get(WORKERS_ENV, "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise UsageError(f"{WORKERS_ENV}={given!r}: give a whole number of worker processes, 1 or more")
        wanted = int(given)
    else:
        wanted = available_cpus()
    if tasks < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(wanted, tasks))


def _call(index: int):
    return _TASKS[index]()


class Done:
    """A result computed in this process, with the same ``result()`` as a pool's future."""

    def __init__(self, fn: Callable[[], object]):
        self._fn = fn

    def result(self):
        return self._fn()


class Pooled:
    """A task's result from its worker; drawn in this process instead if the pool broke (a worker killed, for
    one by the out-of-memory killer, or a result that could not be sent back)."""

    def __init__(self, future: Future, fn: Callable[[], object]):
        self._future, self._fn = future, fn

    def result(self):
        try:
            return self._future.result()
        except BrokenProcessPool:
            return self._fn()


def run_all(
    tasks: list[Callable[[], object]], costs: list[float] | None = None
) -> tuple[list, Callable[[], None]]:
    """Start ``tasks`` in forked workers, the costliest first (``costs``: an estimate each; the last task to
    start should be a short one); returns (one object per task whose ``result()`` waits for it, in the tasks'
    order; a function that shuts the workers down). Serially (each task runs when its result is asked for)
    where :func:`report_workers` says 1."""
    workers = report_workers(len(tasks))
    if workers <= 1:
        return [Done(t) for t in tasks], lambda: None
    _TASKS[:] = tasks
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    # the workers fork at the first submit; frozen, the objects they inherit stay out of their garbage
    # collections, which would otherwise touch (and so copy) every inherited page
    gc.freeze()
    try:
        order = sorted(range(len(tasks)), key=lambda i: -costs[i] if costs else 0)  # stable: ties in order
        started: dict[int, Future] = {i: pool.submit(_call, i) for i in order}
    finally:
        gc.unfreeze()
    futures = [Pooled(started[i], tasks[i]) for i in range(len(tasks))]

    def close() -> None:
        pool.shutdown(wait=True, cancel_futures=True)
        _TASKS.clear()

    return futures, close
