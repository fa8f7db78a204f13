"""One typed study: what a sweep varied and held fixed, its trials, and what its recorded results say.

A :class:`Study` is what the cache keeps about a sweep (``Store.save_sweep(study.to_dict())``), so `sweep`,
its figures and `report` all read the same definition. Results come from the ``runs`` rows the cache holds;
the summary table, and the best and the worst trial, are decided here and nowhere else:

* the best value combination has the highest validation accuracy (mean over its finished seeds under
  ``--repeats``), the worst the lowest; choosing by test accuracy would leak the test set;
* the best trial is the best combination's seed with the highest validation accuracy, the worst trial the
  worst combination's seed with the lowest (without repeats: simply the best and the worst trial).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from dlbench.config import TrainConfig
from dlbench.settings import format_value

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
AXIS_KINDS = ("option", "setting", "dataset")


@dataclass(frozen=True)
class Axis:
    """One swept name: a training option, a model setting or a dataset option, with its raw values."""

    name: str  # canonical (underscores)
    kind: str  # "option" | "setting" | "dataset"
    values: list[str]


@dataclass(frozen=True)
class StudyTrial:
    """One trial of a study: the run key, the raw value of each axis, and the repeat (seed offset)."""

    key: str
    values: dict[str, str]
    repeat: int = 0


@dataclass
class Summary:
    """A study's results: one row per trial, one summary row per value combination, best and worst.

    Attributes:
        trials: One row per trial found in the runs rows, in the study's order: ``order``, ``key``,
            ``repeat``, the axes (typed values), :data:`METRICS`, ``status``, ``message``.
        rows: One row per value combination (mean over seeds under ``--repeats``, with ``test_acc_std`` and
            ``seeds``), in the study's order.
        columns: The columns of ``rows`` to show.
        best: Index in ``rows`` of the best combination (None: no finished trial).
        worst: Index in ``rows`` of the worst combination.
        best_key: Run key of the best trial.
        worst_key: Run key of the worst trial (None when it would be the best trial itself).
    """

    trials: pd.DataFrame
    rows: list[dict]
    columns: list[str]
    best: int | None = None
    worst: int | None = None
    best_key: str | None = None
    worst_key: str | None = None


@dataclass
class Study:
    """A sweep's definition, saved by the cache as ``sweeps/<name>.json`` (see :meth:`to_dict`)."""

    name: str
    model: str
    dataset: str
    axes: list[Axis]
    trials: list[StudyTrial] = field(default_factory=list)
    fixed: dict = field(default_factory=dict)  # {"settings", "dataset_options", "options"} given on the line
    repeats: int = 1
    command: str = ""  # the command line that reproduces the sweep
    held: str | None = None  # hash of the resolved fixed part and repeats (None: saved before it existed)

    @property
    def axis_names(self) -> list[str]:
        return [a.name for a in self.axes]

    @property
    def keys(self) -> list[str]:
        """Run keys of the trials, in order, each once."""
        return list(dict.fromkeys(t.key for t in self.trials))

    def fixed_values(self, kind: str) -> dict:
        """Values given on the command line and held fixed: kind "settings", "dataset_options" or "options"."""
        return dict(self.fixed.get(kind, {}))

    # -- the cache's JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON-able dict (the cache stores it; it never imports this module)."""
        return {
            "name": self.name,
            "model": self.model,
            "dataset": self.dataset,
            "axes": [{"name": a.name, "kind": a.kind, "values": list(a.values)} for a in self.axes],
            "repeats": self.repeats,
            "fixed": self.fixed,
            "trials": [{"key": t.key, "values": dict(t.values), "repeat": t.repeat} for t in self.trials],
            "command": self.command,
            **({"held": self.held} if self.held is not None else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Study:
        """Inverse of :meth:`to_dict`; definitions written before ``command`` existed load with ""."""
        return cls(
            name=d["name"],
            model=d["model"],
            dataset=d["dataset"],
            axes=[Axis(a["name"], a["kind"], list(a["values"])) for a in d["axes"]],
            trials=[StudyTrial(t["key"], dict(t["values"]), int(t.get("repeat", 0))) for t in d["trials"]],
            fixed=dict(d.get("fixed") or {}),
            repeats=int(d.get("repeats", 1)),
            command=d.get("command") or "",
            held=d.get("held"),
        )

    def conflict(self, other: Study) -> str | None:
        """Why ``other`` (a study saved under the same name) is another study, or None when it is this one
        (perhaps over other values: the same question asked at other points)."""
        why = []
        for what in ("model", "dataset", "repeats"):
            if getattr(self, what) != getattr(other, what):
                why.append(f"{what} {getattr(other, what)}, not {getattr(self, what)}")
        if [(a.name, a.kind) for a in self.axes] != [(a.name, a.kind) for a in other.axes]:
            why.append(f"it sweeps {', '.join(other.axis_names)}, not {', '.join(self.axis_names)}")
        if self.held is not None and other.held is not None:
            same_fixed = self.held == other.held
        else:  # saved before `held`: compare what was given on the command line
            same_fixed = _jsonish(self.fixed) == _jsonish(other.fixed)
        if not same_fixed:
            why.append(f"it holds fixed {_fixed_text(other.fixed)}, not {_fixed_text(self.fixed)}")
        return "; ".join(why) or None

    # -- labels -------------------------------------------------------------------------------------------
    def label(self, values: dict, repeat: int | None = None) -> str:
        """``lr=0.01, width=16`` (plus `` (seed 1)`` for a repeat when the study has repeats)."""
        text = label(values)
        return text + (f" (seed {repeat})" if self.repeats > 1 and repeat is not None else "")

    def trial_labels(self, trials: pd.DataFrame) -> dict[str, str]:
        """{run key: label} for the rows of :meth:`results` (typed values, as the tables show them)."""
        axes = self.axis_names
        return {r["key"]: self.label({a: r[a] for a in axes}, r["repeat"]) for r in trials.to_dict("records")}

    # -- results ------------------------------------------------------------------------------------------
    def results(self, runs: pd.DataFrame) -> pd.DataFrame:
        """One row per trial whose run is among ``runs`` (``Store.runs()`` rows), in the study's order."""
        found = {}
        if len(runs):
            found = {r["key"]: r for r in runs[runs["key"].isin(self.keys)].to_dict("records")}
        rows = []
        for order, trial in enumerate(self.trials):
            run = found.get(trial.key)
            if run is None:
                continue
            config = TrainConfig.from_json(run["config"])
            row = {"order": order, "key": trial.key, "repeat": trial.repeat}
            row.update({a.name: typed_value(config, a.name, a.kind) for a in self.axes})
            row.update({m: _number(run.get(m)) for m in METRICS})
            message = run.get("message")
            row.update(status=run["status"], message=message if isinstance(message, str) else "")
            rows.append(row)
        return pd.DataFrame(
            rows, columns=["order", "key", "repeat", *self.axis_names, *METRICS, "status", "message"]
        )

    def summary(self, runs: pd.DataFrame) -> Summary:
        """The summary table (what `sweep` prints and `report` shows) with the best and the worst trial."""
        axes = self.axis_names
        trials = self.results(runs)
        repeated = self.repeats > 1
        columns = axes + METRICS + (["test_acc_std", "seeds"] if repeated else []) + ["status"]
        if trials.empty:
            return Summary(trials, [], columns)
        # Groups as row positions over numpy columns, not DataFrames: a study of 750 value combinations is
        # summarised in about 0.1 s instead of 2 s (pandas costs ~50 us per cell access).
        codes = trials.groupby(axes, sort=False, dropna=False).ngroup().to_numpy()  # in order of appearance
        groups = [np.flatnonzero(codes == i) for i in range(codes.max() + 1)]
        cols = _Columns(trials)
        rows = [_combination_row(trials, idx, cols, axes, repeated) for idx in groups]
        return Summary(trials, rows, columns, *_best_and_worst(groups, cols))


class _Columns:
    """The trials' metric, status, order and key columns as numpy arrays (NaN for missing metrics)."""

    def __init__(self, trials: pd.DataFrame):
        self.metrics = {m: trials[m].to_numpy(dtype=float, na_value=np.nan) for m in METRICS}
        self.status = trials["status"].to_numpy()
        self.order = trials["order"].to_numpy()
        self.key = trials["key"].to_numpy()


def _combination_row(trials: pd.DataFrame, idx: np.ndarray, cols: _Columns, axes: list[str], repeated: bool):
    """Mean over the finished seeds (all seeds when none finished) of one value combination (rows ``idx``)."""
    first = trials.iloc[idx[0]]
    row = {a: first[a] for a in axes}
    status = cols.status[idx]
    ok = status == "ok"
    use = idx[ok] if ok.any() else idx
    for m in METRICS:
        vals = cols.metrics[m][use]
        vals = vals[~np.isnan(vals)]
        row[m] = float(vals.mean()) if len(vals) else math.nan
        if m in ("params", "trainable") and len(vals):
            row[m] = int(vals[0])
    if repeated:
        row["test_acc_std"] = (
            float(pd.Series(cols.metrics["test_acc"][idx[ok]]).std()) if ok.sum() > 1 else math.nan
        )
        row["seeds"] = len(idx)
    if (status == status[0]).all():
        row["status"] = status[0]
    else:
        row["status"] = ", ".join(f"{n} {s}" for s, n in pd.Series(status).value_counts().items())
    row["keys"] = list(cols.key[idx])  # the run keys behind the row, to join the cached tables
    return row


def _best_and_worst(
    groups: list[np.ndarray], cols: _Columns
) -> tuple[int | None, int | None, str | None, str | None]:
    """(best row, worst row, best key, worst key): the one rule for best and worst, see the module doc."""
    acc = cols.metrics["best_val_acc"]
    scored = []
    for i, idx in enumerate(groups):
        ok = idx[(cols.status[idx] == "ok") & ~np.isnan(acc[idx])]
        if len(ok):
            scored.append((float(acc[ok].mean()), i, ok))
    if not scored:
        return None, None, None, None
    best = max(scored, key=lambda s: (s[0], -s[1]))  # ties: the earlier combination
    worst = min(scored, key=lambda s: (s[0], -s[1]))  # ties: the later combination
    best_key = cols.key[min(best[2], key=lambda j: (-acc[j], cols.order[j]))]
    worst_key = cols.key[min(worst[2], key=lambda j: (acc[j], -cols.order[j]))]
    return best[1], worst[1], best_key, (worst_key if worst_key != best_key else None)


def _jsonish(value) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


def _fixed_text(fixed: dict) -> str:
    """``width=8, epochs=1`` (or ``the defaults``) for the fixed values of a study."""
    kinds = ("settings", "dataset_options", "options")
    items = [f"{k}={format_value(v)}" for kind in kinds for k, v in sorted((fixed.get(kind) or {}).items())]
    return ", ".join(items) or "the defaults"


def _number(value):
    """A runs cell as a number or NaN (absent columns and None read as NaN)."""
    return math.nan if value is None else value


def typed_value(config: TrainConfig, name: str, kind: str):
    """The value an axis took in a resolved config (typed, unlike the command line's strings)."""
    if kind == "option":
        return getattr(config.options, name)
    if kind == "setting":
        return config.model_settings.get(name)
    return config.dataset_options.get(name)


def label(values: dict) -> str:
    """``name=value, ...`` for a trial's axis values."""
    return ", ".join(f"{k}={format_value(v)}" for k, v in values.items())
