"""The engine and the cache: cache hits train nothing, kills resume exactly, failures are recorded results."""

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

import pytest
import torch

from dlbench.cache import Store
from dlbench.config import make_options
from dlbench.engine.device_data import DeviceData
from dlbench.engine.schedule import lr_at
from dlbench.resolve import resolve_config
from dlbench.sweep.trial import run_trial_here as run_one

TINY_DATA = {"train_size": 1200, "test_size": 300}
SMALL_CNN = {"channels": (8, 16), "head_width": 32}


def tiny_config(**opts):
    base = {"epochs": 2, "batch_size": 64, "optimizer": "adam", "lr": 3e-3}
    base.update(opts)
    return resolve_config("cnn", "shapes", SMALL_CNN, TINY_DATA, base)


def test_train_records_everything(tmp_path):
    store = Store(tmp_path / "cache")
    row, cached = run_one(tiny_config(), store, data_dir=tmp_path / "data")
    assert not cached and row["status"] == "ok"
    assert 0.0 <= row["test_acc"] <= 1.0 and row["params"] > 0 and row["seconds_per_epoch"] > 0
    key = row["key"]
    epochs = store.table("epochs", [key])
    assert list(epochs["epoch"]) == [0, 1]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_sec"} <= set(
        epochs
    )
    grads = store.table("grads", [key])
    assert {"conv1", "conv2", "head", "global"} <= set(grads["layer"])
    assert (grads["max_norm"] >= grads["mean_norm"] - 1e-9).all()
    assert len(store.table("steps", [key])) > 0
    preds = store.table("predictions", [key])
    assert len(preds) == 300 and set(preds.columns) >= {"index", "label", "pred", "confidence"}
    acc = (preds["label"] == preds["pred"]).mean()
    assert abs(acc - row["test_acc"]) < 1e-9
    assert store.weights_path(key).exists() and not store.checkpoint_path(key).exists()


