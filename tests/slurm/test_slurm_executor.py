"""`sweep --executor slurm` on the real one-node cluster: the inline table, nothing trained twice, failures as
rows, requeue after a time limit resuming from the epoch checkpoint, a detached study collected later, and a
fused group (``--fuse``) as one job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import TINY

from dlbench.cache import Store

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
    sweep = [*SWEEP, "--fuse", "off"]  # one job per trial (the fused jobs: test_a_fused_group_is_one_job...)
    inline = _table(_dlbench(sweep, _env(tmp_path / "inline", tmp_path)))
    log, cache = tmp_path / "train.log", tmp_path / "slurm"
    env = _env(cache, tmp_path, log)
    slurm = _table(_dlbench([*sweep, *SLURM], env))
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

    again = _dlbench([*sweep, *SLURM], env)
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
    sweep = [*SWEEP[:2], "0.05,0.1", *SWEEP[3:], *SLURM, "--slurm-array-parallelism", "1", "--fuse", "off"]
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


def test_a_fused_group_is_one_job_with_the_inline_table_and_a_rerun_submits_nothing(slurm_cluster, tmp_path):
    # Five lrs at most two a group: [0, 3] and [1, 4] fused, the third alone; three jobs.
    sweep = [*SWEEP[:2], "0.05,0.1,0.02,0.2,0.01", *SWEEP[3:], "--fuse", "2"]
    inline = _table(_dlbench(sweep, _env(tmp_path / "inline", tmp_path)))
    log, cache = tmp_path / "train.log", tmp_path / "slurm"
    env = _env(cache, tmp_path, log)
    done = _dlbench([*sweep, *SLURM], env)
    slurm = _table(done)
    assert [{m: r[m] for m in METRICS} for r in slurm] == [{m: r[m] for m in METRICS} for r in inline]
    assert "fusing 4 trials into 2 group(s) of 2" in done.stderr
    keys = [k for r in slurm for k in r["keys"]]
    jobs = _jobs(cache, "lr-mlp-shapes")
    assert sorted(jobs) == sorted(keys) and len({j["job_id"] for j in jobs.values()}) == 3
    groups = {tuple(j["group"]) for j in jobs.values() if "group" in j}
    labels = sorted(sorted(jobs[k]["label"] for k in g) for g in groups)
    assert labels == [["lr=0.01", "lr=0.1"], ["lr=0.05", "lr=0.2"]]  # [0, 3] and [1, 4]
    assert all(len({jobs[k]["job_id"] for k in g}) == 1 for g in groups) and "fused group of 2" in done.stderr
    runs = Store(cache).runs(keys=keys).set_index("key")
    assert {k: runs.loc[k, "fused"] == 2 for k in keys} == {k: jobs[k]["label"] != "lr=0.02" for k in keys}
    events = _events(log)
    assert sorted(k for k, e in events if e == "end") == sorted(keys)  # each trial stored once
    assert sorted(k for k, e in events if e == "start") == sorted(keys)

    again = _dlbench([*sweep, *SLURM], env)
    assert [{m: r[m] for m in METRICS} for r in _table(again)] == [{m: r[m] for m in METRICS} for r in slurm]
    assert "5 cached, 0 trained" in again.stderr and "fusing" not in again.stderr
    assert _jobs(cache, "lr-mlp-shapes") == jobs and len(_events(log)) == len(events)


def test_a_group_job_requeues_as_a_group_and_a_cancelled_one_fails_each_member(slurm_cluster, tmp_path):
    # Two cnns fused (--fuse 2: on the CPU only when asked), long enough to be signalled, then cancelled.
    epochs = 12
    sweep = ["sweep", "lr", "0.05,0.1", "--model", "cnn", "--dataset", "shapes", *TINY, "--fuse", "2"]
    sweep += ["--epochs", str(epochs), "--no-figures", "--format", "json", *SLURM]
    name = "lr-cnn-shapes"
    log, cache = tmp_path / "train.log", tmp_path / "cache"
    env = _env(cache, tmp_path, log)
    submitted = _dlbench([*sweep, "--detach"], env)
    assert submitted.returncode == 0, submitted.stderr
    assert (
        "submitted 1 Slurm job(s)" in submitted.stderr and "fusing 2 trials into 1 group" in submitted.stderr
    )
    jobs = _jobs(cache, name)
    keys = sorted(jobs)
    (job,) = {r["job_id"] for r in jobs.values()}

    _wait_for("the group trained two epochs", lambda: "epoch-1" in [e for _, e in _events(log)])
    subprocess.run(["scancel", "--signal=USR2", job], check=True)  # the time limit's warning: requeue
    resumed = _wait_for(
        "the requeued group resumed",
        lambda: sorted(k for k, e in _events(log) if e.startswith("resumed-") and e != "resumed-0"),
    )
    assert resumed == keys  # both members, from the group's checkpoint
    subprocess.run(["scancel", job], check=True)
    status = _dlbench(["status", name, "--format", "json", "--no-figures"], env)
    rows = _table(status)
    assert [r["status"] for r in rows] == ["cancelled", "cancelled"], status.stderr
    for label in ("lr=0.05", "lr=0.1"):  # each member's row names the group's job
        assert f"trial {label} cancelled: its job was cancelled" in status.stderr
    assert f"job {job}, log {cache}" in status.stderr
    _wait_for("the cancelled job's processes ended", lambda: job not in _squeue())

    rerun = _dlbench(sweep, env)
    assert [r["status"] for r in _table(rerun)] == ["ok", "ok"] and "0 cached, 2 trained" in rerun.stderr
    (again,) = {r["job_id"] for r in _jobs(cache, name).values()}
    assert again != job  # one new job for the whole group
    events = _events(log)
    assert sorted(k for k, e in events if e == "end") == keys  # each trial stored exactly once
    for key in keys:
        finished = [int(e.split("-")[1]) for k, e in events if k == key and e.startswith("epoch-")]
        assert len(finished) == len(set(finished)) and max(finished) == epochs - 1  # no epoch trained twice
    runs = Store(cache).runs(keys=keys)
    assert runs["fused"].tolist() == [2, 2]
    sacct = subprocess.run(
        ["sacct", "-n", "-P", "-D", "-X", "-j", job, "-o", "State"], capture_output=True, text=True
    )
    assert "REQUEUED" in sacct.stdout.split(), sacct.stdout


def _squeue() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True)
    return out.stdout.split()
