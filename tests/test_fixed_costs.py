"""Commands that train nothing load only what they need: a cache hit never imports torch or torchvision."""

from __future__ import annotations

import json
import subprocess
import sys

from dlbench import hardware
from dlbench.resolve import resolve_device_kind

TRAIN = ["train", "--model", "cnn", "--dataset", "shapes", "--set", "channels=4", "--epochs", "1"]
TRAIN += ["--dataset-opt", "train_size=200", "--dataset-opt", "test_size=50", "--format", "json"]

# The child process sees no GPU device nodes (as on a CPU-only Linux machine), whatever this machine has.
HIT = """
import json, sys
import dlbench.hardware
dlbench.hardware.accelerator_possible = lambda: False
from dlbench.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = sorted(m for m in ("torch", "torchvision") if m in sys.modules)
print(json.dumps({"heavy": heavy}), file=sys.stderr)
"""


def test_a_cache_hit_imports_neither_torch_nor_torchvision(cli, one_torch_thread, monkeypatch):
    monkeypatch.setattr(hardware, "accelerator_possible", lambda: False)
    first = cli(*TRAIN)
    assert first.code == 0, first
    proc = subprocess.run([sys.executable, "-c", HIT, *TRAIN], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cached"] is True
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == {"heavy": []}


def test_auto_is_the_cpu_without_torch_only_where_no_gpu_can_exist(monkeypatch):
    monkeypatch.setattr(hardware, "accelerator_possible", lambda: False)
    assert resolve_device_kind("auto") == "cpu"
    monkeypatch.setattr(hardware, "accelerator_possible", lambda: True)
    import torch

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    assert resolve_device_kind("auto") == ("cuda" if cuda else "mps" if mps else "cpu")  # torch decides
