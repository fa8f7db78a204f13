"""Matplotlib figures of sweeps, as PNG bytes (Agg backend: files, never windows). Inputs are cache tables.

One home for every sweep figure: `dlbench sweep` writes them to a folder and `dlbench report` embeds or links
them. At most ``MAX_CURVES`` trials are drawn per figure (best, worst and evenly spaced others): a legend
of 50 lines informs nobody, and the table lists every trial.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dlbench.atomic import write_bytes
from dlbench.sweep.study import Study, Summary

MAX_CURVES = 12  # lines per figure; the rest of a sweep is in its table
DPI = 100


def pick_curves(keys: list[str], best: str | None, worst: str | None) -> list[str]:
    """All keys if few; else best, worst and evenly spaced others, in the sweep's order."""
    if len(keys) <= MAX_CURVES:
        return keys
    must = [k for k in (best, worst) if k]
    rest = [k for k in keys if k not in must]
    n = MAX_CURVES - len(must)
    picked = {rest[round(i * (len(rest) - 1) / max(1, n - 1))] for i in range(n)} | set(must)
    return [k for k in keys if k in picked]


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_png(fig) -> bytes:
    plt = pyplot()
    buf = io.BytesIO()
    # fixed margins rather than bbox_inches="tight": measuring every text twice is most of the drawing time
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _style(i: int, key_label: str) -> dict:
    import matplotlib

    colours = matplotlib.colormaps["tab10"].colors
    best = key_label.endswith(("(best)", "(worst)"))
    return {"color": colours[i % 10], "linestyle": "-" if i < 10 else "--", "linewidth": 2.2 if best else 1.2}


def _marker(g: pd.DataFrame) -> dict:
    return {"marker": "o", "markersize": 2.5} if len(g) <= 30 else {}


