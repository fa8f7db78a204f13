"""Figures over training time: learning curves, gradient norms by layer kind, the per-step loss, and the
mean with a min-max band over seeds under ``--repeats``. Each ``*_fig`` returns a matplotlib figure (the tests
read its axes); :func:`dlbench.report.plot_base.to_png` turns it into PNG bytes."""

from __future__ import annotations

import math

import pandas as pd

from dlbench.report.plot_base import colour, integer_x, log_if_positive, marker, pyplot, style

Seeds = dict[str, tuple[int, int]]  # run key -> (value combination's colour index, seed): see trial_style

DASHES = ("-", "--", ":", "-.")  # one per seed under --repeats
KINDS = ("conv", "linear", "norm", "other")  # gradient-norm panels, in this order
_NAME_KINDS = (  # the last part of a layer's name, digits stripped -> kind (tables recorded before `kind`)
    ("norm", ("bn", "norm", "ln", "gn")),
    ("conv", ("conv", "stem", "downsample")),
    ("linear", ("fc", "head", "linear", "classifier", "proj")),
)


def kind_from_name(layer: str) -> str:
    """conv | linear | norm | other from a layer name (``blocks.0.bn1`` -> norm; ``features.3`` -> other)."""
    last = layer.rsplit(".", 1)[-1].lower().rstrip("0123456789_")
    for kind, prefixes in _NAME_KINDS:
        if last.startswith(prefixes):
            return kind
    return "other"


def layer_kinds(layers: pd.DataFrame) -> pd.Series:
    """Each row's kind: the recorded ``kind`` column where there is one, else from the layer name."""
    by_name = layers["layer"].map(kind_from_name)
    if "kind" not in layers.columns:
        return by_name
    recorded = layers["kind"].where(layers["kind"].isin(KINDS))
    return recorded.fillna(by_name)


def trial_style(key: str, i: int, lab: str, seeds: Seeds | None) -> dict:
    """One colour per trial; under ``--repeats`` one colour per value combination and one dash per seed."""
    if seeds and key in seeds:
        value, seed = seeds[key]
        return {**style(value, lab), "linestyle": DASHES[seed % len(DASHES)]}
    return style(i, lab)


def curves_fig(epochs: pd.DataFrame, labels: dict[str, str], title: str, seeds: Seeds | None = None):
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
                ax.plot(g["epoch"] + 1, g[col], label=lab, **marker(g), **trial_style(key, i, lab, seeds))
        ax.set_title(name, y=1.0)  # a fixed y skips matplotlib's costly automatic title placement
        ax.grid(alpha=0.3)
        if "loss" in col and col in epochs:
            log_if_positive(ax, epochs[col])
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    integer_x(*axes.flat)
    handles, labs = axes[0, 0].get_legend_handles_labels()
    _legend_below(fig, handles, labs, title, top=0.92)
    return fig


