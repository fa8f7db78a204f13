"""Commands that train nothing load only what they need: a cache hit never imports torch or torchvision."""

from __future__ import annotations

import json
import subprocess
import sys

from dlbench import hardware
from dlbench.resolve import resolve_config, resolve_device_kind

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


def test_cgroup_cpu_quota_is_read_from_v2_and_v1_files(tmp_path):
    assert hardware.cgroup_cpu_quota(tmp_path) is None  # nothing to read: no quota
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert hardware.cgroup_cpu_quota(tmp_path) is None
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert hardware.cgroup_cpu_quota(tmp_path) == 2  # 1.5 CPUs of time: two threads can use it
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert hardware.cgroup_cpu_quota(v1) is None
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("400000\n")
    assert hardware.cgroup_cpu_quota(v1) == 4


def test_the_engine_caps_torch_threads_at_the_cpus_it_may_use(monkeypatch, tmp_path):
    import torch

    from dlbench.engine import train

    monkeypatch.setattr(hardware, "available_cpus", lambda: 1)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        opts = {"epochs": 1, "batch_size": 64, "device": "cpu"}
        config = resolve_config("mlp", "shapes", {"width": 8}, {"train_size": 128, "test_size": 32}, opts)
        train(config, data_dir=tmp_path)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_report_reuses_the_figures_sweep_drew_from_the_same_runs(
    cli, tmp_path, monkeypatch, one_torch_thread
):
    import dlbench.report.plots as plots
    import dlbench.report.sections.sweeps as sweeps

    def boom(*a, **k):
        raise AssertionError("drawn again although sweep's figures are up to date")

    def no_drawing(m) -> None:  # every place a report draws a sweep's figures from
        m.setattr(plots, "draw_sweep", boom)
        m.setattr(sweeps, "draw_sweep", boom)

    sweep = ["sweep", "lr", "0.1,0.05", "--model", "mlp", "--dataset", "shapes", "--set", "width=8"]
    sweep += ["--epochs", "1", "--dataset-opt", "train_size=200", "--dataset-opt", "test_size=50"]
    assert cli(*sweep).code == 0
    drawn = cli("report", "--out", tmp_path / "a.md")
    assert drawn.code == 0, drawn
    with monkeypatch.context() as m:
        no_drawing(m)
        reused = cli("report", "--out", tmp_path / "b.md")
    assert reused.code == 0, reused
    figures = sorted((tmp_path / "b_files").iterdir())
    assert all(p.suffix == ".png" for p in figures) and len(figures) >= 3
    for png in figures:
        if png.name.endswith(("curves.png", "grad-norms.png", "step-loss.png")):
            assert png.read_bytes() == (tmp_path / "a_files" / png.name).read_bytes()
    # Another run of the study (trained again with --force) makes the stamp differ: the report draws.
    assert cli(*sweep, "--force", "--no-figures").code == 0
    with monkeypatch.context() as m:
        no_drawing(m)
        assert cli("report", "--out", tmp_path / "c.md").code != 0
