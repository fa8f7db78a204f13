"""The one trial entry point: picklable, usable in another process, a cache hit the second time; a checkpoint
that does not fit the model is set aside and the run starts over."""

from __future__ import annotations

import multiprocessing
import pickle

import torch

from dlbench.cache import Store
from dlbench.resolve import resolve_config
from dlbench.sweep.trial import run_trial

DATA = {"train_size": "300", "test_size": "60"}
TINY = ["--dataset", "shapes", "--dataset-opt", "train_size=300", "--dataset-opt", "test_size=60"]


def _config(width: str = "8", epochs: str = "2"):
    return resolve_config(
        "mlp", "shapes", {"width": width}, dict(DATA), {"epochs": epochs, "batch_size": "32"}
    )


def test_run_trial_in_a_fresh_process_then_a_cache_hit(tmp_path):
    config = _config()
    cache, data = tmp_path / "cache", tmp_path / "data"
    assert pickle.loads(pickle.dumps(config)) == config
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # a new interpreter: nothing shared in memory
        first = pool.apply(run_trial, (config, str(cache), str(data)))
    assert first["key"] == config.key and first["status"] == "ok" and first["cached"] is False
    assert Store(cache).has(config.key)
    again = run_trial(config, cache, data)
    assert again["cached"] is True and again["test_acc"] == first["test_acc"]
    forced = run_trial(config, cache, data, force=True)
    assert forced["cached"] is False and forced["test_acc"] == first["test_acc"]  # same seed, same result


def test_a_checkpoint_that_does_not_fit_the_model_is_quarantined(cli, tmp_path):
    from dlbench.engine import train

    config = _config(width="16")
    cache = tmp_path / "cache"
    # A real epoch-0 resume state of a narrower MLP, planted under this run's key.
    other = tmp_path / "other.pt"
    train(_config(width="8", epochs="1"), data_dir=tmp_path / "data", checkpoint_path=other)
    state = torch.load(other, weights_only=True)
    state["key"] = config.key
    ckpt = Store(cache).checkpoint_path(config.key)
    ckpt.parent.mkdir(parents=True)
    torch.save(state, ckpt)

    res = cli("sweep", "width", "16", "--model", "mlp", *TINY, "--epochs", "2", "--batch-size", "32",
              "--cache-dir", cache, "--format", "json", "--no-figures")  # fmt: skip
    assert res.code == 0, res
    warnings = [line for line in res.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(ckpt) in warnings[0] and "starts over" in warnings[0]
    assert "Traceback" not in res.err
    assert not ckpt.exists() and len(list((cache / "quarantine").iterdir())) == 1
    assert Store(cache).table("epochs", [config.key])["epoch"].tolist() == [0, 1]
