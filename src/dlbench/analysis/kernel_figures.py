"""Weights and feature maps as pictures: scaling a layer's weights for display, grids of tiles with a colour bar,
and writing a figure (through :mod:`dlbench.atomic`, so a kill never leaves half a PNG)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dlbench.atomic import write_atomic
from dlbench.errors import UsageError

if TYPE_CHECKING:  # kernels.py imports this module: the annotation only
    from dlbench.analysis.kernels import LayerChoice

NORMS = ("layer", "kernel", "standard")
CHANNELS = ("auto", "rgb", "mean", "each")


def resolve_channels(channels: str, in_channels: int) -> str:
    if channels not in CHANNELS:
        raise UsageError(f"--channels must be one of {', '.join(CHANNELS)}, got '{channels}'")
    if channels == "auto":
        return "rgb" if in_channels == 3 else "mean"
    if channels == "rgb" and in_channels != 3:
        raise UsageError(
            f"--channels rgb needs 3 input channels, this layer has {in_channels}; use mean or each"
        )
    return channels


def display_values(images: np.ndarray, norm: str, channels: str):
    """Images ready to draw, their colour limits and colour-bar label.

    Args:
        images: (units, C, h, w) raw weights.
    Returns:
        (tiles, vmin, vmax, label, cmap): tiles (units, rows, h, w) for grayscale (rows = 1, or C for 'each'),
        or (units, 1, h, w, 3) in [0, 1] for rgb; vmin/vmax None for rgb.
    """
    if norm not in NORMS:
        raise UsageError(f"--norm must be one of {', '.join(NORMS)}, got '{norm}'")
    x = images.mean(axis=1, keepdims=True) if channels == "mean" else images  # (U, C', h, w)
    if norm == "layer":
        lo, hi = float(x.min()), float(x.max())
        if channels == "rgb":
            return _unit(x, lo, hi).transpose(0, 2, 3, 1)[:, None], None, None, "", None
        return (x, lo, hi, "weight (layer min-max)", "gray")
    if norm == "kernel":
        flat = x.reshape(len(x), -1)
        lo = flat.min(axis=1)[:, None, None, None]
        hi = flat.max(axis=1)[:, None, None, None]
        y = _unit(x, lo, hi)
        if channels == "rgb":
            return y.transpose(0, 2, 3, 1)[:, None], None, None, "", None
        return y, 0.0, 1.0, "per-kernel min-max", "gray"
    z = (x - x.mean()) / (x.std() or 1.0)
    m = float(np.abs(z).max()) or 1.0
    if channels == "rgb":
        return np.clip(0.5 + z / (2 * m), 0, 1).transpose(0, 2, 3, 1)[:, None], None, None, "", None
    return z, -m, m, "z-score over the layer", "RdBu_r"


def _unit(x, lo, hi):
    span = np.where(np.asarray(hi - lo) > 0, hi - lo, 1.0)
    return (x - lo) / span


def draw_grid(tiles, vmin, vmax, label, cmap, title: str, labels: list[str], cols: int | None = None):
    """A matplotlib figure with one small image per tile row-block and a colour bar where values matter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    units, rows_per_unit = tiles.shape[0], tiles.shape[1]
    n = units * rows_per_unit
    cols = cols or (rows_per_unit if rows_per_unit > 1 else max(1, math.ceil(math.sqrt(n))))
    if rows_per_unit > 1:
        nrows = units
    else:
        nrows = math.ceil(n / cols)
    size = 1.0 if max(cols, nrows) <= 16 else 0.6
    fig, axes = plt.subplots(nrows, cols, figsize=(cols * size + 1.2, nrows * size + 0.8), squeeze=False)
    im = None
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        u, r = divmod(i, rows_per_unit)
        tile = tiles[u, r]
        if tile.ndim == 3:  # (h, w, 3) rgb
            ax.imshow(tile, interpolation="nearest")
        else:
            im = ax.imshow(tile, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(labels[i], fontsize=6, pad=1.5)
    fig.suptitle(title, fontsize=9)
    if im is not None and label:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label=label)
    return fig


def kernel_figure(
    choice: LayerChoice, norm: str = "layer", channels: str = "auto", title: str = "", max_units: int = 256
):
    """Build (figure, tiles shown, notes) for the weights of ``choice``."""
    notes: list[str] = []
    images = choice.images
    in_ch = images.shape[1]
    mode = resolve_channels(channels, in_ch)
    if mode == "each" and in_ch > 16:
        notes.append(f"showing the first 16 of {in_ch} input channels")
        images = images[:, :16]
    units = images.shape[0]
    limit = max_units if max_units > 0 else units
    if mode == "each":
        limit = min(limit, max(1, 512 // images.shape[1]))
    if units > limit:
        notes.append(f"showing the first {limit} of {units} units (raise --max-units)")
    tiles, vmin, vmax, label, cmap = display_values(images, norm, mode)  # scales from the whole layer
    tiles = tiles[:limit]
    shown = tiles.shape[0]
    if mode == "each":
        labels = [f"{u} c{c}" for u in range(shown) for c in range(tiles.shape[1])]
    else:
        labels = [str(u) for u in range(shown)]
    fig = draw_grid(tiles, vmin, vmax, label, cmap, title, labels)
    return fig, shown, mode, notes


def feature_map_figure(image: np.ndarray, maps: np.ndarray, title: str, max_units: int = 256):
    """The input image, then one panel per channel of ``maps`` (C, h, w) on one shared colour scale."""
    notes = []
    if max_units > 0 and len(maps) > max_units:
        notes.append(f"showing the first {max_units} of {len(maps)} channels (raise --max-units)")
    lo, hi = float(maps.min()), float(maps.max())
    shown = maps[: max_units if max_units > 0 else len(maps)]
    fig = draw_grid(
        shown[:, None], lo, hi, "activation", "viridis", title, [str(i) for i in range(len(shown))]
    )
    ax = fig.add_axes([0.005, 0.88, 0.1, 0.1])
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None)
    ax.set_title("input", fontsize=6, pad=1)
    ax.axis("off")
    return fig, len(shown), notes


def save_figure(fig, path: Path, dpi: int = 150) -> Path:
    """Write ``fig`` as a PNG through the atomic writer (a temp name, then a rename) and close it."""
    import matplotlib.pyplot as plt

    try:
        return write_atomic(Path(path), lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"))
    finally:
        plt.close(fig)
