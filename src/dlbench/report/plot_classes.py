"""The best trial's confusion matrix and per-class accuracy, from its cached test predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dlbench.report.plot_base import pyplot

ANNOTATED = 20  # classes up to which each cell shows its count and each class its name


def class_names(config_json: str) -> list[str] | None:
    """The dataset's class names from the registry's metadata (never loads the data); None if unknown."""
    from dlbench.config import TrainConfig
    from dlbench.data import get_dataset

    try:
        config = TrainConfig.from_json(config_json)
        return list(get_dataset(config.dataset).info(None, config.dataset_options).classes)
    except Exception:  # a dataset whose metadata needs its files: the figure names classes by index
        return None


def confusion_counts(preds: pd.DataFrame, n: int) -> np.ndarray:
    """(n, n) counts: row = true class, column = predicted class."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (preds["label"].to_numpy(dtype=np.int64), preds["pred"].to_numpy(dtype=np.int64)), 1)
    return m


def confusion_fig(preds: pd.DataFrame, classes: list[str] | None, title: str):
    """Counts of (true, predicted) class on the test set, and each class's accuracy beside it."""
    plt = pyplot()
    n = max(len(classes or ()), int(max(preds["label"].max(), preds["pred"].max())) + 1)
    names = list(classes) if classes and len(classes) == n else [str(i) for i in range(n)]
    m = confusion_counts(preds, n)
    size = min(9.0, 3.5 + 0.35 * n)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, size), gridspec_kw={"width_ratios": [1.3, 1]})
    left.imshow(m, cmap="Blues")
    if n <= ANNOTATED:
        top = m.max() or 1
        for (i, j), v in np.ndenumerate(m):
            left.text(
                j, i, str(v), ha="center", va="center", fontsize=8, color="white" if v > top / 2 else "black"
            )
        left.set_xticks(range(n), names, rotation=45, ha="right")
        left.set_yticks(range(n), names)
    left.set(xlabel="predicted class", ylabel="true class")
    left.set_title(f"confusion matrix ({int(m.sum())} test images)", y=1.0)
    totals = m.sum(axis=1)
    acc = np.divide(np.diag(m), totals, out=np.full(n, np.nan), where=totals > 0)
    right.barh(range(n), np.nan_to_num(acc), color="#4c72b0")
    right.invert_yaxis()  # class 0 on top, as in the matrix
    if n <= ANNOTATED:
        right.set_yticks(range(n), names)
        for i, v in enumerate(acc):
            right.text(min(np.nan_to_num(v), 0.88) + 0.01, i, "-" if np.isnan(v) else f"{v:.2f}", va="center")
    overall = np.trace(m) / max(1, m.sum())
    right.axvline(overall, color="0.4", linestyle="--", label=f"overall {overall:.3f}")
    right.set(xlim=(0, 1), xlabel="accuracy on the class's test images")
    right.set_title("per-class accuracy", y=1.0)
    right.legend(fontsize="small", loc="lower right")
    fig.suptitle(title)
    # fixed margins (class names of up to ~14 characters), not a constrained layout: it measures every text
    fig.subplots_adjust(left=0.16, right=0.98, top=1 - 0.6 / size, bottom=1.3 / size, wspace=0.38)
    return fig
