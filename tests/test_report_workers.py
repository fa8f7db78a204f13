"""The report's drawing workers (dlbench.report.workers): results in the tasks' order whatever order they run
in, drawn in other processes, and drawn in this one when the pool breaks."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from dlbench.report import workers

pytestmark = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="the workers are forked"
)


def test_results_come_in_the_tasks_order_from_other_processes(monkeypatch):
    monkeypatch.setenv(workers.WORKERS_ENV, "2")
    tasks = [lambda i=i: (i, os.getpid()) for i in range(5)]
    results, close = workers.run_all(tasks, costs=[1, 5, 2, 4, 3])  # started as 1, 3, 4, 2, 0
    try:
        got = [r.result() for r in results]
    finally:
        close()
    assert [i for i, _ in got] == [0, 1, 2, 3, 4]
    assert os.getpid() not in {pid for _, pid in got}
    assert len({pid for _, pid in got}) <= 2


def test_one_worker_or_one_task_runs_here(monkeypatch):
    monkeypatch.setenv(workers.WORKERS_ENV, "1")
    results, close = workers.run_all([os.getpid, os.getpid])
    assert [r.result() for r in results] == [os.getpid()] * 2
    close()
    monkeypatch.setenv(workers.WORKERS_ENV, "4")
    results, close = workers.run_all([os.getpid])
    assert [r.result() for r in results] == [os.getpid()]
    close()


def test_a_broken_pool_draws_in_this_process(monkeypatch):
    monkeypatch.setenv(workers.WORKERS_ENV, "2")
    parent = os.getpid()

    def task():
        if os.getpid() != parent:
            os._exit(3)  # a worker killed mid-task
        return "drawn here"

    results, close = workers.run_all([task, task])
    try:
        assert [r.result() for r in results] == ["drawn here", "drawn here"]
    finally:
        close()