def legend_shape(labs) -> tuple[int, int]:
    """(columns, rows) of a legend below the panels: as many columns as fit 1,100 px at ~6.5 px per character
    of the small legend font (plus the handle)."""
    widest = max((len(lab) for lab in labs), default=1)
    ncol = max(1, min(4, len(labs), int(1050 // (6.5 * widest + 45))))
    return ncol, math.ceil(len(labs) / ncol)


def _legend_below(fig, handles, labs, title: str, top: float) -> None:
    """The legend under the panels, with room (in inches, whatever the figure's height) for the x labels."""
    ncol, rows = legend_shape(labs)
    fig.suptitle(title)
    height = fig.get_size_inches()[1]
    fig.subplots_adjust(
        left=0.07, right=0.98, top=top, hspace=0.22, wspace=0.16, bottom=(0.62 + 0.24 * rows) / height
    )
    fig.legend(handles, labs, loc="lower center", ncol=ncol, frameon=False, fontsize="small")


def grad_norms_fig(grads: pd.DataFrame, labels: dict[str, str], title: str, seeds: Seeds | None = None):
    """One panel per layer kind (conv, linear, norm, other: a line never joins a convolution to a batch
    norm), each layer at its depth in the network, and the global norm per epoch."""
    plt = pyplot()
    layers = grads[grads["layer"] != "global"].assign(kind=lambda d: layer_kinds(d))
    per_layer = layers.groupby(["kind", "key", "depth"], sort=True)["mean_norm"].mean()
    kinds = [k for k in KINDS if k in set(layers["kind"])]
    n = len(kinds) + 1
    ncol = 2 if n > 2 else n
    nrow = math.ceil(n / ncol)
    height = 3.3 * nrow + 1.0 + 0.24 * legend_shape(list(labels.values()))[1]
    fig, axes = plt.subplots(nrow, ncol, figsize=(11, height), squeeze=False)
    for ax, kind in zip(axes.flat, kinds, strict=False):
        part = per_layer.loc[kind]
        for i, (key, lab) in enumerate(labels.items()):
            if key in part.index.get_level_values(0):
                s = part.loc[key]
                ax.plot(
                    s.index, s.values, marker="o", markersize=3, label=lab, **trial_style(key, i, lab, seeds)
                )
        ax.set_title(f"{kind} layers: mean gradient norm over epochs", y=1.0)
        ax.set_xlabel("depth (parameterised layer, input -> output)")
        log_if_positive(ax, part, minor=False)
    glob = grads[grads["layer"] == "global"].sort_values(["key", "epoch"])
    right = axes.flat[len(kinds)]
    groups = dict(tuple(glob.groupby("key", sort=False)))
    for i, (key, lab) in enumerate(labels.items()):
        g = groups.get(key)
        if g is not None:
            right.plot(
                g["epoch"] + 1, g["mean_norm"], label=lab, **marker(g), **trial_style(key, i, lab, seeds)
            )
    right.set(xlabel="epoch")
    right.set_title("global gradient norm", y=1.0)
    log_if_positive(right, glob["mean_norm"], minor=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax in axes.flat[:n]:
        ax.grid(alpha=0.3)
    integer_x(*axes.flat[:n])
    handles, labs = right.get_legend_handles_labels()
    _legend_below(fig, handles, labs, title, top=1 - 0.8 / height)
    fig.subplots_adjust(hspace=0.45)
    return fig


def step_loss_fig(steps: pd.DataFrame, labels: dict[str, str], title: str, seeds: Seeds | None = None):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    groups = dict(tuple(steps.groupby("key", sort=False)))
    for i, (key, lab) in enumerate(labels.items()):
        g = groups.get(key)
        if g is None:
            continue
        g = g.sort_values("step")
        x = g["step"] / max(1, g["step"].max()) * (g["epoch"].max() + 1)  # align runs of different lengths
        ax.plot(x, g["loss"], alpha=0.85, label=lab, **{**trial_style(key, i, lab, seeds), "linewidth": 0.8})
    log_if_positive(ax, steps["loss"], minor=False)
    ax.set(xlabel="epoch", ylabel="training loss (per step)")
    integer_x(ax)
    ax.set_title(title, y=1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")
    fig.subplots_adjust(left=0.08, right=0.98, top=0.91, bottom=0.12)
    return fig


def seeds_band_fig(epochs: pd.DataFrame, groups: dict[str, list[str]], title: str):
    """Mean over seeds with a min-max band, one colour per value combination ({label: run keys})."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2 + 0.24 * legend_shape(list(groups))[1]))
    panels = (("val_acc", "validation accuracy"), ("val_loss", "validation loss"))
    for ax, (col, name) in zip(axes, panels, strict=True):
        for i, (lab, keys) in enumerate(groups.items()):
            g = epochs[epochs["key"].isin(keys)]
            if g.empty or col not in g:
                continue
            stats = g.groupby("epoch")[col].agg(["mean", "min", "max", "count"])
            x = stats.index + 1
            ax.fill_between(x, stats["min"], stats["max"], color=colour(i), alpha=0.18, linewidth=0)
            seeds = int(stats["count"].max())
            ax.plot(x, stats["mean"], color=colour(i), label=f"{lab} ({seeds} seeds)", **marker(stats))
        ax.set_title(f"{name}: mean over seeds, band min-max", y=1.0)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if col == "val_loss" and col in epochs:
            log_if_positive(ax, epochs[col])
    integer_x(*axes)
    handles, labs = axes[0].get_legend_handles_labels()
    _legend_below(fig, handles, labs, title, top=1 - 0.6 / fig.get_size_inches()[1])
    return fig
