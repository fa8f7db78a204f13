"""A sweep's figures, as PNG bytes (Agg backend: files, never windows), drawn from the cache's tables.

One home for every sweep figure: `dlbench sweep` writes them to a folder and `dlbench report` embeds or links
them. The drawing itself lives in :mod:`~dlbench.report.plot_study` (the final metric against the swept values,
the heatmap of a two-axis grid), :mod:`~dlbench.report.plot_curves` (curves over training time, the seeds' band,
gradient norms by layer kind) and :mod:`~dlbench.report.plot_classes` (the best trial's confusion matrix). At
most ``MAX_CURVES`` trials are drawn per figure (best, worst and evenly spaced others): a legend of 50 lines
informs nobody, and the table lists every trial.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dlbench.atomic import write_bytes
from dlbench.report.plot_base import MAX_CURVES, pick_curves, pyplot, to_png
from dlbench.report.plot_classes import class_names, confusion_fig
from dlbench.report.plot_curves import curves_fig, grad_norms_fig, seeds_band_fig, step_loss_fig
from dlbench.report.plot_study import result_figure
from dlbench.sweep.study import Study, Summary

__all__ = [
    "MAX_CURVES",
    "Drawing",
    "draw_sweep",
    "drawing",
    "kept_pngs",
    "pick_curves",
    "pyplot",
    "sweep_figures",
    "to_png",
]
FIGURES = ("metric", "heatmap", "seeds", "curves", "confusion", "grad_norms", "step_loss")  # in report order


@dataclass
class Drawing:
    """Which trials a sweep's figures draw and how their legend names them (shared by `sweep` and `report`).

    Attributes:
        labels: {run key: legend label} of the drawn trials, in the study's order; the best trial's label
            ends with ``(best)``, the worst's with ``(worst)`` (see :class:`~dlbench.sweep.study.Summary`).
        title: Figure title.
        note: Why fewer trials are drawn than the study holds ("" when all are).
        seeds: Under ``--repeats``, {run key: (value combination's colour index, seed)}: the seeds of one
            value share a colour and differ in dash.
    """

    labels: dict[str, str]
    title: str
    note: str = ""
    seeds: dict[str, tuple[int, int]] = field(default_factory=dict)


def drawing(study: Study, summary: Summary) -> Drawing:
    """The figures' trials: all of them if few, else the best, the worst and evenly spaced others."""
    labels = study.trial_labels(summary.trials)
    drawn = pick_curves(list(labels), summary.best_key, summary.worst_key)
    marks = {summary.best_key: " (best)", summary.worst_key: " (worst)"}
    shown = {k: labels[k] + marks.get(k, "") for k in drawn}
    title = f"{study.model} on {study.dataset}: sweep of {', '.join(study.axis_names)}"
    note = ""
    if len(drawn) < len(labels):
        title += f" ({len(drawn)} of {len(labels)} trials drawn)"
        note = (
            f"{len(drawn)} of {len(labels)} trials drawn: the best, the worst and the rest spread evenly "
            "over the sweep's order; the table lists every trial."
        )
    return Drawing(shown, title, note, _seeds(study, summary, drawn) if study.repeats > 1 else {})


def _seeds(study: Study, summary: Summary, drawn: list[str]) -> dict[str, tuple[int, int]]:
    rows = summary.trials.drop_duplicates("key").set_index("key").loc[drawn]
    combos: dict[str, int] = {}
    out = {}
    for key, r in zip(drawn, rows.to_dict("records"), strict=True):
        combo = study.label({a: r[a] for a in study.axis_names})
        out[key] = (combos.setdefault(combo, len(combos)), int(r["repeat"]))
    return out


def draw_sweep(
    store, study: Study, summary: Summary, runs: pd.DataFrame | None = None
) -> tuple[Drawing, dict[str, bytes]]:
    """The sweep's figures as PNG bytes (names in :data:`FIGURES`' order), from the cache's tables; ``runs``
    (the study's runs rows, read again when None) give the best trial's dataset for its class names."""
    plan = drawing(study, summary)
    figs = {}
    result = result_figure(study, summary)
    if result is not None:
        figs[result[0]] = result[1]
    keys = list(plan.labels)
    seeds = seed_groups(study, summary) if study.repeats > 1 else {}
    wanted = list(dict.fromkeys(keys + [k for ks in seeds.values() for k in ks]))
    epochs = store.table("epochs", wanted) if wanted else pd.DataFrame()
    if seeds and len(epochs):
        figs["seeds"] = seeds_band_fig(epochs, seeds, plan.title)
    if len(epochs):
        figs["curves"] = curves_fig(epochs[epochs["key"].isin(keys)], plan.labels, plan.title, plan.seeds)
    confusion = _confusion(store, study, summary, runs)
    if confusion is not None:
        figs["confusion"] = confusion
    for name, table, draw in (("grad_norms", "grads", grad_norms_fig), ("step_loss", "steps", step_loss_fig)):
        df = store.table(table, keys) if keys else pd.DataFrame()
        if len(df):
            figs[name] = draw(df, plan.labels, plan.title, plan.seeds)
    return plan, {name: to_png(figs[name]) for name in FIGURES if name in figs}


def seed_groups(study: Study, summary: Summary) -> dict[str, list[str]]:
    """{value combination's label: its finished trials' keys}: at most ``MAX_CURVES`` combinations (the best,
    the worst and evenly spaced others), for the mean-and-band figure of ``--repeats``."""
    ok = set(summary.trials.loc[summary.trials["status"] == "ok", "key"])
    labels = {}
    for i, row in enumerate(summary.rows):
        keys = [k for k in row["keys"] if k in ok]
        if keys:
            labels[str(i)] = (study.label({a: row[a] for a in study.axis_names}), keys)
    best, worst = str(summary.best), str(summary.worst)
    return {labels[i][0]: labels[i][1] for i in pick_curves(list(labels), best, worst)}


def _confusion(store, study: Study, summary: Summary, runs: pd.DataFrame | None):
    """The best trial's confusion matrix figure, or None without its cached predictions."""
    best = summary.best_key
    if best is None:
        return None
    preds = store.table("predictions", [best])
    if preds.empty or not {"label", "pred"} <= set(preds.columns):
        return None
    if runs is None or "config" not in runs.columns or best not in set(runs["key"]):
        runs = store.runs(keys=[best])
    config = runs.loc[runs["key"] == best, "config"]
    classes = class_names(config.iloc[0]) if len(config) else None
    label = study.trial_labels(summary.trials[summary.trials["key"] == best])[best]
    return confusion_fig(preds, classes, f"{study.model} on {study.dataset}: best trial {label}")


def kept_pngs(
    store, study: Study, summary: Summary, runs: pd.DataFrame
) -> tuple[Drawing, dict[str, bytes]] | None:
    """The figures `dlbench sweep` drew into ``<cache>/sweeps/<name>/`` if they come from exactly these runs."""
    from dlbench.paths import safe_name

    kept = _kept(store.root / "sweeps" / safe_name(study.name), _stamp(study, runs))
    if kept is None:
        return None
    try:
        return drawing(study, summary), {name: path.read_bytes() for name, path in kept.items()}
    except OSError:
        return None  # removed or unreadable since the stamp was read: draw them


FIGURES_VERSION = 3  # bump when the drawing changes: figures stamped with another version are drawn again
STAMP = ".dlbench-figures.json"  # in the figures folder: what the PNGs beside it were drawn from


def sweep_figures(store, study: Study, folder: Path, summary: Summary | None = None) -> dict[str, Path]:
    """Write a sweep's figures into ``folder`` as ``<name>.png``; returns {name: path}.

    A rerun whose runs are all cached draws nothing: the folder keeps a stamp of what its figures were drawn
    from (the study, and each run's key, time and file hashes), and figures with the same stamp are kept.
    """
    runs = store.runs(keys=study.keys)
    summary = summary if summary is not None else study.summary(runs)
    if summary.trials.empty:
        return {}
    stamp = _stamp(study, runs)
    kept = _kept(folder, stamp)
    if kept is not None:
        return kept
    _, pngs = draw_sweep(store, study, summary, runs)
    folder.mkdir(parents=True, exist_ok=True)
    written = {name: write_bytes(folder / f"{name}.png", png) for name, png in pngs.items()}
    write_bytes(folder / STAMP, json.dumps({"stamp": stamp, "figures": sorted(written)}).encode())
    return written


def _stamp(study: Study, runs: pd.DataFrame) -> str:
    columns = [c for c in ("key", "created", "files", "status") if c in runs.columns]
    rows = runs[columns].astype(str).sort_values("key").values.tolist() if len(runs) else []
    drawn_from = {k: v for k, v in study.to_dict().items() if k != "command"}  # the command draws nothing
    text = json.dumps([FIGURES_VERSION, drawn_from, rows], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _kept(folder: Path, stamp: str) -> dict[str, Path] | None:
    """The figures already in ``folder`` if they were drawn from ``stamp`` and are all there; else None."""
    try:
        recorded = json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(recorded, dict) or recorded.get("stamp") != stamp:
        return None
    names = sorted(
        recorded.get("figures", []), key=lambda n: FIGURES.index(n) if n in FIGURES else len(FIGURES)
    )
    paths = {name: folder / f"{name}.png" for name in names}  # in the report's order, whatever the stamp's
    return paths if paths and all(p.is_file() and not p.is_symlink() for p in paths.values()) else None
