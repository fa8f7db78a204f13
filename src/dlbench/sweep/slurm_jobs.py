"""What became of a study's Slurm jobs: their states (from accounting), failure rows, log tails.

Read-only: nothing here submits or cancels (see :mod:`dlbench.sweep.slurm`). The states come from one
``sacct`` call for all jobs of a study (Slurm's accounting, which also remembers finished jobs); where the
cluster keeps no accounting, ``squeue`` answers for live jobs and a finished job is judged by its result file.
"""

from __future__ import annotations

import math
import pickle
import subprocess
from dataclasses import dataclass
from pathlib import Path

from dlbench.sweep.study import METRICS

QUEUED = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "CONFIGURING", "RESIZING", "SUSPENDED"}
RUNNING = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}
# A job that ended without storing its run: (status of its row, why), by its final Slurm state.
END_REASONS = {
    "CANCELLED": ("cancelled", "its job was cancelled (scancel, or an administrator)"),
    "TIMEOUT": ("timeout", "its job hit the time limit and was not requeued (raise --slurm-time)"),
    "OUT_OF_MEMORY": (
        "oom",
        "its job was killed for using more memory than it asked for (raise --slurm-mem)",
    ),
    "NODE_FAIL": ("node-fail", "its job lost its node"),
    "PREEMPTED": ("preempted", "its job was preempted and not requeued"),
    "BOOT_FAIL": ("node-fail", "its node failed to boot"),
    "DEADLINE": ("timeout", "its job reached its deadline"),
    "FAILED": ("failed", "its job failed"),
    "COMPLETED": ("failed", "its job ended without storing the run"),
}
LOG_LINES = 6


@dataclass(frozen=True)
class JobState:
    """One job as Slurm sees it: its state word (``PENDING``, ``RUNNING``, ``CANCELLED``...), its nodes, and why
    it waits (``Resources``, ``Priority``, ``PartitionConfig``: more than the partition can ever give)."""

    state: str
    nodes: str = ""
    reason: str = ""

    @property
    def queued(self) -> bool:
        return self.state in QUEUED or self.state == "UNKNOWN"

    @property
    def running(self) -> bool:
        return self.state in RUNNING


def job_states(job_ids: list[str]) -> dict[str, JobState]:
    """The state of each job (``UNKNOWN`` for one Slurm does not report yet), in one accounting query."""
    if not job_ids:
        return {}
    states = _sacct(job_ids)
    if states is None:
        states = _squeue(job_ids)
    return {j: states.get(j, JobState("UNKNOWN")) for j in job_ids}


def _sacct(job_ids: list[str]) -> dict[str, JobState] | None:
    """States from accounting (None when sacct cannot answer: no accounting on this cluster)."""
    command = ["sacct", "-X", "-n", "-P", "-o", "JobID,State,NodeList,Reason"]
    for job in sorted({j.split("_")[0] for j in job_ids}):
        command += ["-j", job]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    out: dict[str, JobState] = {}
    for line in done.stdout.splitlines():
        parts = line.split("|")
        if len(parts) >= 4:  # "CANCELLED by 0": the first word is the state
            state = parts[1].split()[0] if parts[1].strip() else "UNKNOWN"
            out[parts[0]] = JobState(state, parts[2], _reason(parts[3]))
    return out


def _squeue(job_ids: list[str]) -> dict[str, JobState]:
    """Live jobs only; a job squeue no longer lists is ``ENDED`` (judged by its result file)."""
    command = ["squeue", "-h", "-o", "%i|%T|%N|%r", "-j", ",".join(sorted(set(job_ids)))]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    live = {}
    for line in done.stdout.splitlines():
        parts = line.split("|")
        if len(parts) >= 4:
            live[parts[0]] = JobState(parts[1], parts[2], _reason(parts[3]))
    return {j: live.get(j, JobState("ENDED")) for j in job_ids}


def _reason(text: str) -> str:
    return "" if text.strip() in ("", "None", "(null)") else text.strip()


def job_paths(log_dir: str | Path, job_id: str) -> dict[str, Path]:
    """submitit's files of one job (task 0): stdout, stderr and its result pickle."""
    folder = Path(log_dir)
    return {
        "stdout": folder / f"{job_id}_0_log.out",
        "stderr": folder / f"{job_id}_0_log.err",
        "result": folder / f"{job_id}_0_result.pkl",
    }


def read_result(log_dir: str | Path, job_id: str) -> tuple[str, object] | None:
    """The job's outcome as submitit wrote it: ("success", value) or ("error", traceback); None if absent.

    The file is one this cache's own jobs wrote (submitit's pickle of the trial's returned row)."""
    path = job_paths(log_dir, job_id)["result"]
    try:
        with open(path, "rb") as f:
            outcome = pickle.load(f)  # noqa: S301 - written by our own job into our own cache folder
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
        return None
    return tuple(outcome) if isinstance(outcome, (tuple, list)) and len(outcome) == 2 else None


def log_tail(log_dir: str | Path, job_id: str, lines: int = LOG_LINES) -> list[str]:
    """The last lines of the job's stderr (where Python and Slurm write errors), else of its stdout."""
    paths = job_paths(log_dir, job_id)
    for name in ("stderr", "stdout"):
        try:
            text = paths[name].read_text(errors="replace")
        except OSError:
            continue
        kept = [line.rstrip() for line in text.splitlines() if line.strip()]
        kept = [line for line in kept if not line.startswith("submitit ")] or kept  # the launcher's chatter
        if kept:
            return kept[-lines:]
    return []


def ended_reason(record: dict, state: JobState) -> tuple[str, str]:
    """(status, message) of a trial whose job ended without storing its run: why, which job, its log."""
    status, why = END_REASONS.get(state.state, ("failed", f"its job ended ({state.state})"))
    job_id, log_dir = record["job_id"], record["log_dir"]
    outcome = read_result(log_dir, job_id)
    if outcome and outcome[0] == "error":
        last = [line for line in str(outcome[1]).strip().splitlines() if line.strip()]
        status, why = "failed", f"its job raised {last[-1].strip()}" if last else "its job raised an error"
    elif outcome and outcome[0] == "success" and isinstance(outcome[1], dict) and "error" in outcome[1]:
        status, why = "failed", f"the trial was refused: {outcome[1]['error']}"
    elif state.state == "ENDED":
        status, why = (
            "failed",
            "its job ended without storing the run (this cluster keeps no accounting to say why)",
        )
    log = job_paths(log_dir, job_id)["stderr"]
    tail = log_tail(log_dir, job_id)
    message = f"{why}; job {job_id}, log {log}" + (": " + " | ".join(tail) if tail else "")
    return status, message


def failure_row(config_json: str, key: str, status: str, message: str) -> dict:
    """A ``runs``-like row for a trial whose job failed: no metrics, its status and message (not cached)."""
    return {
        "key": key,
        "status": status,
        "message": message,
        "config": config_json,
        **{m: math.nan for m in METRICS},
    }


def recorded_failures(jobs: dict[str, dict], stored: set[str]) -> list[dict]:
    """Failure rows of a study's job record, for trials the cache does not hold (for `sweep` and `report`)."""
    return [
        failure_row(r["config"], key, *r["failure"])
        for key, r in jobs.items()
        if r.get("failure") and key not in stored and "config" in r
    ]
