"""Every printed "reproduce" command is shell-quoted: pasting it into ``sh`` runs dlbench with the user's paths as
single arguments, never a command injected through a hostile folder name."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys

import torch

from dlbench.analysis.recorded_figures import figures
from dlbench.cache import Store
from dlbench.data import get_dataset
from dlbench.models import create_model
from dlbench.resolve import resolve_config

TINY = ["--dataset-opt", "train_size=64", "--dataset-opt", "test_size=16"]
HOSTILE = "x;touch pwned; echo 'it ran' \"$(touch pwned2)\""


def _shell(tmp_path):
    """Run a pasted line through ``sh -c`` with a ``dlbench`` on PATH that logs its arguments, then runs this
    checkout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "dlbench"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS_LOG"\nexec "$PYTHON" -m dlbench "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin",
        "PYTHON": sys.executable,
        "ARGS_LOG": str(tmp_path / "args.txt"),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }

    def run(line: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["sh", "-c", line], cwd=work, env=env, capture_output=True, text=True, timeout=300
        )
        assert not list(work.glob("pwned*")) and not list(tmp_path.rglob("pwned*")), (
            "the injected command ran"
        )
        return proc

    return run, (tmp_path / "args.txt")


def _weights(folder):
    """An MLP state dict for `shapes`, saved under a hostile folder name."""
    folder.mkdir(parents=True)
    config = resolve_config("mlp", "shapes", {"width": 8}, {"train_size": 64, "test_size": 16})
    info = get_dataset("shapes").info(None, config.dataset_options)
    model = create_model("mlp", info.input_shape, info.num_classes, config.model_settings)
    torch.save(model.state_dict(), folder / "w 1.pt")
    return folder / "w 1.pt"


def test_train_reproduce_line_runs_dlbench_not_the_injection(cli, tmp_path):
    weights = _weights(tmp_path / HOSTILE)
    args = ["train", "--model", "mlp", "--dataset", "shapes", "--set", "width=8", *TINY, "--epochs", "1"]
    res = cli(*args, "--weights", weights)
    assert res.code == 0, res
    line = next(x for x in res.out.splitlines() if x.startswith("reproduce: "))[len("reproduce: ") :]
    assert shlex.split(line)[shlex.split(line).index("--weights") + 1] == str(weights)
    rec = json.loads(cli(*args, "--weights", weights, "--format", "json").out)
    assert rec["command"] == line  # the runs row's `command` column is the same quoted line

    run, log = _shell(tmp_path)
    proc = run(line)
    assert proc.returncode == 0, proc.stderr
    assert f"run {rec['key']}" in proc.stdout and "from the cache" in proc.stdout  # the very same run
    assert str(weights) in log.read_text().splitlines()  # dlbench got the path as one argument


def test_figure_commands_run_dlbench_not_the_injection(cli, tmp_path):
    out = tmp_path / HOSTILE / "kernels.png"
    res = cli("visualize-kernels", "--model", "cnn", "--untrained", "--dataset", "shapes", *TINY,
              "--set", "width=8", "--out", out, "--format", "json")  # fmt: skip
    assert res.code == 0, res
    command = json.loads(res.out)["command"]
    eq = cli("equivariance", "--layer", "conv", "--dataset", "shapes", *TINY, "--images", "4",
             "--out", tmp_path / HOSTILE / "eq.png", "--format", "json")  # fmt: skip
    assert eq.code == 0, eq
    figs = figures(Store(tmp_path / "cache"))
    assert command in figs["command"].tolist() and len(figs) == 2

    run, log = _shell(tmp_path)
    for line, path in zip(figs["command"], figs["path"], strict=True):
        os.remove(path)
        proc = run(line)
        assert proc.returncode == 0, proc.stderr
        assert path in log.read_text().splitlines() and os.path.exists(path)  # written again, same place
    assert len(figures(Store(tmp_path / "cache"))) == 2  # the same two rows, replaced
