"""A checkpoint that loads safely but does not fit its run raises ResumeMismatch before any training step."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch

from dlbench.engine import CheckpointError, ResumeMismatch, TrainState, train
from dlbench.engine.checkpoint import save_atomic
from dlbench.resolve import resolve_config


def _config(epochs: int):
    return resolve_config(
        "mlp",
        "shapes",
        {"width": "8"},
        {"train_size": "200", "test_size": "50", "image_size": "8"},
        {"epochs": str(epochs), "batch_size": "32", "optimizer": "sgd", "momentum": "0.9"},
    )


@pytest.fixture(scope="module")
def epoch0(tmp_path_factory):
    """A real epoch-0 checkpoint of the 3-epoch run (trained as a 1-epoch run, then given the 3-epoch key)."""
    tmp = tmp_path_factory.mktemp("resume")
    path = tmp / "one.pt"
    train(_config(1), data_dir=tmp / "data", checkpoint_path=path)
    state = torch.load(path, weights_only=True)
    state["key"] = _config(3).key
    return state, tmp / "data"


def _wrong_shape(s):
    s["model"]["fc1.weight"] = torch.zeros(3, 3)


def _extra_key(s):
    s["model"]["fc9.weight"] = torch.zeros(1)


def _missing_key(s):
    del s["model"]["head.bias"]


def _no_optimizer(s):
    s["optimizer"] = {}


def _other_optimizer_params(s):
    s["optimizer"]["param_groups"][0]["params"] = [0]


def _optimizer_state_shape(s):
    s["optimizer"]["state"][0] = {"momentum_buffer": torch.zeros(2, 2)}


def _epoch_past_epochs(s):
    s["epochs"] = [dict(s["epochs"][0], epoch=e) for e in range(4)]
    s["epoch"] = 3


def _broken_history(s):
    s["epochs"] = []


def _no_history_field(s):
    del s["grads"]


MISFITS = [
    (_wrong_shape, "fc1.weight"),
    (_extra_key, "unexpected"),
    (_missing_key, "missing"),
    (_no_optimizer, "no optimizer state"),
    (_other_optimizer_params, "other parameters"),
    (_optimizer_state_shape, "momentum_buffer"),
    (_epoch_past_epochs, "past --epochs 3"),
    (_broken_history, "expected 0..0"),
    (_no_history_field, "missing grads"),
]


@pytest.mark.parametrize("damage,reason", MISFITS, ids=[f.__name__.strip("_") for f, _ in MISFITS])
def test_a_checkpoint_that_does_not_fit_raises_before_training(epoch0, tmp_path, damage, reason):
    state, data_dir = epoch0
    state = {**state, "model": dict(state["model"]), "epochs": list(state["epochs"])}
    state["optimizer"] = {
        "state": {k: dict(v) for k, v in state["optimizer"]["state"].items()},
        "param_groups": [dict(g) for g in state["optimizer"]["param_groups"]],
    }
    damage(state)
    path = tmp_path / "ckpt.pt"
    save_atomic(state, path)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    events = []
    with pytest.raises(ResumeMismatch) as info:
        train(_config(3), data_dir=data_dir, checkpoint_path=path, callback=lambda e, **d: events.append(e))
    assert isinstance(info.value, CheckpointError) and info.value.path == path
    message = str(info.value)
    assert reason in message and str(path) in message and "\n" not in message
    assert events == []  # not even the start event: nothing was trained
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # the caller decides what to do with it


def test_a_fitting_checkpoint_resumes_and_the_schema_round_trips(epoch0, tmp_path):
    state, data_dir = epoch0
    restored = TrainState.from_checkpoint(state, tmp_path / "x.pt")
    assert restored.to_checkpoint().keys() == state.keys() and restored.epoch == 0
    path = tmp_path / "ckpt.pt"
    save_atomic(state, path)
    events = []
    result = train(
        _config(3), data_dir=data_dir, checkpoint_path=path, callback=lambda e, **d: events.append(e)
    )
    assert events[0] == "start" and [e["epoch"] for e in result.epochs] == [0, 1, 2]
    assert result.status == "ok" and result.summary["macs"] > 0


def test_checkpoint_written_by_the_atomic_writer_keeps_the_fault_hook(tmp_path, monkeypatch):
    """save_atomic goes through dlbench.atomic.write_atomic with the checkpoint-write fault kind."""
    import dlbench.engine.checkpoint as ckpt

    seen = []
    monkeypatch.setattr(ckpt, "write_atomic", lambda path, write, fault=None: seen.append((path, fault)))
    ckpt.save_atomic({"a": 1}, tmp_path / "c.pt")
    ckpt.save_atomic({"a": 1}, tmp_path / "w.pt", fault="cache-write")
    assert seen == [(tmp_path / "c.pt", "checkpoint-write"), (tmp_path / "w.pt", "cache-write")]


def test_resuming_after_the_epoch_that_stopped_early_stops_again(epoch0, tmp_path):
    """A kill between the early-stop checkpoint and the store must not train past the stop on resume."""
    state, data_dir = epoch0
    config = _config(3)
    config = config.replace(options=dataclasses.replace(config.options, patience=1))
    best = {"val_acc": 2.0, "epoch": -1, "state": None}  # epoch 0 was no better: patience used up
    path = tmp_path / "ckpt.pt"
    save_atomic({**state, "key": config.key, "bad_epochs": 1, "best": best}, path)
    result = train(config, data_dir=data_dir, checkpoint_path=path)
    assert [e["epoch"] for e in result.epochs] == [0] and "early stop after epoch 1" in result.message


def test_an_incomplete_early_stopping_record_is_a_mismatch(epoch0, tmp_path):
    state, data_dir = epoch0
    path = tmp_path / "ckpt.pt"
    save_atomic({**state, "best": {"val_acc": 0.5}}, path)
    with pytest.raises(ResumeMismatch, match="early-stopping record"):
        train(_config(3), data_dir=data_dir, checkpoint_path=path)
