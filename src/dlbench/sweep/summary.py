"""The sweep's summary table, derived from the cache alone (so `sweep` and `report` show the same thing)."""

from __future__ import annotations

import math

import pandas as pd

from dlbench.cache import Store
from dlbench.config import TrainConfig

METRICS = [
    "params",
    "trainable",
    "seconds_per_epoch",
    "inference_seconds",
    "images_per_sec",
    "peak_memory_mb",
    "initial_val_acc",
    "best_val_acc",
    "test_acc",
]


def trial_frame(store: Store, definition: dict) -> pd.DataFrame:
    """One row per trial present in the cache, in the sweep's order, with the swept values as columns."""
    axes = [a["name"] for a in definition["axes"]]
    rows = []
    for order, trial in enumerate(definition["trials"]):
        if not store.has(trial["key"]):
            continue
        run = store.get(trial["key"])
        config = TrainConfig.from_json(run["config"])
        row = {"order": order, "key": trial["key"], "repeat": trial["repeat"]}
        row.update({a["name"]: typed_value(config, a["name"], a["kind"]) for a in definition["axes"]})
        row.update({m: run.get(m) for m in METRICS})
        row.update(status=run["status"], message=run.get("message", ""))
        rows.append(row)
    return pd.DataFrame(rows, columns=["order", "key", "repeat", *axes, *METRICS, "status", "message"])


def summary_rows(store: Store, definition: dict) -> tuple[list[dict], list[str], int | None]:
    """(rows, columns, index of the best row). With repeats: mean and std over seeds per value combination.

    The best row is chosen by validation accuracy (choosing by test accuracy would leak the test set).
    """
    axes = [a["name"] for a in definition["axes"]]
    df = trial_frame(store, definition)
    if df.empty:
        return [], axes + METRICS + ["status"], None
    repeats = definition.get("repeats", 1)
    rows = []
    for _, group in df.groupby(axes, sort=False):
        first = group.iloc[0]
        row = {a: first[a] for a in axes}
        ok = group[group["status"] == "ok"]
        for m in METRICS:
            vals = ok[m].dropna() if len(ok) else group[m].dropna()
            row[m] = float(vals.mean()) if len(vals) else math.nan
            if m in ("params", "trainable") and len(vals):
                row[m] = int(vals.iloc[0])
        if repeats > 1:
            row["test_acc_std"] = float(ok["test_acc"].std()) if len(ok) > 1 else math.nan
            row["seeds"] = len(group)
        statuses = group["status"].value_counts()
        row["status"] = (
            statuses.index[0] if len(statuses) == 1 else ", ".join(f"{n} {s}" for s, n in statuses.items())
        )
        rows.append(row)
    columns = axes + METRICS + (["test_acc_std", "seeds"] if repeats > 1 else []) + ["status"]
    scored = [(r["best_val_acc"], i) for i, r in enumerate(rows) if r["best_val_acc"] == r["best_val_acc"]]
    best = max(scored)[1] if scored else None
    return rows, columns, best


def typed_value(config: TrainConfig, name: str, kind: str):
    """The value an axis took in a resolved config (typed, unlike the command line's strings)."""
    if kind == "option":
        return getattr(config.options, name)
    if kind == "setting":
        return config.model_settings.get(name)
    return config.dataset_options.get(name)
