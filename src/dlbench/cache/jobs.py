"""The cache's record of cluster jobs: which Slurm job runs (or ran) each trial of a study, and their logs.

Layout under the cache root::

    slurm/<study>/jobs.json           trial key -> job id, log folder, label, submit time, the run keys of its
                                      fused group (a group is one job), and a failure once the job ended
                                      without storing its run
    slurm/<study>/<trial>-<key>/      submitit's files of that trial's jobs (pickled call, stdout, stderr, result)

The record lets a second command (`dlbench sweep` run again, `dlbench status`) follow jobs a detached sweep
submitted, and a rerun submit only trials whose job is missing or failed. :class:`ClusterJobs` is a part of
:class:`dlbench.cache.Store`.
"""

from __future__ import annotations

import json
from pathlib import Path

from dlbench.atomic import write_text
from dlbench.cache.root import CacheRoot


class ClusterJobs(CacheRoot):
    """The job record and log folders of each study run on a cluster."""

    def jobs_dir(self, study: str) -> Path:
        """``slurm/<study>/``: one folder per study (``paths.safe_name`` is one to one)."""
        from dlbench.paths import safe_name

        return self.root / "slurm" / safe_name(study)

    def job_log_dir(self, study: str, label: str, key: str) -> Path:
        """The folder of one trial's job files, named by the trial (its values) and its run key."""
        from dlbench.paths import safe_name

        # "lr=0.1, width=16 (seed 1)" -> "lr=0.1-width=16-seed1": readable, and a verbatim safe name when the
        # values are plain; the run key keeps two trials apart whatever their labels become
        plain = label.replace(", ", "-").replace(" (seed ", "-seed").replace(")", "")
        return self.jobs_dir(study) / f"{safe_name(plain)}-{key[:12]}"

    def jobs(self, study: str) -> dict[str, dict]:
        """The job record of ``study``: trial key -> {job_id, log_dir, label, submitted[, group][, failure]}; {}
        if none.

        An unreadable record is set aside with a warning: its jobs are then unknown to dlbench (they still
        run, and their trials still land in the cache), and a rerun may submit those trials again.
        """
        path = self.jobs_dir(study) / "jobs.json"
        if not path.exists():
            return {}
        try:
            doc = json.loads(path.read_text())
            return {str(k): dict(v) for k, v in doc["jobs"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self._unreadable_doc(path, "jobs it listed are no longer followed")
            return {}

    def save_jobs(self, study: str, jobs: dict[str, dict]) -> Path:
        """Write the job record of ``study`` (atomically: a reader sees the old or the new record)."""
        self._ensure_root()
        doc = {"study": study, "jobs": jobs}
        return write_text(self.jobs_dir(study) / "jobs.json", json.dumps(doc, indent=1, sort_keys=True))