def _log_if_positive(ax, values) -> None:
    """Log scale where the values are positive and span enough to need it (a narrow range reads better
    linear, and its log tick labels are cluttered)."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    if len(v) and (v > 0).all() and v.max() / v.min() >= 10:
        ax.set_yscale("log")


def _integer_x(*axes) -> None:
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def curves_png(epochs: pd.DataFrame, labels: dict[str, str], title: str) -> bytes:
    plt = pyplot()
    groups = {k: g.sort_values("epoch") for k, g in epochs.groupby("key", sort=False)}
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
    panels = [
        ("train_loss", "training loss"),
        ("val_loss", "validation loss"),
        ("train_acc", "training accuracy"),
        ("val_acc", "validation accuracy"),
    ]
    for ax, (col, name) in zip(axes.flat, panels, strict=True):
        for i, (key, lab) in enumerate(labels.items()):
            g = groups.get(key)
            if g is not None and col in g:
                ax.plot(g["epoch"] + 1, g[col], label=lab, **_marker(g), **_style(i, lab))
        ax.set_title(name, y=1.0)  # a fixed y skips matplotlib's costly automatic title placement
        ax.grid(alpha=0.3)
        if "loss" in col and col in epochs:
            _log_if_positive(ax, epochs[col])
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    _integer_x(*axes.flat)
    handles, labs = axes[0, 0].get_legend_handles_labels()
    # as many columns as fit 1,100 px at ~6.5 px per character of the small legend font (plus the handle)
    widest = max((len(lab) for lab in labs), default=1)
    ncol = max(1, min(4, len(labs), int(1050 // (6.5 * widest + 45))))
    fig.suptitle(title)
    fig.subplots_adjust(
        left=0.07,
        right=0.98,
        top=0.92,
        hspace=0.22,
        wspace=0.16,
        bottom=0.09 + 0.028 * math.ceil(len(labs) / ncol),
    )
    fig.legend(handles, labs, loc="lower center", ncol=ncol, frameon=False, fontsize="small")
    return to_png(fig)


def grad_norms_png(grads: pd.DataFrame, labels: dict[str, str], title: str) -> bytes:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    layers = grads[grads["layer"] != "global"]
    per_layer = layers.groupby(["key", "depth"], sort=True)["mean_norm"].mean()
    glob = grads[grads["layer"] == "global"].sort_values(["key", "epoch"])
    glob_groups = dict(tuple(glob.groupby("key", sort=False)))
    for i, (key, lab) in enumerate(labels.items()):
        style = _style(i, lab)
        if key in per_layer.index.get_level_values(0):
            s = per_layer.loc[key]
            left.plot(s.index, s.values, marker=".", label=lab, **style)
        g = glob_groups.get(key)
        if g is not None:
            right.plot(g["epoch"] + 1, g["mean_norm"], label=lab, **_marker(g), **style)
    left.set(
        xlabel="parameterised layer (input -> output)",
        ylabel="mean gradient norm",
    )
    left.set_title("per-layer gradient norm (mean over epochs)", y=1.0)
    right.set(xlabel="epoch", ylabel="global gradient norm")
    right.set_title("global gradient norm", y=1.0)
    _log_if_positive(left, per_layer)
    _log_if_positive(right, glob["mean_norm"])
    for ax in (left, right):
        ax.grid(alpha=0.3)
    _integer_x(left, right)
    right.legend(fontsize="x-small")
    fig.suptitle(title)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.86, bottom=0.13, wspace=0.2)
    return to_png(fig)


def step_loss_png(steps: pd.DataFrame, labels: dict[str, str], title: str) -> bytes:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    groups = dict(tuple(steps.groupby("key", sort=False)))
    for i, (key, lab) in enumerate(labels.items()):
        g = groups.get(key)
        if g is None:
            continue
        g = g.sort_values("step")
        x = g["step"] / max(1, g["step"].max()) * (g["epoch"].max() + 1)  # align runs of different lengths
        ax.plot(x, g["loss"], alpha=0.85, label=lab, **{**_style(i, lab), "linewidth": 0.8})
    _log_if_positive(ax, steps["loss"])
    ax.set(xlabel="epoch", ylabel="training loss (per step)")
    ax.set_title(title, y=1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.91, bottom=0.12)
    return to_png(fig)


@dataclass
class Drawing:
    """Which trials a sweep's figures draw and how their legend names them (shared by `sweep` and `report`).

    Attributes:
        labels: {run key: legend label} of the drawn trials, in the study's order; the best trial's label
            ends with ``(best)``, the worst's with ``(worst)`` (see :class:`~dlbench.sweep.study.Summary`).
        title: Figure title.
        note: Why fewer trials are drawn than the study holds ("" when all are).
    """

    labels: dict[str, str]
    title: str
    note: str = ""


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
    return Drawing(shown, title, note)


def draw_sweep(store, study: Study, summary: Summary) -> tuple[Drawing, dict[str, bytes]]:
    """The sweep's curves, gradient-norm and step-loss figures as PNG bytes, from the cache's tables."""
    plan = drawing(study, summary)
    keys = list(plan.labels)
    pngs = {}
    for name, table, draw in (
        ("curves", "epochs", curves_png),
        ("grad_norms", "grads", grad_norms_png),
        ("step_loss", "steps", step_loss_png),
    ):
        df = store.table(table, keys) if keys else pd.DataFrame()
        if len(df):
            pngs[name] = draw(df, plan.labels, plan.title)
    return plan, pngs


def sweep_pngs(store, study: Study, summary: Summary, runs: pd.DataFrame) -> tuple[Drawing, dict[str, bytes]]:
    """The sweep's figures as PNG bytes: read from the folder `dlbench sweep` drew them into by default
    (``<cache>/sweeps/<name>/``) when its stamp says they were drawn from exactly these runs, else drawn now."""
    from dlbench.paths import safe_name

    kept = _kept(store.root / "sweeps" / safe_name(study.name), _stamp(study, runs))
    if kept is not None:
        try:
            return drawing(study, summary), {name: path.read_bytes() for name, path in kept.items()}
        except OSError:
            pass  # removed or unreadable since the stamp was read: draw them
    return draw_sweep(store, study, summary)


FIGURES_VERSION = 1  # bump when the drawing changes: figures stamped with another version are drawn again
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
    _, pngs = draw_sweep(store, study, summary)
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
    paths = {name: folder / f"{name}.png" for name in recorded.get("figures", [])}
    return paths if paths and all(p.is_file() and not p.is_symlink() for p in paths.values()) else None
