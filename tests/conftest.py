"""Shared fixtures: user folders redirected to tmp, the CLI run in-process, the shared real data located."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Under pytest-xdist each worker is its own process: one torch thread each keeps them from fighting over
# the cores (set before torch is imported; subprocesses started by tests inherit it).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

# Tables fit COLUMNS when it is set (tests that want a narrow terminal set the width themselves): a developer's
# exported COLUMNS=80 must not change what the other tests see. Popped before dlbench.cli builds its consoles.
os.environ.pop("COLUMNS", None)

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DLBENCH_TEST_DATA", ROOT.parent / "shared" / "data"))
# Small `shapes` splits keep CPU tests fast.
TINY = ["--dataset-opt", "train_size=1200", "--dataset-opt", "test_size=300"]


def pytest_collection_modifyitems(config, items):
    """Tests marked ``heavy`` (large models on the CPU: minutes and GBs) run only with DLBENCH_HEAVY_TESTS=1."""
    if os.environ.get("DLBENCH_HEAVY_TESTS"):
        return
    skip = pytest.mark.skip(reason="a large model on the CPU: set DLBENCH_HEAVY_TESTS=1 to run it")
    for item in items:
        if "heavy" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    """Never touch the user's real cache or data folders."""
    monkeypatch.setenv("DLBENCH_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DLBENCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DLBENCH_DEBUG", raising=False)
    yield


@pytest.fixture
def one_torch_thread():
    """In-process training on one thread: the two cores are shared with the other processes a test starts."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "fashion-mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"real Fashion-MNIST not found under {SHARED_DATA}")
    return SHARED_DATA


class CliResult:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"CliResult(code={self.code}, out={self.out[-500:]!r}, err={self.err[-500:]!r})"


@pytest.fixture
def cli(capsys):
    """Run `dlbench ARGS...` in this process; returns exit code, stdout and stderr."""
    from dlbench.cli import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def python() -> str:
    return sys.executable
