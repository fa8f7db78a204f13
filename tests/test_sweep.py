"""`dlbench sweep`: tables and figures, reruns that train nothing, kills that lose nothing, failures as rows."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dlbench.cache import Store

TINY = [
    "--dataset",
    "shapes",
    "--dataset-opt",
    "train_size=600",
    "--dataset-opt",
    "test_size=150",
    "--epochs",
    "1",
    "--batch-size",
    "64",
]
MLP = ["--model", "mlp", "--set", "width=16"]


def trained_keys(cache: Path) -> list[str]:
    return sorted(p.stem for p in (cache / "runs").glob("*.parquet"))


def test_sweep_table_figures_and_free_rerun(cli, tmp_path, monkeypatch):
    figs = tmp_path / "figs"
    res = cli(
        "sweep", "activation", "relu,tanh,sigmoid", *MLP, *TINY, "--format", "csv", "--figures-dir", figs
    )
    assert res.code == 0, res
    rows = list(csv.DictReader(io.StringIO(res.out)))
    assert [r["activation"] for r in rows] == ["relu", "tanh", "sigmoid"]
    for col in (
        "params",
        "seconds_per_epoch",
        "inference_seconds",
        "images_per_sec",
        "peak_memory_mb",
        "best_val_acc",
        "test_acc",
        "status",
        "best",
    ):
        assert col in rows[0]
    assert sum(r["best"] == "True" for r in rows) == 1
    # today's figures and the ones a person expects: accuracy against activation, the best trial's confusion
    names = ("metric.png", "curves.png", "confusion.png", "grad_norms.png", "step_loss.png")
    assert sorted(p.name for p in figs.glob("*.png")) == sorted(names)
    for name in names:
        assert (figs / name).stat().st_size > 10_000
    cache = Path(os.environ["DLBENCH_HOME"])
    assert len(trained_keys(cache)) == 3

    def boom(*a, **k):
        raise AssertionError("a cached trial was trained again")

    monkeypatch.setattr("dlbench.engine.train", boom)
    again = cli("sweep", "activation", "relu,tanh,sigmoid", *MLP, *TINY, "--format", "json", "--no-figures")
    assert again.code == 0, again
    assert [r["test_acc"] for r in json.loads(again.out)] == [float(r["test_acc"]) for r in rows]

    # A rerun answered from the cache keeps the figures it drew last time instead of drawing them again...
    drawn = {name: (figs / name).stat().st_mtime_ns for name in names}
    import dlbench.report.plots as plots

    draw = plots.draw_sweep
    monkeypatch.setattr(plots, "draw_sweep", boom)
    third = cli("sweep", "activation", "relu,tanh,sigmoid", *MLP, *TINY, "--figures-dir", figs)
    assert third.code == 0, third
    assert {name: (figs / name).stat().st_mtime_ns for name in drawn} == drawn
    # ...but draws them again when a figure is missing.
    monkeypatch.setattr(plots, "draw_sweep", draw)
    (figs / "curves.png").unlink()
    fourth = cli("sweep", "activation", "relu,tanh,sigmoid", *MLP, *TINY, "--figures-dir", figs)
    assert fourth.code == 0 and (figs / "curves.png").stat().st_size > 10_000, fourth


def test_default_grid_is_printed_and_grid_axes(cli):
    res = cli(
        "sweep",
        "--grid",
        "depth=1,2",
        "--grid",
        "width=8,16",
        "--model",
        "mlp",
        *TINY,
        "--format",
        "json",
        "--no-figures",
    )
    assert res.code == 0, res
    rows = json.loads(res.out)
    assert [(r["depth"], r["width"]) for r in rows] == [(1, 8), (1, 16), (2, 8), (2, 16)]
    store = Store(Path(os.environ["DLBENCH_HOME"]))
    assert store.get_sweep("depth-width-mlp-shapes")["axes"][0]["values"] == ["1", "2"]
    # No values: the default grid is printed before anything runs (patch sizes: divisors of 32 from 2).
    res = cli(
        "sweep",
        "patch-size",
        "--model",
        "mlpmixer",
        *TINY,
        "--set",
        "embed_dim=8",
        "--set",
        "num_blocks=1",
        "--format",
        "json",
        "--no-figures",
    )
    assert "default values: 2, 4, 8, 16, 32" in res.err
    assert [r["patch_size"] for r in json.loads(res.out)] == [2, 4, 8, 16, 32]


def test_repeats_give_mean_and_std(cli):
    res = cli("sweep", "lr", "0.01,0.001", *MLP, *TINY, "--repeats", "2", "--format", "json", "--no-figures")
    assert res.code == 0, res
    rows = json.loads(res.out)
    assert len(rows) == 2 and all(r["seeds"] == 2 for r in rows)
    assert all("test_acc_std" in r for r in rows)
    assert len(trained_keys(Path(os.environ["DLBENCH_HOME"]))) == 4


def test_divergence_is_a_row_and_the_sweep_goes_on(cli):
    res = cli(
        "sweep", "lr", "1e8,0.01", *MLP, *TINY, "--optimizer", "sgd", "--format", "json", "--no-figures"
    )
    assert res.code == 0, res
    rows = json.loads(res.out)
    assert [r["status"] for r in rows] == ["diverged", "ok"]
    ff = cli(
        "sweep", "lr", "1e8,0.01", *MLP, *TINY, "--optimizer", "sgd", "--fail-fast", "--force", "--no-figures"
    )
    errors = [line for line in ff.err.splitlines() if line.startswith("error:")]
    assert ff.code == 1 and len(errors) == 1 and "diverged" in errors[0] and "Traceback" not in ff.err


def test_bad_sweeps_fail_before_training(cli):
    cases = [
        (["sweep", "patch-size", "5,4", "--model", "mlpmixer", *TINY], "does not divide"),
        (["sweep", "lrr", "0.1", *MLP, *TINY], "did you mean 'lr'"),
        (["sweep", "lr", "0.1,,0.2", *MLP, *TINY], "empty value"),
        (["sweep", "lr", "0.1,0", *MLP, *TINY], "lr must be positive"),
        (["sweep", "lr", "0.1", "--lr", "0.2", *MLP, *TINY], "both swept and fixed"),
        (["sweep", *MLP, *TINY], "nothing to sweep"),
        (["sweep", "colour", *MLP, *TINY], "unknown sweep parameter"),
    ]
    for args, needle in cases:
        res = cli(*args)
        assert res.code == 2 and needle in res.err and "Traceback" not in res.err, (args, res)
    assert not (Path(os.environ["DLBENCH_HOME"]) / "runs").exists()


def test_sweep_killed_by_a_signal_resumes_with_every_trial_once(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "DLBENCH_HOME": str(cache), "DLBENCH_DATA_DIR": str(tmp_path / "data")}
    cmd = [
        sys.executable,
        "-m",
        "dlbench",
        "sweep",
        "lr",
        "0.05,0.02,0.01,0.005",
        "--model",
        "mlp",
        "--set",
        "width=64",
        "--dataset",
        "shapes",
        "--dataset-opt",
        "train_size=2000",
        "--dataset-opt",
        "test_size=200",
        "--epochs",
        "4",
        "--batch-size",
        "16",
        "--no-figures",
        "--format",
        "json",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:  # kill after the first trial, mid-second
        if len(trained_keys(cache)) >= 1 and list((cache / "checkpoints").glob("*.pt")):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = trained_keys(cache)
    assert 1 <= len(done_before) < 4, "the kill did not land mid-sweep"

    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    rows = json.loads(rerun.stdout)
    assert [r["status"] for r in rows] == ["ok"] * 4
    keys = trained_keys(cache)
    assert len(keys) == 4 and set(done_before) <= set(keys)
    store = Store(cache)
    for key in keys:  # every epoch exactly once, every file readable
        assert store.table("epochs", [key])["epoch"].tolist() == [0, 1, 2, 3]
    assert not list((cache / "checkpoints").glob("*.pt"))
