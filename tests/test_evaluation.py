"""Evaluation sized to the question: validation follows --train-subset, the untrained pass is bounded, and
inference is timed on the test pass that is done anyway."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from dlbench.cache import Store
from dlbench.config import TrainConfig
from dlbench.data import get_dataset
from dlbench.engine import loop
from dlbench.engine.device_data import INITIAL_VAL, DeviceData, val_size
from dlbench.resolve import resolve_config
from dlbench.sweep.trial import run_trial_here as run_one

DATA = {"train_size": 3000, "test_size": 200}


def _splits(**kw) -> DeviceData:
    data = get_dataset("shapes").load(Path(os.environ["DLBENCH_DATA_DIR"]), DATA)
    opts = dict(val_split=0.1, train_subset=0, normalize=True, augment=False, channels_last=False) | kw
    return DeviceData(data, torch.device("cpu"), **opts)


def test_validation_follows_the_training_subset():
    whole, subset = _splits(), _splits(train_subset=450)
    assert (len(whole.train), len(whole.val)) == (2700, 300)
    assert (len(subset.train), len(subset.val)) == (450, 50)  # 10% of what is used, as of the whole
    assert set(subset.val.index.tolist()) <= set(whole.val.index.tolist())  # drawn from the same split
    assert torch.equal(subset.train.index, whole.train.index[:450])  # the same training images as before
    assert set(subset.val.index.tolist()).isdisjoint(subset.train.index.tolist())
    assert val_size(300, 2, 0.1) == 1 and val_size(0, 450, 0.1) == 0 and val_size(300, 10**6, 0.1) == 300


def test_the_untrained_pass_is_a_bounded_random_part_of_validation():
    dd = _splits(val_split=0.5)
    assert len(dd.val) == 1500 and len(dd.initial_val) == INITIAL_VAL
    assert set(dd.initial_val.index.tolist()) <= set(dd.val.index.tolist())
    assert max(dd.initial_val.index.tolist()) > 2000  # random over the split, not its first images


def test_evaluation_passes_are_the_ones_the_results_need(tmp_path, monkeypatch, one_torch_thread):
    seen: list[int] = []
    original = loop.evaluate

    def counting(model, data, split, autocast, predictions=False):
        seen.append(len(split))
        return original(model, data, split, autocast, predictions)

    monkeypatch.setattr(loop, "evaluate", counting)
    opts = {"epochs": 2, "train_subset": 900, "batch_size": 128}
    config = resolve_config("mlp", "shapes", {"width": 16}, DATA, opts)
    row, _ = run_one(config, Store(tmp_path / "cache"), data_dir=Path(os.environ["DLBENCH_DATA_DIR"]))
    assert row["status"] == "ok" and row["inference_seconds"] > 0
    assert seen == [100, 100, 100, 200]  # untrained, two epochs (val sized to 900 images), test: no 5th pass
    assert json.loads(config.canonical_json())["val"] == "follows-subset"  # not 0.1.0's full-split result
    assert TrainConfig.from_json(config.canonical_json()).key == config.key
    whole = resolve_config("mlp", "shapes", {"width": 16}, DATA, {**opts, "train_subset": 0})
    assert "val" not in json.loads(whole.canonical_json())  # runs without a subset keep their keys
