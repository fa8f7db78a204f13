"""`sweep --executor slurm` on the real one-node cluster: the inline table, nothing trained twice, failures as
rows, requeue after a time limit resuming from the epoch checkpoint, and a detached study collected later."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import TINY

SWEEP = [
    "sweep",
    "lr",
    "0.05,0.1,0.02,0.2",
    "--model",
    "mlp",
    "--set",
    "width=16",
    "--dataset",
    "shapes",
    *TINY,
]
SWEEP += ["--epochs", "2", "--no-figures", "--format", "json"]
SLURM = ["--executor", "slurm", "--slurm-cpus", "1", "--slurm-mem", "1", "--slurm-time", "10"]
METRICS = ("lr", "params", "initial_val_acc", "best_val_acc", "test_acc", "status")


def _env(cache: Path, tmp_path: Path, log: Path | None = None, config: str = "") -> dict:
    env = {**os.environ, "DLBENCH_HOME": str(cache), "DLBENCH_DATA_DIR": str(tmp_path / "data")}
    env["OMP_NUM_THREADS"] = "1"  # inline: one thread, as each job's one CPU, so results match bit for bit
    env["DLBENCH_SLURM_POLL"] = "0.5"
    env["DLBENCH_CONFIG"] = str(tmp_path / "config.toml")  # the user's own config file stays out of it
    (tmp_path / "config.toml").write_text(config)
    if log is not None:
        env["DLBENCH_TRAIN_LOG"] = str(log)
    return env


def _dlbench(args: list[str], env: dict, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dlbench", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _table(done: subprocess.CompletedProcess[str]) -> list[dict]:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _events(log: Path) -> list[tuple[str, str]]:
    """(key, event) per line of the DLBENCH_TRAIN_LOG file."""
    return (
        [(line.split()[1], line.split()[2]) for line in log.read_text().splitlines()] if log.exists() else []
    )


def _jobs(cache: Path, name: str) -> dict:
    (path,) = (cache / "slurm").glob(f"{name}*/jobs.json")
    return json.loads(path.read_text())["jobs"]


def _wait_for(what: str, probe, timeout_s: float = 120.0):
    deadline = time.monotonic() + timeout_s
    while not (value := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s:.0f}s")
        time.sleep(0.3)
    return value


def test_a_slurm_sweep_gives_the_inline_table_and_a_rerun_submits_nothing(slurm_cluster, tmp_path):
    inline = _table(_dlbench(SWEEP, _env(tmp_path / "inline", tmp_path)))
    log, cache = tmp_path / "train.log", tmp_path / "slurm"
    env = _env(cache, tmp_path, log)
    slurm = _table(_dlbench([*SWEEP, *SLURM], env))
    assert [{m: r[m] for m in METRICS} for r in slurm] == [{m: r[m] for m in METRICS} for r in inline]
    starts = [k for k, e in _events(log) if e == "start"]
    assert sorted(starts) == sorted(k for r in slurm for k in r["keys"])  # each trial trained once
    jobs = _jobs(cache, "lr-mlp-shapes")
    assert sorted(jobs) == sorted(starts) and len({j["job_id"] for j in jobs.values()}) == 4
    logs = [Path(j["log_dir"]) for j in jobs.values()]
    assert all(
        p.is_relative_to(cache) and (p / f"{j['job_id']}_0_log.out").exists()
        for p, j in zip(logs, jobs.values(), strict=True)
    )

    again = _dlbench([*SWEEP, *SLURM], env)
    assert [{m: r[m] for m in METRICS} for r in _table(again)] == [{m: r[m] for m in METRICS} for r in slurm]
    assert "4 cached, 0 trained" in again.stderr
    assert _jobs(cache, "lr-mlp-shapes") == jobs and len([e for _, e in _events(log) if e == "start"]) == 4


def test_a_cancelled_job_is_a_failed_row_and_the_rerun_trains_each_trial_once(slurm_cluster, tmp_path):
    # A cnn for 12 epochs: long enough to be cancelled mid-training (a cancelled job runs on for Slurm's
    # KillWait, as submitit leaves SIGTERM to the end of a preempted job).
    sweep = ["sweep", "lr", "0.05,0.1", "--model", "cnn", "--dataset", "shapes", *TINY, "--epochs", "12"]
    sweep += ["--no-figures", "--format", "json"]
    name = "lr-cnn-shapes"
    log, cache = tmp_path / "train.log", tmp_path / "cache"
    env = _env(cache, tmp_path, log)
    submitted = _dlbench([*sweep, *SLURM, "--detach"], env)
    assert submitted.returncode == 0, submitted.stderr
    assert "submitted 2 Slurm job(s)" in submitted.stderr and f"dlbench status {name}" in submitted.stderr
    assert submitted.stdout == ""  # detached: no table yet

    victim = _wait_for(
        "a trial trained one epoch", lambda: next((k for k, e in _events(log) if e == "epoch-1"), None)
    )
    job = _jobs(cache, name)[victim]["job_id"]
    subprocess.run(["scancel", job], check=True)
    status = _dlbench(["status", name, "--format", "json", "--no-figures"], env)
    rows = {r["keys"][0]: r for r in _table(status)}
    assert rows[victim]["status"] == "cancelled"
    assert "trial lr=" in status.stderr and f"job {job}, log {cache}" in status.stderr
    assert len(rows) == 2 and [r["status"] for k, r in rows.items() if k != victim] == ["ok"]

    rerun = _dlbench([*sweep, *SLURM], env)
    assert [r["status"] for r in _table(rerun)] == ["ok", "ok"] and "1 cached, 1 trained" in rerun.stderr
    events = _events(log)
    assert sorted(k for k, e in events if e == "end") == sorted(rows)  # each trial stored exactly once
    resumed = [e for k, e in events if k == victim and e.startswith("resumed-")]
    assert resumed, "the resubmitted trial resumes from its last epoch checkpoint"


def test_a_job_told_its_time_is_up_requeues_and_resumes_from_its_checkpoint(slurm_cluster, tmp_path):
    # At its time limit (minus the signal delay) Slurm sends the job USR2: submitit checkpoints the trial and
    # requeues the job. The signal is sent here by hand, at a known moment: Slurm's own timer sends it up to
    # 60 s early, which makes a real one-minute limit a race (docs/cluster.md).
    epochs = 12
    sweep = ["sweep", "lr", "0.05", "--model", "cnn", "--dataset", "shapes", *TINY, "--epochs", str(epochs)]
    sweep += ["--no-figures", "--format", "json", *SLURM]
    log, cache = tmp_path / "train.log", tmp_path / "cache"
    env = _env(cache, tmp_path, log)
    submitted = _dlbench([*sweep, "--detach"], env)
    assert submitted.returncode == 0, submitted.stderr
    key = _wait_for("two epochs trained", lambda: next((k for k, e in _events(log) if e == "epoch-1"), None))
    job = _jobs(cache, "lr-cnn-shapes")[key]["job_id"]
    subprocess.run(["scancel", "--signal=USR2", job], check=True)  # what the time limit sends

    done = _dlbench(sweep, env)  # the same command again follows the requeued job to its end
    (row,) = _table(done)
    assert row["status"] == "ok" and "0 cached, 1 trained" in done.stderr, done.stderr
    assert _jobs(cache, "lr-cnn-shapes")[key]["job_id"] == job  # followed, not submitted again
    events = [e for _, e in _events(log)]
    assert events.count("start") == 2 and events.count("end") == 1, events
    assert any(e.startswith("resumed-") and e != "resumed-0" for e in events), events
    finished = [int(e.split("-")[1]) for e in events if e.startswith("epoch-")]
    assert sorted(finished) == list(range(epochs))  # no finished epoch was trained twice
    sacct = subprocess.run(
        ["sacct", "-n", "-P", "-D", "-X", "-j", job, "-o", "State"], capture_output=True, text=True
    )
    assert "REQUEUED" in sacct.stdout.split(), sacct.stdout


def test_a_job_array_runs_the_trials_at_most_n_at_once(slurm_cluster, tmp_path):
    log, cache = tmp_path / "train.log", tmp_path / "cache"
    sweep = [*SWEEP[:2], "0.05,0.1", *SWEEP[3:], *SLURM, "--slurm-array-parallelism", "1"]
    rows = _table(_dlbench(sweep, _env(cache, tmp_path, log)))
    assert [r["status"] for r in rows] == ["ok", "ok"]
    jobs = _jobs(cache, "lr-mlp-shapes")
    ids = sorted(j["job_id"] for j in jobs.values())
    array = ids[0].split("_")[0]
    assert ids == [f"{array}_0", f"{array}_1"]  # one array of two tasks
    lines = log.read_text().splitlines()
    starts = [float(line.split()[3]) for line in lines if line.split()[2] == "start"]
    ends = [float(line.split()[3]) for line in lines if line.split()[2] == "end"]
    assert max(starts) >= min(ends)  # the second task started after the first ended (parallelism 1)
