"""The local cluster of scripts/slurm-cluster.sh does what the `--executor slurm` tests rely on: jobs run, sacct
records their end states, and submitit returns results and reads a cancelled job's state through accounting."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

import pytest


def _wait_for(what: str, probe: Callable[[], object], timeout_s: float = 60.0) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout_s:.0f}s")
        time.sleep(0.5)


def _sacct_state(job_id: str) -> str:
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-j", job_id, "--format=State"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0] if out else ""


def test_a_batch_job_completes_and_sacct_records_it(slurm_cluster, tmp_path):
    job_id = subprocess.run(
        [
            "sbatch",
            "--parsable",
            "--wait",
            f"--output={tmp_path}/%j.out",
            "--wrap",
            "echo ran-on-$(hostname -s)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert "ran-on-" in (tmp_path / f"{job_id}.out").read_text()
    assert _wait_for("sacct shows COMPLETED", lambda: _sacct_state(job_id) == "COMPLETED")


def test_submitit_returns_a_result_and_sees_a_cancelled_job(slurm_cluster, tmp_path):
    submitit = pytest.importorskip("submitit")
    executor = submitit.AutoExecutor(folder=tmp_path / "%j", cluster="slurm")
    executor.update_parameters(timeout_min=5, slurm_partition="debug", cpus_per_task=1, mem_gb=1)

    # Builtins pickle by reference, so the job needs nothing from this test module.
    assert executor.submit(pow, 2, 10).result() == 1024

    sleeper = executor.submit(time.sleep, 300)
    _wait_for("job running", lambda: sleeper.state == "RUNNING")
    subprocess.run(["scancel", sleeper.job_id], check=True)
    # sacct, hence submitit, reads "CANCELLED by <uid>": compare the first word.
    assert _wait_for("submitit sees CANCELLED", lambda: sleeper.state.split()[0] == "CANCELLED")
    assert sleeper.done()
    # (`sleeper.result()` would raise UncompletedJobError, after 15 s spent waiting for a result file on NFS.)
