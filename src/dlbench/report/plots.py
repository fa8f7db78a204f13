"""Matplotlib figures of sweeps, as PNG bytes (Agg backend: files, never windows). Inputs are cache tables.

One home for every sweep figure: `dlbench sweep` writes them to a folder and `dlbench report` embeds or links
them. At most ``MAX_CURVES`` trials are drawn per figure (best, worst and evenly spaced others): a legend
of 50 lines informs nobody, and the table lists every trial.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import pandas as pd

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
    best = key_label.endswith("(best)")
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


def sweep_figures(store, definition: dict, folder: Path) -> dict[str, Path]:
    """Write a sweep's curves, gradient-norm and step-loss figures into ``folder``; returns {name: path}."""
    from dlbench.sweep.grid import label
    from dlbench.sweep.summary import trial_frame

    trials = trial_frame(store, definition)
    if trials.empty:
        return {}
    axes = [a["name"] for a in definition["axes"]]
    labels = {}
    for r in trials.to_dict("records"):
        lab = label({a: r[a] for a in axes})
        labels[r["key"]] = lab + (f" (seed {r['repeat']})" if definition.get("repeats", 1) > 1 else "")
    ok = trials[(trials["status"] == "ok") & trials["best_val_acc"].notna()]
    ranked = ok.sort_values(["best_val_acc", "order"], ascending=[False, True])["key"].tolist()
    drawn = pick_curves(list(labels), ranked[0] if ranked else None, ranked[-1] if ranked else None)
    shown = {k: labels[k] for k in drawn}
    title = f"{definition['model']} on {definition['dataset']}: sweep of {', '.join(axes)}"
    if len(drawn) < len(labels):
        title += f" ({len(drawn)} of {len(labels)} trials drawn)"
    out = {}
    for name, table, draw in (
        ("curves", "epochs", curves_png),
        ("grad_norms", "grads", grad_norms_png),
        ("step_loss", "steps", step_loss_png),
    ):
        df = store.table(table, drawn)
        if len(df):
            out[name] = _write(folder / f"{name}.png", draw(df, shown, title))
    return out


def _write(path: Path, png: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(png)
    os.replace(tmp, path)
    return path
