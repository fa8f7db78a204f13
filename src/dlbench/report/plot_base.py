"""Shared matplotlib helpers of the report's figures: the Agg backend, PNG bytes, line styles and axis scales."""

from __future__ import annotations

import io
import math

import pandas as pd

MAX_CURVES = 12  # lines per figure; the rest of a sweep is in its table
DPI = 100
LOG_AXES = ("lr", "weight_decay")  # swept on a log grid by convention: always drawn on a log axis


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
    # fixed margins rather than bbox_inches="tight": measuring every text twice is most of the drawing time;
    # zlib level 3 rather than 6: encoding takes a third less time for files 3% larger
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, pil_kwargs={"compress_level": 3})
    plt.close(fig)
    return buf.getvalue()


def colour(i: int):
    import matplotlib

    return matplotlib.colormaps["tab10"].colors[i % 10]


def style(i: int, key_label: str) -> dict:
    best = key_label.endswith(("(best)", "(worst)"))
    return {"color": colour(i), "linestyle": "-" if i < 10 else "--", "linewidth": 2.2 if best else 1.2}


def marker(g: pd.DataFrame) -> dict:
    return {"marker": "o", "markersize": 2.5} if len(g) <= 30 else {}


def spans_a_decade(values) -> bool:
    """Positive numbers whose largest is more than ten times the smallest (a log axis reads them best)."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    return bool(len(v)) and bool((v > 0).all()) and v.max() / v.min() >= 10


def log_if_positive(ax, values, minor: bool = True) -> None:
    """Log y scale where the values are positive and span enough to need it (a narrow range reads better
    linear, and its log tick labels are cluttered). ``minor=False``: no minor ticks where two or more powers of
    ten lie within the values (their labels are enough to read noisy lines, and every tick costs drawing
    time); with fewer the minor ticks stay, as they carry the labels."""
    if spans_a_decade(values):
        log_scale(ax, "y")
        v = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
        if not minor and math.floor(math.log10(v.max())) - math.ceil(math.log10(v.min())) >= 1:
            from matplotlib.ticker import NullLocator

            ax.yaxis.set_minor_locator(NullLocator())


def log_scale(ax, which: str) -> None:
    """A log axis ("x" or "y") labelled in plain numbers (0.01, 0.2, 1e-05) rather than matplotlib's default
    mathtext powers: as readable, and parsing mathtext was about a tenth of the drawing time (profiled on
    benchmarks/report_cache.py)."""
    from matplotlib.ticker import LogFormatter

    class Plain(LogFormatter):  # LogFormatter picks which ticks to label; each label as short as %g writes it
        def _num_to_string(self, x, vmin, vmax):
            return f"{x:g}"

    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_formatter(Plain())
    axis.set_minor_formatter(Plain(labelOnlyBase=False))


def integer_x(*axes) -> None:
    """Whole-number x ticks (epochs, depths), at most about five: as readable as matplotlib's default of up to
    ten, and ticks are the largest single cost of drawing (profiled on benchmarks/report_cache.py)."""
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(
            MaxNLocator(nbins=5, integer=True, min_n_ticks=1)
        )  # one epoch: one tick, "1"