def test_same_config_is_a_cache_hit_that_trains_nothing(tmp_path, monkeypatch):
    store = Store(tmp_path / "cache")
    config = tiny_config(epochs=1)
    first, _ = run_one(config, store, data_dir=tmp_path / "data")

    def boom(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr("dlbench.engine.train", boom)
    again = resolve_config(
        "cnn",
        "shapes",
        {"channels": "8/16", "head_width": "32"},
        {"train_size": "1200", "test_size": "300"},
        {"epochs": "1", "batch-size": "64", "optimizer": "adam", "lr": "0.003"},
    )
    row, cached = run_one(again, store, data_dir=tmp_path / "data")
    assert cached and row["key"] == first["key"] and row["test_acc"] == first["test_acc"]


def test_forced_divergence_is_a_recorded_result(tmp_path):
    store = Store(tmp_path / "cache")
    config = resolve_config(
        "mlp",
        "shapes",
        {"width": 32},
        TINY_DATA,
        {"epochs": 2, "lr": 1e6, "optimizer": "sgd", "batch_size": 64},
    )
    row, _ = run_one(config, store, data_dir=tmp_path / "data")
    assert row["status"] == "diverged" and "non-finite" in row["message"]
    assert store.has(row["key"])  # recorded: the next call is a cache hit
    assert run_one(config, store, data_dir=tmp_path / "data")[1] is True


def test_out_of_memory_is_a_recorded_result(tmp_path, monkeypatch):
    from dlbench.engine import metrics

    def oom(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(metrics.GradNorms, "update", oom)
    store = Store(tmp_path / "cache")
    row, _ = run_one(tiny_config(epochs=1), store, data_dir=tmp_path / "data")
    assert row["status"] == "oom" and "smaller --batch-size" in row["message"]


def test_early_stopping_keeps_the_best_model(tmp_path):
    store = Store(tmp_path / "cache")
    # No batch norm (its running stats move without learning) and an lr so small that nothing is learned:
    # validation accuracy never improves after epoch 1.
    config = resolve_config(
        "cnn",
        "shapes",
        {**SMALL_CNN, "batchnorm": False},
        TINY_DATA,
        {"epochs": 8, "lr": 1e-12, "patience": 2, "batch_size": 64},
    )
    row, _ = run_one(config, store, data_dir=tmp_path / "data")
    assert row["epochs_run"] == 3 and "early stop" in row["message"] and row["best_epoch"] == 0


def test_lr_schedules():
    opts = make_options({"lr": 1.0, "epochs": 10, "schedule": "cosine"})
    assert lr_at(0, 10, opts) == 1.0 and lr_at(99, 10, opts) < 0.01
    step = make_options({"lr": 1.0, "epochs": 9, "schedule": "step", "step_every": 3, "gamma": 0.5})
    assert [lr_at(e * 10, 10, step) for e in (0, 3, 6)] == [1.0, 0.5, 0.25]
    warm = make_options({"lr": 1.0, "epochs": 10, "warmup_epochs": 1})
    assert lr_at(0, 10, warm) == pytest.approx(0.1) and lr_at(10, 10, warm) == 1.0
    one = make_options({"lr": 1.0, "epochs": 10, "schedule": "onecycle"})
    peak = max(lr_at(s, 10, one) for s in range(100))
    assert peak == pytest.approx(1.0, abs=0.02) and lr_at(0, 10, one) < 0.1 and lr_at(99, 10, one) < 0.01


def test_on_device_augmentation_keeps_shape_and_content():
    from dlbench.data import get_dataset

    data = get_dataset("shapes").load(
        Path(os.environ["DLBENCH_DATA_DIR"]), {"train_size": 64, "test_size": 8}
    )
    dd = DeviceData(
        data,
        torch.device("cpu"),
        val_split=0.0,
        train_subset=0,
        normalize=False,
        augment=True,
        channels_last=False,
    )
    x = torch.rand(16, 3, 32, 32)
    g = torch.Generator().manual_seed(0)
    out = dd._crop_flip(x, g, pad=0)  # no padding: only flips, so every image is itself or its mirror
    for a, b in zip(x, out, strict=True):
        assert torch.equal(a, b) or torch.equal(a.flip(2), b)
    crops = dd._crop_flip(x, g)
    assert crops.shape == x.shape


def test_bad_options_are_one_line_errors(cli):
    for args, needle in [
        (["--lr", "-1"], "lr must be positive"),
        (["--batch-size", "0"], "batch-size must be at least 1"),
        (["--optimizer", "rmsprop"], "optimizer must be one of"),
        (["--val-split", "1.5"], "val-split must be in"),
    ]:
        res = cli("train", "--model", "mlp", "--dataset", "shapes", *args)
        assert res.code == 2 and needle in res.err and "Traceback" not in res.err, res


def test_train_cli_json_then_cache_hit(cli):
    args = [
        "train",
        "--model",
        "mlp",
        "--dataset",
        "shapes",
        "--set",
        "width=32",
        "--dataset-opt",
        "train_size=600",
        "--dataset-opt",
        "test_size=100",
        "--epochs",
        "1",
        "--format",
        "json",
    ]
    first = json.loads(cli(*args).out)
    assert {"key", "status", "cached", "params", "trainable", "test_acc", "seconds_per_epoch"} <= set(first)
    assert first["cached"] is False and first["status"] == "ok"
    second = json.loads(cli(*args).out)
    assert second["cached"] is True and second["key"] == first["key"]
    listing = json.loads(cli("runs", "--format", "json").out)
    assert [r["key"] for r in listing] == [first["key"]]
    show = cli("runs", "show", first["key"][:6])
    assert show.code == 0 and f"reproduce: {first['command']}" in show.out
    as_csv = cli(*args[:-1], "csv")  # one CSV document: the summary, with the run key
    summary = {r["metric"]: r["value"] for r in csv.DictReader(io.StringIO(as_csv.out))}
    assert summary["key"] == first["key"] and float(summary["test_acc"]) == first["test_acc"]
    assert "reproduce: " in as_csv.err and "reproduce: " not in as_csv.out
    assert cli("runs", "rm", first["key"]).code == 0
    assert json.loads(cli("runs", "--format", "json").out) == []


RESUME_ARGS = [
    "train",
    "--model",
    "mlp",
    "--set",
    "width=64",
    "--set",
    "dropout=0.1",  # dropout draws must resume exactly too
    "--dataset",
    "shapes",
    "--dataset-opt",
    "train_size=2000",
    "--dataset-opt",
    "test_size=300",
    "--epochs",
    "5",
    "--batch-size",
    "16",
    "--optimizer",
    "adam",
    "--lr",
    "0.001",
    "--augment",
    "--format",
    "json",
]


def test_killed_run_resumes_and_matches_uninterrupted(tmp_path):
    env = {**os.environ, "DLBENCH_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "dlbench", *RESUME_ARGS]
    # Uninterrupted reference in its own cache.
    ref = subprocess.run(
        cmd, env={**env, "DLBENCH_HOME": str(tmp_path / "ref")}, capture_output=True, text=True
    )
    assert ref.returncode == 0, ref.stderr
    ref = json.loads(ref.stdout)

    cache = tmp_path / "cache"
    proc = subprocess.Popen(
        cmd, env={**env, "DLBENCH_HOME": str(cache)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    ckpt = cache / "checkpoints" / f"{ref['key']}.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # a real kill, mid-run
    proc.wait()
    assert not (cache / "runs" / f"{ref['key']}.parquet").exists(), "the run finished before the kill"

    resumed = subprocess.run(cmd, env={**env, "DLBENCH_HOME": str(cache)}, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    res = json.loads(resumed.stdout)
    assert res["key"] == ref["key"] and res["cached"] is False
    assert res["test_acc"] == ref["test_acc"]
    assert res["test_loss"] == pytest.approx(ref["test_loss"], rel=1e-6)
    store, ref_store = Store(cache), Store(tmp_path / "ref")
    a, b = store.table("epochs", [res["key"]]), ref_store.table("epochs", [ref["key"]])
    assert list(a["epoch"]) == list(range(5))
    assert a["val_acc"].tolist() == b["val_acc"].tolist()
    assert a["train_loss"].tolist() == pytest.approx(b["train_loss"].tolist(), rel=1e-6)


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="per-run CPU peak needs Linux")
def test_cpu_peak_memory_is_measured_per_run_not_per_process():
    from dlbench.engine.environment import peak_memory_mb, reset_peak_memory

    cpu = torch.device("cpu")
    reset_peak_memory(cpu)
    big = torch.ones(100_000_000)  # 400 MB
    first = peak_memory_mb(cpu)
    del big
    reset_peak_memory(cpu)
    small = torch.ones(1_000_000)  # 4 MB
    second = peak_memory_mb(cpu)
    del small
    assert first - second > 250, (first, second)  # the big run's peak does not carry over
