"""Signals sent for real to a running dlbench (one line, the claim released, resumable), and what a person
sees while it runs when the output is not a terminal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import TINY

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


def _start(args: list[str], cache: Path, tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "DLBENCH_HOME": str(cache), "DLBENCH_DATA_DIR": str(tmp_path / "data")}
    env.pop("DLBENCH_DEBUG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "dlbench", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def _wait_for(predicate, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the run to start training")
        time.sleep(0.05)


TRAIN = ["train", "--model", "mlp", "--dataset", "shapes", *TINY, "--epochs", "400", "--batch-size", "8"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_while_training_is_one_line_releases_the_claim_and_resumes(sig, tmp_path):
    cache = tmp_path / "cache"
    proc = _start(TRAIN, cache, tmp_path)
    # Wait until the first epoch's checkpoint exists: the run holds its claim and has something to resume.
    _wait_for(lambda: any((cache / "checkpoints").glob("*.pt")) or proc.poll() is not None)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    text = err.decode()
    assert proc.returncode == CODES[sig], text
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert lines == [
        f"error: interrupted ({sig.name}); finished results are in the cache, rerun the same "
        "command to resume"
    ], text
    assert not list((cache / "claims").glob("*.claim")), "the claim must be released"
    assert list((cache / "checkpoints").glob("*.pt")), "the finished epochs stay resumable"


def test_ctrl_c_at_startup_is_one_line_not_a_traceback(tmp_path):
    proc = _start(["models", "--format", "json"], tmp_path / "cache", tmp_path)
    time.sleep(0.15)  # inside the imports
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # the machine was fast enough to finish first: nothing to check
        pytest.skip("the command finished before the signal arrived")
    assert proc.returncode == 130 and "Traceback" not in err.decode(), err.decode()


def test_no_arguments_prints_help_and_no_error_line(cli):
    res = cli()
    assert res.code == 0 and "Usage" in res.out and "error" not in res.err


def test_progress_off_a_terminal_is_one_plain_line_per_epoch(cli):
    res = cli("train", "--model", "mlp", "--set", "width=8", "--dataset", "shapes", *TINY, "--epochs", "3")
    assert res.code == 0, res
    epochs = [line for line in res.err.splitlines() if ": epoch " in line]
    assert [line.split(": epoch ")[1].split(":")[0] for line in epochs] == ["1/3", "2/3", "3/3"], res.err
    assert all("img/s" in line and "loss" in line for line in epochs)
    assert "\x1b[" not in res.err  # no terminal control codes in a log
