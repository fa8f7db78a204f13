"""The Slurm executor: a study's trials as Slurm jobs, submitted and followed through submitit.

Each job runs one trial, or one fused group of trials (``--fuse``), through the cache's one way of training
(:mod:`dlbench.sweep.slurm_tasks`) on the shared cache folder, with the interpreter, dlbench and data folder of
the submitting process, so the claims keep every trial trained exactly once whatever runs where. The cache
keeps a record of each study's jobs (:mod:`dlbench.cache.jobs`), one entry per trial (the members of a group
each name the group's job), so a second command can follow jobs a detached sweep submitted, and a rerun submits
only the trials whose job is missing or failed.

A job told its time limit is near (or that it is preempted) requeues itself through submitit's checkpointing;
the requeued job resumes from the last epoch checkpoint the engine wrote (a group: the group's checkpoint), so
no finished epoch is trained twice.
A job that ends without storing its run (cancelled, out of memory, time limit without requeue, lost node, an
error) becomes a failed row with the reason and the tail of its log.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import submitit

from dlbench.cache import Store
from dlbench.errors import UsageError
from dlbench.sweep.grid import SweepPlan
from dlbench.sweep.inline import SweepCounts, TrialFailed, open_study
from dlbench.sweep.slurm_jobs import JobState, ended_reason, failure_row, job_states
from dlbench.sweep.slurm_options import SlurmOptions
from dlbench.sweep.slurm_tasks import SlurmGroup, SlurmTrial  # SlurmTrial here too: older jobs' pickles

MAX_REQUEUES = 3  # time limits or preemptions one job may requeue after (submitit's max_num_timeout)
NODE_LOCAL = ("/tmp", "/var/tmp", "/dev/shm", "/run/user")


@dataclass
class TrialState:
    """What the live view shows of one trial: pending, queued, running, cached, done or failed, and where."""

    state: str
    detail: str = ""


OnChange = Callable[[int, str, TrialState, SweepCounts], None]


def node_local_warnings(folders: dict[str, Path], nodes: int | None = None) -> list[str]:
    """One line per folder the jobs need that may live on this node only (``/tmp`` and the like), when the
    cluster has more than one node; a one-node cluster sees its own ``/tmp``."""
    nodes = cluster_nodes() if nodes is None else nodes
    if nodes <= 1:
        return []
    lines = []
    for what, folder in folders.items():
        path = str(Path(folder).resolve())
        if any(path == p or path.startswith(p + "/") for p in NODE_LOCAL):
            lines.append(
                f"the {what} {path} may be local to this machine, and this cluster has {nodes} nodes: "
                f"jobs on other nodes would not see it; use a shared folder (--{what.split()[0]}-dir)"
            )
    return lines


def cluster_nodes() -> int:
    """How many nodes the cluster has (0 when sinfo cannot say)."""
    try:
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return len(set(out.stdout.split()))


def check_slurm(partition: str | None = None) -> None:
    """Refuse at once, in one line, where there is no Slurm to submit to, or no such partition."""
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise UsageError(
            "--executor slurm needs Slurm's commands (sbatch, sacct) on this machine; run on a login node "
            "of your cluster, or use --executor local"
        ) from None
    except subprocess.TimeoutExpired:
        raise UsageError("sinfo did not answer within 30 s: is the Slurm controller up?") from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        raise UsageError(f"Slurm does not answer ({why}); check that the controller is up (sinfo)")
    known = [p.rstrip("*") for p in done.stdout.split()]  # the default partition is starred
    if partition is not None and known and partition not in known:
        raise UsageError(
            f"--slurm-partition {partition}: this cluster has no such partition; it has: {', '.join(known)}"
        )


def _poll_seconds() -> float:
    try:
        return max(0.05, float(os.environ.get("DLBENCH_SLURM_POLL", "5")))
    except ValueError:
        return 5.0


def run_slurm(
    plan: SweepPlan,
    store: Store,
    options: SlurmOptions,
    *,
    data_dir: Path | None = None,
    force: bool = False,
    fail_fast: bool = False,
    detach: bool = False,
    on_change: OnChange | None = None,
    command: str = "",
    replace: bool = False,
    fuse=None,
    on_note: Callable[[str], None] | None = None,
) -> tuple[SweepCounts, int]:
    """Submit every trial the cache lacks (and no live job of this study runs), then follow them to the end.

    ``fuse`` (a :class:`dlbench.sweep.fused.Fuse`; None: off): each fused group of the trials to submit is one
    job; ``on_note`` receives the lines that say how many fuse and why some run alone.

    Returns (counts with the rows of the trials that ended, in the plan's order; jobs submitted now). With
    ``detach`` it returns right after submitting: the rows are then those of the cached trials.

    Raises:
        TrialFailed: ``fail_fast`` and a trial failed (the study's other jobs are cancelled).
        UsageError: sbatch refused the jobs (a bad partition, say), or ``--name`` holds another study.
    """
    study = open_study(plan, store, command, replace)
    counts = SweepCounts(len(plan.trials))
    rows: dict[int, dict] = {}
    definition = plan.study()
    labels = [definition.label(t.values, t.repeat) for t in plan.trials]
    follow = _Follow(store, plan.name, labels, counts, rows, on_change, fail_fast)
    jobs = store.jobs(plan.name)
    live = _live_jobs(jobs)
    todo = []
    for k, trial in enumerate(plan.trials):
        key = trial.config.key
        if not force and store.has(key):
            follow.finish(k, key, store.get(key), cached=True)
        elif key in live and not force:
            follow.watch(k, key)  # a job of an earlier (detached) command still runs it
        else:
            todo.append(k)
    units = _units(plan, todo, fuse, on_note)  # its lines first, as inline: the groups, why some run alone
    for k in todo:
        follow.show(k, TrialState("pending", "not submitted yet"))
    submitted = _submit(plan, store, options, units, labels, data_dir, force, follow)
    if not detach:
        try:
            follow.run()
        except TrialFailed:
            cancel_jobs(store, plan.name)
            raise
        counts.rows = [rows[k] for k in sorted(rows)]
    store.save_sweep(study)  # again: a concurrent sweep of the same name may have replaced it meanwhile
    return counts, submitted


def _live_jobs(jobs: dict[str, dict]) -> set[str]:
    """Keys of the recorded trials whose job (a fused group's: one for all its members) is queued or running."""
    recorded = {key: r["job_id"] for key, r in jobs.items() if not r.get("failure")}
    states = job_states(sorted(set(recorded.values())))
    return {key for key, job in recorded.items() if states[job].queued or states[job].running}


def _units(plan: SweepPlan, todo: list[int], fuse, on_note) -> list[list[int]]:
    """One job each: the fused groups of the trials to submit, then every other trial alone."""
    from dlbench.sweep.fused_run import work_units

    units, lines = work_units([plan.trials[k].config for k in todo], fuse, here=False)
    if on_note:
        for line in lines:
            on_note(line)
    return [[todo[i] for i in unit] for unit in units]


def _job_label(labels: list[str], unit: list[int]) -> str:
    """A job's trial in its name: the trial's label; a fused group's first label and how many more (``+3``)."""
    return labels[unit[0]] + (f"+{len(unit) - 1}" if len(unit) > 1 else "")


def _submit(plan, store, options, units, labels, data_dir, force, follow) -> int:
    """Submit one job per unit (or one job array), recording each job before the next is submitted."""
    if not units:
        return 0
    cache = str(store.root.resolve())
    data = str(Path(data_dir).resolve()) if data_dir is not None else None
    params = options.executor_parameters()
    calls = [(unit, _call(plan, unit, cache, data, force)) for unit in units]
    store.check_writable()
    jobs = store.jobs(plan.name)
    try:
        if options.array_parallelism:
            folder = store.jobs_dir(plan.name) / "arrays"
            executor = _executor(folder, params, f"dlbench:{plan.name}")
            with executor.batch():
                pending = [(unit, executor.submit(call)) for unit, call in calls]
            submitted = [(unit, job, folder) for unit, job in pending]
        else:
            submitted = []
            for unit, call in calls:
                folder = _log_dir(store, plan, labels, unit)
                executor = _executor(folder, params, f"dlbench:{plan.name}:{_job_label(labels, unit)}")
                submitted.append((unit, executor.submit(call), folder))
                _record(jobs, plan, labels, *submitted[-1])
                store.save_jobs(plan.name, jobs)  # a killed submitter still knows what it submitted
    except (subprocess.CalledProcessError, submitit.core.utils.FailedJobError, OSError) as exc:
        raise UsageError(_sbatch_refusal(exc)) from None
    for unit, job, folder in submitted:
        _record(jobs, plan, labels, unit, job, folder)
        for k in unit:
            follow.watch(k, plan.trials[k].config.key)
    store.save_jobs(plan.name, jobs)
    return len(submitted)


def _call(plan, unit: list[int], cache: str, data: str | None, force: bool):
    configs = [plan.trials[k].config for k in unit]
    if len(unit) == 1:
        return SlurmTrial(configs[0], cache, data, force)
    return SlurmGroup(configs, cache, data, force)


def _log_dir(store: Store, plan, labels: list[str], unit: list[int]) -> Path:
    """A trial's job folder; a group's is its first trial's, marked ``-fused<K>``."""
    label = labels[unit[0]] + (f", fused{len(unit)}" if len(unit) > 1 else "")
    return store.job_log_dir(plan.name, label, plan.trials[unit[0]].config.key)


def _executor(folder: Path, params: dict, name: str):
    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=MAX_REQUEUES)
    executor.update_parameters(**params, job_name=name)
    return executor


def _record(jobs: dict, plan, labels, unit: list[int], job, folder: Path) -> None:
    """One record per trial; the members of a group share the group's job and list its trials' keys."""
    keys = [plan.trials[k].config.key for k in unit]
    for k, key in zip(unit, keys, strict=True):
        jobs[key] = {
            "job_id": str(job.job_id),
            "log_dir": str(folder),
            "label": labels[k],
            "submitted": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "config": plan.trials[k].config.canonical_json(),
            **({"group": keys} if len(unit) > 1 else {}),
        }


def _sbatch_refusal(exc: Exception) -> str:
    text = getattr(exc, "stderr", None) or getattr(exc, "output", None) or str(exc)
    text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    why = next(
        (line for line in reversed(lines) if "error" in line.lower()), lines[-1] if lines else str(exc)
    )
    return (
        f"sbatch refused the job: {why.removeprefix('sbatch: error: ')}; check --slurm-partition, "
        "--slurm-time, --slurm-mem, --slurm-cpus and --slurm-gpus against `sinfo`"
    )


class _Follow:
    """Follows a study's jobs until each trial is stored or failed, telling ``on_change`` of every change."""

    def __init__(self, store: Store, name: str, labels, counts, rows, on_change, fail_fast):
        self.store, self.name, self.labels = store, name, labels
        self.counts, self.rows, self.on_change, self.fail_fast = counts, rows, on_change, fail_fast
        self.outstanding: dict[int, str] = {}  # trial index -> run key
        self.shown: dict[int, TrialState] = {}

    def show(self, k: int, state: TrialState) -> None:
        if self.shown.get(k) != state:
            self.shown[k] = state
            if self.on_change:
                self.on_change(k, self.labels[k], state, self.counts)

    def watch(self, k: int, key: str) -> None:
        self.outstanding[k] = key

    def finish(self, k: int, key: str, row: dict, cached: bool) -> None:
        self.outstanding.pop(k, None)
        self.rows[k] = row
        ok = row["status"] == "ok"
        detail = "" if ok else f"{row['status']}: {row['message']}"
        self.show(k, TrialState("cached" if cached else "done" if ok else "failed", detail))
        self.counts.add(k, row, cached, self.fail_fast)

    def run(self) -> None:
        poll = _poll_seconds()
        while self.outstanding:
            self.step()
            if self.outstanding:
                time.sleep(poll)

    def step(self) -> None:
        """One look at every outstanding trial: stored, still queued or running, or ended without its run."""
        jobs = self.store.jobs(self.name)
        ids = {k: jobs[key]["job_id"] for k, key in self.outstanding.items() if key in jobs}
        states = job_states(sorted(set(ids.values())))
        failed = False
        for k, key in sorted(self.outstanding.items()):
            if self.store.has(key):
                self.finish(k, key, self.store.get(key), cached=False)
            elif k not in ids:  # its record was lost (a concurrent sweep rewrote it): wait for the cache
                self.show(k, TrialState("queued", "job unknown"))
            else:
                failed |= self._look(k, key, jobs[key], states[ids[k]])
        if failed:
            self.store.save_jobs(self.name, jobs)

    def _look(self, k: int, key: str, record: dict, state: JobState) -> bool:
        job = record["job_id"]
        if record.get("group"):  # every member of a fused group shows the group's job
            job = f"{job}, fused group of {len(record['group'])}"
        if state.queued:  # with Slurm's reason: PartitionConfig says the job asks more than the partition has
            why = f", waiting: {state.reason}" if state.reason else ""
            self.show(k, TrialState("queued", f"job {job}{why}"))
        elif state.running:
            self.show(k, TrialState("running", f"on {state.nodes or '?'}, job {job}"))
        elif self.store.has(key):  # stored between the two looks
            self.finish(k, key, self.store.get(key), cached=False)
        else:
            status, message = ended_reason(record, state)
            record["failure"] = [status, message]
            self.finish(k, key, failure_row(record["config"], key, status, message), cached=False)
            return True
        return False


def follow_study(
    store: Store, study, on_change: OnChange | None = None, wait: bool = True
) -> tuple[SweepCounts, list[int]]:
    """Follow the recorded jobs of a saved study (``dlbench status``) until each is stored or failed (or look
    once, ``wait`` False).

    Returns the counts (rows of the trials that ended, in the study's order) and the indices of the trials
    neither stored nor recorded as submitted (nothing will bring them: run the sweep command).
    """
    counts = SweepCounts(len(study.trials))
    rows: dict[int, dict] = {}
    labels = [study.label(t.values, t.repeat) for t in study.trials]
    follow = _Follow(store, study.name, labels, counts, rows, on_change, False)
    jobs = store.jobs(study.name)
    missing = []
    for k, trial in enumerate(study.trials):
        record = jobs.get(trial.key)
        if store.has(trial.key):
            follow.finish(k, trial.key, store.get(trial.key), cached=True)
        elif record and record.get("failure"):
            follow.finish(k, trial.key, failure_row(record["config"], trial.key, *record["failure"]), False)
        elif record:
            follow.watch(k, trial.key)
        else:
            missing.append(k)
            follow.show(k, TrialState("pending", "not submitted"))
    if wait:
        follow.run()
    else:
        follow.step()
    counts.rows = [rows[k] for k in sorted(rows)]
    return counts, missing


def cancel_jobs(store: Store, name: str) -> list[str]:
    """Cancel the study's queued and running jobs (``scancel``); returns their ids. Their trials keep the
    epochs they finished (checkpoints), and a rerun resubmits them."""
    jobs = store.jobs(name)
    ids = {r["job_id"] for r in jobs.values() if not r.get("failure")}
    live = sorted(j for j, s in job_states(sorted(ids)).items() if s.queued or s.running)
    if live:
        subprocess.run(["scancel", *live], capture_output=True, timeout=60)
    return live
