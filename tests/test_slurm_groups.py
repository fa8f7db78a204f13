"""`sweep --executor slurm --fuse`, without a cluster: a fused group is one job (submitit's executor and Slurm's
states stand in), its members are recorded, followed and failed as the group's job, a rerun submits only what
is missing; and a group's job callable trains the group as the inline executor does."""

from __future__ import annotations

import contextlib
import itertools
from pathlib import Path

import pytest

from dlbench.cache import Store
from dlbench.sweep import slurm
from dlbench.sweep.fused import Fuse
from dlbench.sweep.grid import plan_sweep
from dlbench.sweep.inline import run_sweep
from dlbench.sweep.slurm import SlurmGroup, SlurmTrial, follow_study, run_slurm
from dlbench.sweep.slurm_jobs import JobState
from dlbench.sweep.slurm_options import SlurmOptions

DATA = {"train_size": "300", "test_size": "60", "image_size": "8"}
LRS = ["0.1", "0.05", "0.03", "0.02", "0.01"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def plan(values=LRS):
    opts = {"epochs": "2", "batch_size": "32", "precision": "fp32"}
    return plan_sweep(
        "mlp", "shapes", [("lr", list(values))], settings={"width": "16"}, dataset_options=DATA, options=opts
    )


class FakeJob:
    def __init__(self, job_id: str):
        self.job_id = job_id


class FakeExecutor:
    """submitit's SlurmExecutor, recording what would have been submitted."""

    ids = itertools.count(100)
    submitted: list[dict] = []

    def __init__(self, folder, max_num_timeout):
        self.folder = Path(folder)

    def update_parameters(self, **params):
        self.name = params["job_name"]

    def batch(self):
        return contextlib.nullcontext()

    def submit(self, call):
        job = FakeJob(str(next(self.ids)))
        self.submitted.append({"id": job.job_id, "name": self.name, "call": call, "folder": self.folder})
        return job


@pytest.fixture
def cluster(monkeypatch):
    """Fake submissions; ``states`` (job id -> Slurm state word) answers for the jobs (PENDING if absent)."""
    FakeExecutor.submitted = []
    states: dict[str, str] = {}
    monkeypatch.setattr(slurm.submitit, "SlurmExecutor", FakeExecutor)
    monkeypatch.setattr(
        slurm, "job_states", lambda ids: {j: JobState(states.get(j, "PENDING"), "vm") for j in ids}
    )
    return states


def test_a_fused_group_is_one_job_and_every_member_is_recorded_with_it(cluster, tmp_path):
    p, store, notes = plan(), Store(tmp_path / "cache"), []
    counts, n = run_slurm(p, store, SlurmOptions(), fuse=Fuse("cap", 2), detach=True, on_note=notes.append)
    assert n == 3 and counts.rows == []  # [0, 3] and [1, 4] fused, 2 alone: three jobs
    assert notes == ["fusing 4 trials into 2 group(s) of 2 (--fuse off: one by one)"]
    first, second, alone = FakeExecutor.submitted
    keys = [t.config.key for t in p.trials]
    assert isinstance(first["call"], SlurmGroup) and isinstance(alone["call"], SlurmTrial)
    assert [c.key for c in first["call"].configs] == [keys[0], keys[3]]
    assert [c.key for c in second["call"].configs] == [keys[1], keys[4]]
    assert alone["call"].config.key == keys[2]
    assert first["name"] == f"dlbench:{p.name}:lr=0.1+1" and alone["name"] == f"dlbench:{p.name}:lr=0.03"
    assert first["folder"].name == f"lr=0.1-fused2-{keys[0][:12]}"
    jobs = store.jobs(p.name)
    assert {k: r["job_id"] for k, r in jobs.items()} == {
        keys[0]: first["id"],
        keys[3]: first["id"],
        keys[1]: second["id"],
        keys[4]: second["id"],
        keys[2]: alone["id"],
    }
    assert jobs[keys[3]]["group"] == [keys[0], keys[3]] and jobs[keys[3]]["label"] == "lr=0.02"
    assert "group" not in jobs[keys[2]]


def test_in_a_job_array_a_fused_group_is_one_task(cluster, tmp_path):
    p, store = plan(), Store(tmp_path / "cache")
    _, n = run_slurm(p, store, SlurmOptions(array_parallelism=2), fuse=Fuse("cap", 2), detach=True)
    assert n == 3 and [type(s["call"]) for s in FakeExecutor.submitted] == [
        SlurmGroup,
        SlurmGroup,
        SlurmTrial,
    ]
    jobs, keys = store.jobs(p.name), [t.config.key for t in p.trials]
    assert jobs[keys[0]]["job_id"] == jobs[keys[3]]["job_id"] != jobs[keys[2]]["job_id"]
    assert {Path(r["log_dir"]).name for r in jobs.values()} == {"arrays"}


def test_a_cancelled_group_job_fails_its_members_and_the_rerun_submits_only_them(cluster, tmp_path):
    p, store = plan(), Store(tmp_path / "cache")
    run_slurm(p, store, SlurmOptions(), fuse=Fuse("cap", 2), detach=True)
    first, second, alone = (s["id"] for s in FakeExecutor.submitted)
    cluster.update({first: "RUNNING", second: "PENDING", alone: "RUNNING"})
    seen = {}
    follow_study(store, p.study(), lambda k, label, state, c: seen.update({k: state}), wait=False)
    assert seen[3].state == "running" and seen[3].detail == f"on vm, job {first}, fused group of 2"
    assert seen[4].state == "queued" and seen[4].detail == f"job {second}, fused group of 2"
    assert seen[2].detail == f"on vm, job {alone}"

    _, n = run_slurm(p, store, SlurmOptions(), fuse=Fuse("cap", 2), detach=True)
    assert n == 0  # every trial's job is queued or running: followed, not submitted again

    cluster[first] = "CANCELLED"
    counts, missing = follow_study(store, p.study(), wait=False)
    assert missing == [] and counts.failed == 2
    keys = [t.config.key for t in p.trials]
    assert [r["key"] for r in counts.rows] == [keys[0], keys[3]]
    for row in counts.rows:
        assert row["status"] == "cancelled" and f"; job {first}, log " in row["message"]

    _, n = run_slurm(p, store, SlurmOptions(), fuse=Fuse("cap", 2), detach=True)
    assert n == 1  # the cancelled group again, as one job; the others still run
    again = FakeExecutor.submitted[-1]
    assert [c.key for c in again["call"].configs] == [keys[0], keys[3]]
    jobs = store.jobs(p.name)
    assert jobs[keys[0]]["job_id"] == jobs[keys[3]]["job_id"] == again["id"]
    assert "failure" not in jobs[keys[0]]


def test_without_fuse_every_trial_is_its_own_job(cluster, tmp_path):
    _, n = run_slurm(plan(), Store(tmp_path / "cache"), SlurmOptions(), fuse=Fuse("off"), detach=True)
    assert n == 5 and all(isinstance(s["call"], SlurmTrial) for s in FakeExecutor.submitted)


def test_a_group_job_trains_as_the_inline_executor_and_requeues_as_the_same_group(tmp_path):
    p = plan(LRS[:2])
    inline = Store(tmp_path / "inline")
    run_sweep(p, inline, data_dir=tmp_path / "data", fuse=Fuse("cap", 2))
    store = Store(tmp_path / "cache")
    configs = [t.config for t in p.trials]
    group = SlurmGroup(configs, str(store.root), str(tmp_path / "data"), force=True)
    rows = group()
    keys = [c.key for c in configs]
    assert [r["key"] for r in rows] == keys and [r["cached"] for r in rows] == [False, False]
    ours = store.runs(keys=keys).set_index("key").loc[keys]
    theirs = inline.runs(keys=keys).set_index("key").loc[keys]
    assert ours["fused"].tolist() == [2, 2]
    assert ours["test_acc"].tolist() == theirs["test_acc"].tolist()  # the same code path, bit for bit
    assert ours["best_val_acc"].tolist() == theirs["best_val_acc"].tolist()

    again = group.checkpoint().function  # what a requeued job runs: the same group, still forced, resuming
    assert isinstance(again, SlurmGroup) and [c.key for c in again.configs] == keys
    assert (again.force, again.resume) == (True, True)


class Interrupted(Exception):
    """Stands for the time limit: the job stops after an epoch's checkpoint."""


def test_a_forced_requeued_job_resumes_its_attempt_not_the_old_result(tmp_path, monkeypatch):
    from dlbench.sweep.trial import run_trial, run_trial_here

    log = tmp_path / "train.log"
    monkeypatch.setenv("DLBENCH_TRAIN_LOG", str(log))
    config = plan(["0.1"]).trials[0].config
    store, data = Store(tmp_path / "cache"), str(tmp_path / "data")
    old = run_trial(config, str(store.root), data)  # the result cached before the forced sweep

    def stop_after_the_first_epoch(event, **kw):
        if event == "epoch":
            raise Interrupted

    with pytest.raises(Interrupted):  # the forced job's first attempt: one epoch, then its time limit
        run_trial_here(config, store, data_dir=Path(data), force=True, callback=stop_after_the_first_epoch)
    assert store.checkpoint_path(config.key).exists()
    job = SlurmTrial(config, str(store.root), data, force=True)
    row = job.checkpoint().function()  # the requeued job
    assert row["cached"] is False and old["cached"] is False  # trained again, not the earlier result
    events = [line.split()[2] for line in log.read_text().splitlines()]
    last = events[len(events) - 1 - events[::-1].index("start") :]  # the requeued job's
    assert last == ["start", "resumed-1", "epoch-1", "end"]  # its own checkpoint: epoch 0 not trained again


def test_groups_for_cluster_nodes_do_not_ask_this_machines_memory(monkeypatch):
    from dlbench.sweep import checks
    from dlbench.sweep.fused import plan_groups

    configs = [t.config for t in plan().trials]
    monkeypatch.setattr(checks, "available_memory", lambda c: (1, "here"))  # this machine: no room at all
    assert plan_groups(configs, Fuse("cap", 5)) == ([], [])
    assert plan_groups(configs, Fuse("cap", 5), here=False) == ([[0, 1, 2, 3, 4]], [])


def test_gpu_jobs_are_grouped_on_a_login_node_without_a_gpu(monkeypatch):
    import torch

    from dlbench.sweep.fused import plan_groups

    def no_gpu(*args, **kwargs):
        raise AssertionError("the login node's GPU was asked")

    monkeypatch.setattr(torch.cuda, "mem_get_info", no_gpu)
    opts = {"epochs": "2", "batch_size": "32", "precision": "fp32"}
    gpu = plan_sweep(
        "mlp",
        "shapes",
        [("lr", LRS)],
        settings={"width": "16"},
        dataset_options=DATA,
        options=opts,
        device_kind="cuda",  # --slurm-gpus 1: planned for the jobs' GPU
    )
    configs = [t.config for t in gpu.trials]
    assert {c.device_kind for c in configs} == {"cuda"}
    assert plan_groups(configs, Fuse("auto"), here=False) == ([[0, 1, 2, 3, 4]], [])  # CUDA's cap: 32
