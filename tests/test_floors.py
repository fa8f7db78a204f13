"""Accuracy floors on real data (CPU). These train for a minute or two: the numbers a user can expect."""

from __future__ import annotations

import pytest

from dlbench.cache import Store
from dlbench.resolve import resolve_config
from dlbench.sweep.trial import run_trial_here as run_one

pytestmark = pytest.mark.slow


def test_seed_mlp_reaches_088_on_fashion_mnist(shared_data, tmp_path):
    # The seeds' 784-256-256-10 ReLU MLP; the seed report measured 0.881.
    config = resolve_config(
        "mlp",
        "fashion-mnist",
        {"depth": 2, "width": 256},
        {},
        {"epochs": 10, "optimizer": "sgd", "lr": 0.05, "schedule": "cosine"},
    )
    row, _ = run_one(config, Store(tmp_path / "cache"), data_dir=shared_data)
    assert row["status"] == "ok"
    assert row["test_acc"] >= 0.88, row["test_acc"]


def test_small_cnn_reaches_090_on_fashion_mnist(shared_data, tmp_path):
    config = resolve_config(
        "cnn",
        "fashion-mnist",
        {"channels": (16, 32), "head_width": 64},
        {},
        {"epochs": 4, "optimizer": "adam", "lr": 2e-3, "schedule": "cosine"},
    )
    row, _ = run_one(config, Store(tmp_path / "cache"), data_dir=shared_data)
    assert row["status"] == "ok"
    assert row["test_acc"] >= 0.90, row["test_acc"]


def test_on_shapes_a_small_cnn_beats_an_mlp_of_similar_size(tmp_path):
    store, data = Store(tmp_path / "cache"), {"train_size": 4000, "test_size": 1000}
    opts = {"epochs": 4, "optimizer": "adam", "lr": 2e-3}
    cnn = resolve_config("cnn", "shapes", {"channels": (16, 32), "head_width": 32}, data, opts)
    from dlbench.analysis.params import count

    cnn_params = count(
        "cnn", {"channels": (16, 32), "head_width": 32}, input_shape=(3, 32, 32), num_classes=10
    ).params
    mlp = resolve_config("mlp", "shapes", {"depth": 1, "width": cnn_params // 3082}, data, opts)
    mlp_params = count(
        "mlp", {"depth": 1, "width": cnn_params // 3082}, input_shape=(3, 32, 32), num_classes=10
    ).params
    assert 0.8 < mlp_params / cnn_params < 1.25  # similar size
    cnn_row, _ = run_one(cnn, store, data_dir=tmp_path / "data")
    mlp_row, _ = run_one(mlp, store, data_dir=tmp_path / "data")
    assert cnn_row["test_acc"] > mlp_row["test_acc"] + 0.15, (cnn_row["test_acc"], mlp_row["test_acc"])
