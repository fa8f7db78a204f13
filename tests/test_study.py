"""The typed Study: saved and loaded by the cache, one rule for the best and the worst trial, and `sweep`'s
figures and `report` naming the same best and worst trial (also with --repeats).

Results are recorded through ``Store.save`` with made-up metrics (no training), so the scores are known.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

from dlbench.cache import Store
from dlbench.engine.result import RunResult
from dlbench.sweep.grid import plan_sweep
from dlbench.sweep.study import Axis, Study, StudyTrial

DATA = {"train_size": "200", "test_size": "40"}
ARGS = ["--model", "mlp", "--set", "width=8", "--dataset", "shapes", "--epochs", "1"]
ARGS += ["--dataset-opt", "train_size=200", "--dataset-opt", "test_size=40"]
# lr=0.01 has the single best seed (0.9) but the worse mean (0.5); lr=0.02 the better mean (0.6).
VAL_ACC = {("0.01", 0): 0.9, ("0.01", 1): 0.1, ("0.02", 0): 0.62, ("0.02", 1): 0.58}


def _plan(repeats: int = 2):
    return plan_sweep(
        "mlp",
        "shapes",
        [("lr", ["0.01", "0.02"])],
        settings={"width": "8"},
        dataset_options=dict(DATA),
        options={"epochs": "1"},
        repeats=repeats,
    )


def _fake_result(val_acc: float, right: bool) -> RunResult:
    """A finished run with known accuracies; it classifies all ten test images right (or all wrong)."""
    summary = {"params": 1000, "trainable": 1000, "best_val_acc": val_acc, "test_acc": val_acc - 0.05}
    summary.update(seconds_per_epoch=1.0, inference_seconds=0.1, images_per_sec=100.0, peak_memory_mb=0.0)
    summary["initial_val_acc"] = 0.25
    epochs = [{"epoch": 0, "train_loss": 1.0, "val_loss": 1.1, "train_acc": val_acc, "val_acc": val_acc}]
    labels = [i % 4 for i in range(10)]
    preds = {
        "index": list(range(10)),
        "label": labels,
        "pred": [y if right else (y + 1) % 4 for y in labels],
        "confidence": [0.5 + i / 100 for i in range(10)],
    }
    steps = [{"step": s, "epoch": 0, "loss": 1.0 / (s + 1)} for s in range(5)]
    grads = [{"epoch": 0, "layer": "global", "depth": 0, "mean_norm": 1.0, "max_norm": 2.0}]
    return RunResult("ok", "", summary, epochs, steps, grads, preds)


def _record(store: Store, plan) -> dict[tuple, str]:
    """Save made-up results for every trial; returns {(lr, repeat): key}."""
    keys = {}
    for trial in plan.trials:
        val = VAL_ACC[(trial.values["lr"], trial.repeat)]
        store.save(trial.config, _fake_result(val, right=val > 0.5))
        keys[(trial.values["lr"], trial.repeat)] = trial.config.key
    return keys


def test_study_round_trips_through_the_store(tmp_path):
    study = _plan().study("dlbench sweep lr 0.01,0.02 --repeats 2")
    store = Store(tmp_path / "cache")
    store.save_sweep(study.to_dict())
    assert Study.from_dict(store.get_sweep(study.name)) == study
    assert [Study.from_dict(d) for d in store.sweeps()] == [study]
    assert study.axes == [Axis("lr", "option", ["0.01", "0.02"])] and study.repeats == 2
    assert [t.repeat for t in study.trials] == [0, 1, 0, 1] and len(set(study.keys)) == 4
    # a definition written before `command` existed still loads
    old = {k: v for k, v in study.to_dict().items() if k != "command"}
    assert Study.from_dict(old).command == ""


def test_best_and_worst_are_decided_per_value_combination(tmp_path):
    plan = _plan()
    store = Store(tmp_path / "cache")
    keys = _record(store, plan)
    study = plan.study()
    summary = study.summary(store.runs())
    assert [r["lr"] for r in summary.rows] == [0.01, 0.02]
    assert summary.rows[0]["best_val_acc"] == pytest.approx(0.5) and summary.rows[1]["seeds"] == 2
    assert summary.best == 1 and summary.worst == 0
    assert summary.best_key == keys[("0.02", 0)] and summary.worst_key == keys[("0.01", 1)]
    # without repeats the rule is simply the best and the worst trial
    single = Study("s", "mlp", "shapes", study.axes, [StudyTrial(keys[("0.01", 0)], {"lr": "0.01"})])
    one = single.summary(store.runs())
    assert one.best == 0 and one.best_key == keys[("0.01", 0)] and one.worst_key is None
    # trials missing from the runs rows are left out; a study with none has no best
    assert Study("e", "mlp", "shapes", study.axes).summary(store.runs()).best is None
    assert len(study.summary(store.runs().iloc[:2]).trials) == 2


def test_diverged_trials_are_never_best(tmp_path):
    plan = _plan(repeats=1)
    store = Store(tmp_path / "cache")
    low, high = (t.config for t in plan.trials)
    store.save(low, _fake_result(0.4, right=False))
    diverged = _fake_result(0.95, right=True)
    diverged.status, diverged.message = "diverged", "loss became nan at epoch 1"
    store.save(high, diverged)
    summary = plan.study().summary(store.runs())
    assert summary.best == 0 and summary.best_key == low.key and summary.worst_key is None
    assert math.isclose(summary.rows[1]["best_val_acc"], 0.95) and summary.rows[1]["status"] == "diverged"


def test_sweep_figures_and_report_name_the_same_best_and_worst(cli, tmp_path, monkeypatch):
    import dlbench.report.plots as plots

    cache = Path(os.environ["DLBENCH_HOME"])
    keys = _record(Store(cache), _plan())
    drawn: list[dict] = []  # the legend labels of every curves figure drawn

    def recording(epochs, labels, title, seeds=None, _draw=plots.curves_fig):
        drawn.append(dict(labels))
        return _draw(epochs, labels, title, seeds)

    def no_training(*a, **k):
        raise AssertionError("every trial is recorded: nothing may train")

    monkeypatch.setattr(plots, "curves_fig", recording)
    monkeypatch.setattr("dlbench.engine.train", no_training)
    res = cli(
        "sweep",
        "lr",
        "0.01,0.02",
        *ARGS,
        "--repeats",
        "2",
        "--format",
        "json",
        "--figures-dir",
        tmp_path / "f",
    )
    assert res.code == 0, res
    assert [r["best"] for r in json.loads(res.out)] == [False, True]
    out = tmp_path / "report.md"
    res = cli("report", "--out", out)
    assert res.code == 0, res
    best, worst = keys[("0.02", 0)], keys[("0.01", 1)]
    assert len(drawn) == 2
    for labels in drawn:  # the sweep's figure, then the report's
        assert [k for k, v in labels.items() if v.endswith("(best)")] == [best]
        assert [k for k, v in labels.items() if v.endswith("(worst)")] == [worst]
    text = out.read_text()
    assert "Best by validation accuracy: **lr=0.02**" in text
    assert "Worst by validation accuracy: **lr=0.01**" in text
    assert "the best trial (**lr=0.02 (seed 0)**)" in text and "the worst (**lr=0.01 (seed 1)**)" in text


def test_results_read_absent_columns_as_missing():
    plan = _plan(repeats=1)
    config = plan.trials[0].config
    runs = pd.DataFrame(
        [{"key": config.key, "status": "ok", "config": config.canonical_json(), "best_val_acc": 0.5}]
    )
    trials = plan.study().results(runs)
    assert len(trials) == 1 and math.isnan(trials["params"].iloc[0]) and trials["message"].iloc[0] == ""
