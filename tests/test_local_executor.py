"""`sweep --executor local`: trials on worker processes give the inline table, each trial trained exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import TINY

from dlbench.sweep.local import WorkerSlot, worker_slots

SWEEP = ["sweep", "lr", "0.05,0.1,0.02", "--model", "mlp", "--set", "width=16", "--dataset", "shapes", *TINY]
SWEEP += ["--epochs", "2", "--no-figures", "--format", "json"]


def _dlbench(args, cache: Path, tmp_path: Path, log: Path | None = None, **kw):
    env = {**os.environ, "DLBENCH_HOME": str(cache), "DLBENCH_DATA_DIR": str(tmp_path / "data")}
    env["OMP_NUM_THREADS"] = "1"  # the inline run and each worker: one thread, so results match bit for bit
    if log is not None:
        env["DLBENCH_TRAIN_LOG"] = str(log)
    return subprocess.Popen(
        [sys.executable, "-m", "dlbench", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


def _table(proc) -> list[dict]:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


def _starts(log: Path) -> list[str]:
    return [line.split()[1] for line in log.read_text().splitlines() if line.split()[2] == "start"]


def test_worker_slots_pin_gpus_and_split_cores():
    assert worker_slots(None, ["0", "1"], 16) == [WorkerSlot("0", 8), WorkerSlot("1", 8)]
    assert worker_slots(3, ["4", "7"], 12) == [WorkerSlot("4", 4), WorkerSlot("7", 4), WorkerSlot("4", 4)]
    assert worker_slots(2, [], 2) == [WorkerSlot(None, 1)] * 2
    assert worker_slots(None, [], 4) == [WorkerSlot(None, 1)] * 4
    assert worker_slots(8, [], 2) == [WorkerSlot(None, 1)] * 8


def test_local_jobs_give_the_inline_table_and_each_trial_once(tmp_path):
    inline = _table(_dlbench(SWEEP, tmp_path / "inline", tmp_path))
    log = tmp_path / "train.log"
    local = _table(
        _dlbench([*SWEEP, "--executor", "local", "--jobs", "2"], tmp_path / "local", tmp_path, log)
    )
    metrics = ("lr", "params", "best_val_acc", "test_acc", "status")
    assert [{m: r[m] for m in metrics} for r in local] == [{m: r[m] for m in metrics} for r in inline]
    assert sorted(_starts(log)) == sorted(k for r in local for k in r["keys"])  # each trial trained once
    again = _table(
        _dlbench([*SWEEP, "--executor", "local", "--jobs", "2"], tmp_path / "local", tmp_path, log)
    )
    assert again == local and len(_starts(log)) == 3  # the rerun trains nothing


def test_four_concurrent_local_sweeps_share_one_cache(tmp_path):
    cache, log = tmp_path / "cache", tmp_path / "train.log"
    procs = [_dlbench([*SWEEP, "--executor", "local", "--jobs", "2"], cache, tmp_path, log) for _ in range(4)]
    tables = [_table(p) for p in procs]
    assert all(t == tables[0] for t in tables)
    assert sorted(_starts(log)) == sorted(k for r in tables[0] for k in r["keys"])


def test_ctrl_c_stops_the_workers_and_a_rerun_finishes(tmp_path):
    cache = tmp_path / "cache"
    long = [a if a != "2" else "300" for a in SWEEP]  # epochs 300: still training when interrupted
    proc = _dlbench([*long, "--executor", "local", "--jobs", "2"], cache, tmp_path, start_new_session=True)
    end = time.monotonic() + 300  # a loaded CI machine starts two torch workers slowly
    while not list((cache / "checkpoints").glob("*.pt")) and time.monotonic() < end:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole foreground group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert "interrupted (SIGINT)" in err.decode() and "Traceback" not in err.decode()
    time.sleep(0.5)
    assert not list((cache / "claims").glob("*.claim")), "every worker released its claim"
    assert list((cache / "checkpoints").glob("*.pt")), "finished epochs stay resumable"


def test_a_worker_killed_midway_is_one_line_not_a_traceback(tmp_path):
    cache = tmp_path / "cache"
    long = [a if a != "2" else "300" for a in SWEEP]
    proc = _dlbench([*long, "--executor", "local", "--jobs", "2"], cache, tmp_path)
    end = time.monotonic() + 300
    while not list((cache / "claims").glob("*.claim")) and time.monotonic() < end:
        time.sleep(0.1)
    time.sleep(1.0)
    owner = json.loads(next((cache / "claims").glob("*.claim")).read_text())
    os.kill(owner["pid"], signal.SIGKILL)  # the kernel's OOM killer does the same
    out, err = proc.communicate(timeout=300)
    lines = [line for line in err.decode().splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and lines and "worker process died" in lines[0], err.decode()
    assert "Traceback" not in err.decode()
