"""Figures of a study's final results against what it swept: the metric against the value of one axis (log x
for lr, weight decay and any positive axis spanning more than a decade; points in the study's order for a
categorical axis; mean with a min-max band under ``--repeats``), and an annotated heatmap for a two-axis grid."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dlbench.report.plot_base import LOG_AXES, colour, log_scale, pyplot, spans_a_decade
from dlbench.settings import format_value
from dlbench.sweep.study import Study, Summary

METRICS = (("best_val_acc", "best validation accuracy"), ("test_acc", "test accuracy"))
MAX_TICKS = 16  # swept values labelled one by one up to this many
ANNOTATED = (
    100  # heatmap cells annotated with their value up to this many (more are unreadable: see the table)
)


def is_number(value) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool) and math.isfinite(value)


def result_figure(study: Study, summary: Summary) -> tuple[str, object] | None:
    """("metric", figure) for one axis, ("heatmap", figure) for two, None otherwise or with no finished trial."""
    ok = summary.trials[summary.trials["status"] == "ok"]
    if ok.empty:
        return None
    if len(study.axes) == 1:
        return "metric", metric_fig(study, summary, ok)
    if len(study.axes) == 2:
        return "heatmap", heatmap_fig(study, summary)
    return None


def _values(trials: pd.DataFrame, axis: str) -> tuple[pd.Series, dict]:
    """(each trial's value as text, {text: typed value}) in the study's order (values of lists are texts)."""
    text = trials[axis].map(format_value)
    return text, dict(zip(text, trials[axis], strict=True))


def metric_fig(study: Study, summary: Summary, ok: pd.DataFrame):
    plt = pyplot()
    axis = study.axis_names[0]
    _, typed = _values(summary.trials, axis)
    text, _ = _values(ok, axis)
    names = list(typed)
    numeric = all(is_number(v) for v in typed.values())
    x = {n: (float(typed[n]) if numeric else i) for i, n in enumerate(names)}
    fig, ax = plt.subplots(figsize=(8, 4.6))
    seeds = ok.groupby(text, sort=False).size().max()
    for i, (col, name) in enumerate(METRICS):
        stats = ok[col].groupby(text, sort=False).agg(["mean", "min", "max"]).reindex(names).dropna()
        xs = np.array([x[n] for n in stats.index]) + (0 if numeric else (i - 0.5) * 0.12)
        if study.repeats > 1:
            label = f"{name} (mean; band min-max over {seeds} seeds)"
            if numeric:
                ax.fill_between(xs, stats["min"], stats["max"], color=colour(i), alpha=0.18, linewidth=0)
                ax.plot(xs, stats["mean"], marker="o", color=colour(i), label=label)
            else:
                err = [stats["mean"] - stats["min"], stats["max"] - stats["mean"]]
                ax.errorbar(xs, stats["mean"], yerr=err, fmt="o", capsize=4, color=colour(i), label=label)
        else:
            ax.plot(
                xs,
                stats["mean"],
                marker="o",
                linestyle="-" if numeric else "none",
                color=colour(i),
                label=name,
            )
    if numeric and all(v > 0 for v in x.values()) and (axis in LOG_AXES or spans_a_decade(list(x.values()))):
        log_scale(ax, "x")
    if len(names) <= MAX_TICKS or not numeric:  # a long numeric sweep keeps matplotlib's own few ticks
        ax.set_xticks([x[n] for n in names], names, rotation=30 if len(names) > 6 else 0)
        ax.minorticks_off()
    if not numeric:
        ax.set_xlim(-0.5, len(names) - 0.5)
    if summary.best is not None:
        best = format_value(summary.rows[summary.best][axis])
        ax.axvline(x[best], color="0.5", linestyle=":", label=f"best by validation accuracy: {axis}={best}")
    ax.set(xlabel=axis + ("" if numeric else " (in the sweep's order)"), ylabel="accuracy")
    ax.set_title(f"{study.model} on {study.dataset}: final accuracy against {axis}", y=1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.subplots_adjust(left=0.09, right=0.98, top=0.92, bottom=0.14 if len(names) <= 6 else 0.2)
    return fig


def grid(study: Study, summary: Summary, col: str) -> tuple[list[str], list[str], np.ndarray]:
    """(row values, column values, matrix of ``col``): the first axis down, the second across, NaN where
    the grid has no value."""
    a, b = study.axis_names[:2]
    rows = list(dict.fromkeys(format_value(r[a]) for r in summary.rows))
    cols = list(dict.fromkeys(format_value(r[b]) for r in summary.rows))
    m = np.full((len(rows), len(cols)), np.nan)
    for r in summary.rows:  # the values the summary table shows (its status column says which failed)
        if is_number(r.get(col)):
            m[rows.index(format_value(r[a])), cols.index(format_value(r[b]))] = r[col]
    return rows, cols, m


def heatmap_fig(study: Study, summary: Summary):
    plt = pyplot()
    from matplotlib.patches import Rectangle

    a, b = study.axis_names[:2]
    rows, cols, _ = grid(study, summary, "best_val_acc")
    wide = len(cols) > 8  # many columns: the two panels one above the other, each the figure's full width
    w = 10.5 if wide else min(7.5, 2.6 + 0.8 * len(cols))
    panel = max(1.6, 0.45 * len(rows) + 0.4)  # inches of one heatmap's height
    size = (w, 2 * panel + 3.2) if wide else (2 * w + 0.6, panel + 1.5)
    fig, axes = plt.subplots(2 if wide else 1, 1 if wide else 2, figsize=size)
    best = summary.rows[summary.best] if summary.best is not None else None
    for ax, (col, name) in zip(axes, METRICS, strict=True):
        _, _, m = grid(study, summary, col)
        image = ax.imshow(m, cmap="viridis", aspect="auto")
        if m.size <= ANNOTATED:
            _annotate(ax, m, 9 if m.size <= 42 else 7)
        if best is not None:
            i, j = rows.index(format_value(best[a])), cols.index(format_value(best[b]))
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
        ax.set_xticks(range(len(cols)), cols, rotation=90 if len(cols) > 6 else 0)
        ax.set_yticks(range(len(rows)), rows)
        ax.set(xlabel=b, ylabel=a)
        ax.set_title(name + (" (mean over seeds)" if study.repeats > 1 else ""), y=1.0)
        fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    what = "red: best by validation accuracy" + (
        "" if len(rows) * len(cols) <= ANNOTATED else "; values in the table"
    )
    fig.suptitle(f"{study.model} on {study.dataset}: {a} by {b} ({what})")
    height = size[1]  # margins in inches: the titles above, the tick labels and the axis name below
    if wide:
        fig.subplots_adjust(
            left=0.08, right=0.97, top=1 - 0.75 / height, bottom=1.0 / height, hspace=1.4 / panel
        )
    else:
        fig.subplots_adjust(left=0.07, right=0.95, top=1 - 0.75 / height, bottom=0.7 / height, wspace=0.32)
    return fig


def _annotate(ax, m: np.ndarray, font: float) -> None:
    """Each cell's value, white on the dark half of the colour map."""
    mid = np.nanmean(m) if np.isfinite(m).any() else 0
    for (i, j), v in np.ndenumerate(m):
        text = "-" if math.isnan(v) else f"{v:.3f}"
        ax.text(j, i, text, ha="center", va="center", fontsize=font, color="white" if v < mid else "black")
