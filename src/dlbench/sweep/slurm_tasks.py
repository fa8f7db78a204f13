"""What a Slurm job runs: one trial, or one fused group of trials, as a callable that submitit pickles with the
job and calls on the node (these classes are imported there, with the submitting process's dlbench).

Both go through the cache's one way of training (:func:`dlbench.sweep.trial.run_trial`,
:func:`dlbench.sweep.fused_run.run_group`), so the claims keep every trial trained exactly once whatever runs
where. Told its time limit is near, or that it is preempted, a job requeues itself with the same callable
(submitit's :class:`~submitit.helpers.Checkpointable`): a trial resumes from its last epoch checkpoint, a group
from the group's checkpoint, so no finished epoch is trained twice.
"""

from __future__ import annotations

import os

import submitit

from dlbench.errors import DlbenchError


def _use_the_job_cpus() -> None:
    """Train on the job's share of the node (``--slurm-cpus``), not on every core of it."""
    cpus = os.environ.get("SLURM_CPUS_PER_TASK")
    if cpus and cpus.isdigit():
        import torch

        torch.set_num_threads(int(cpus))


class SlurmTrial(submitit.helpers.Checkpointable):
    """One trial as a Slurm job's callable. ``resume``: a requeued job's, which continues from its earlier
    attempt's checkpoint even when forced (``--force`` must still not take the earlier cached result)."""

    def __init__(
        self, config, cache_dir: str, data_dir: str | None, force: bool = False, resume: bool = False
    ):
        self.config = config
        self.cache_dir = cache_dir
        self.data_dir = data_dir
        self.force = force
        self.resume = resume

    def __call__(self) -> dict:
        from dlbench.sweep.trial import run_trial

        _use_the_job_cpus()
        resume = getattr(self, "resume", False)  # absent from jobs pickled by dlbench before it existed
        try:
            return run_trial(self.config, self.cache_dir, self.data_dir, force=self.force, resume=resume)
        except DlbenchError as exc:  # a refused trial (no GPU on the node, data missing): a row, not a crash
            return {"error": str(exc)}

    def checkpoint(self, *args, **kwargs):
        """Requeue the same trial; it resumes from the engine's last epoch checkpoint (never from scratch)."""
        return submitit.helpers.DelayedSubmission(
            SlurmTrial(self.config, self.cache_dir, self.data_dir, force=self.force, resume=True)
        )


class SlurmGroup(submitit.helpers.Checkpointable):
    """A fused group of trials as one Slurm job's callable: the group trains as one model, each member is
    stored as its own run, and the members that left the group (cached or claimed elsewhere meanwhile) train
    one by one in the same job."""

    def __init__(
        self, configs: list, cache_dir: str, data_dir: str | None, force: bool = False, resume: bool = False
    ):
        self.configs = list(configs)
        self.cache_dir = cache_dir
        self.data_dir = data_dir
        self.force = force
        self.resume = resume  # as SlurmTrial's

    def __call__(self) -> list[dict] | dict:
        from dlbench.sweep.fused_run import run_group

        _use_the_job_cpus()
        try:
            return run_group(self.configs, self.cache_dir, self.data_dir, self.force, self.resume)
        except DlbenchError as exc:  # refused (no GPU on the node, data missing): every member's row says so
            return {"error": str(exc)}

    def checkpoint(self, *args, **kwargs):
        """Requeue the same group; it resumes from the group's checkpoint, written after every epoch."""
        return submitit.helpers.DelayedSubmission(
            SlurmGroup(self.configs, self.cache_dir, self.data_dir, force=self.force, resume=True)
        )
