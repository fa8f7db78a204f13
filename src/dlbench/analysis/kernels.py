"""Look inside a model: the weights of one layer as a grid of images, and its feature maps for one input.

Which weights are images:
    * a convolution ``(out, in, kh, kw)``: each output channel's kernel is a ``kh x kw`` image with ``in``
      channels;
    * MLP-Mixer's token-mixing layers (its anatomy's ``token_mixing``, ``blocks.N.mlp_tokens.fc1``)
      ``(hidden, tokens)``: each hidden unit's weights over the tokens, laid out on the patch grid
      (``H/p x W/p``);
    * an MLP's first Linear layer ``(units, C*H*W)``: each unit's weights as an image of the input shape.

Display (``norm``): ``layer`` shows raw weights on one scale for the whole layer (min-max over the layer, the
colour bar is in weight units); ``kernel`` stretches each kernel to its own min-max; ``standard`` shows
z-scores of the layer on a symmetric scale. ``channels``: ``rgb`` (three input channels as colour), ``mean``
(mean over input channels, grayscale) or ``each`` (one image per input channel).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlbench.analysis.loaded import LoadedModel, build_untrained, load_run
from dlbench.errors import InvalidSettingError, UsageError
from dlbench.models import Anatomy, anatomy

NORMS = ("layer", "kernel", "standard")
CHANNELS = ("auto", "rgb", "mean", "each")


@dataclass
class LayerChoice:
    name: str
    module: nn.Module
    kind: str  # 'conv' | 'token-mixing' | 'linear'
    images: np.ndarray  # (units, C, h, w) float64: one image per unit, C channels


@dataclass
class KernelFigure:
    path: Path
    layer: str
    kind: str
    weight_shape: tuple
    image_shape: tuple  # (C, h, w) of one unit's image
    units: int  # units in the layer
    shown: int  # units drawn
    array_path: Path | None = None
    notes: list[str] = field(default_factory=list)
    channels: str = ""  # the channel mode drawn (rgb | mean | each)


# -------------------------------------------------------------------- choosing a layer


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """Every ``nn.Conv2d`` of ``model`` in definition order, with its module name."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def _viewable(model: nn.Module, parts: Anatomy, input_shape) -> list[tuple[str, nn.Module, str]]:
    """Layers whose weights read as images: (name, module, kind)."""
    c, h, w = input_shape
    out = [(n, m, "conv") for n, m in conv_layers(model)]
    for n, m in model.named_modules():
        if n in parts.token_mixing:
            out.append((n, m, "token-mixing"))
        elif isinstance(m, nn.Linear) and m.in_features == c * h * w:
            out.append((n, m, "linear"))
    return out


def select_layer(model: nn.Module, family, input_shape, layer: str = "first") -> LayerChoice:
    """Pick ``layer`` ('first', 'last' or a module name) of ``model`` and turn its weights into images.

    'first' is the first layer the model's family declares (:func:`dlbench.models.anatomy`): MLP-Mixer's first
    token-mixing layer, else the first convolution, else the first Linear layer that reads the pixels. 'last'
    is the last convolution. ``family`` is the model's spec, name or family name; ``input_shape`` is what the
    model is fed (C, H, W).
    """
    parts = anatomy(model, family)
    candidates = _viewable(model, parts, input_shape)
    by_name = {n: (n, m, k) for n, m, k in candidates}
    convs = [x for x in candidates if x[2] == "conv"]
    if layer == "first":
        first = parts.token_mixing[0] if parts.token_mixing else parts.first_layer
        if first not in by_name:
            raise UsageError(
                f"the first layer of this model, {first}, does not read the pixels as an image; "
                "choose a layer with --layer NAME"
            )
        chosen = by_name[first]
    elif layer == "last":
        if not convs:
            names = ", ".join(by_name) or "none"
            raise UsageError(
                f"--layer last means the last convolution and this model has none; layers: {names}"
            )
        chosen = convs[-1]
    elif layer in by_name:
        chosen = by_name[layer]
    else:
        conv_names = [n for n, _, _ in convs]
        others = [n for n, _, k in candidates if k != "conv"]
        listing = ", ".join(conv_names) if conv_names else "none"
        extra = f"; other image-like layers: {', '.join(others)}" if others else ""
        raise UsageError(f"unknown layer '{layer}'; conv layers: {listing}{extra} (or first, last)")
    name, module, kind = chosen
    weight = module.weight.detach().to("cpu", torch.float64).numpy()
    if kind == "conv":
        images = weight  # (out, in, kh, kw)
    elif kind == "token-mixing":
        grid = getattr(model, "grid", None)
        tokens = weight.shape[1]
        if grid is None or grid[0] * grid[1] != tokens:
            side = int(round(math.sqrt(tokens)))
            grid = (side, tokens // side)
        images = weight.reshape(weight.shape[0], 1, grid[0], grid[1])  # (hidden, 1, H/p, W/p)
    else:
        images = weight.reshape(weight.shape[0], *input_shape)  # (units, C, H, W)
    return LayerChoice(name, module, kind, images)


# -------------------------------------------------------------------- turning weights into pictures


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


# -------------------------------------------------------------------- feature maps


def feature_maps(model: nn.Module, layer_name: str, x: torch.Tensor) -> torch.Tensor:
    """Output of module ``layer_name`` for input ``x`` (1, C, H, W); returns (channels, h, w)."""
    module = dict(model.named_modules())[layer_name]
    got = {}

    def hook(_m, _inp, out):
        got["out"] = out.detach()

    handle = module.register_forward_hook(hook)
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    out = got["out"]
    if out.ndim != 4:
        raise UsageError(
            f"layer {layer_name} gives a {tuple(out.shape)} output, not feature maps; "
            "choose a convolution with --layer NAME (first, last or a conv name)"
        )
    return out[0].to(torch.float64)


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


def image_from_file(path: Path, input_shape) -> torch.Tensor:
    """A PNG/JPEG as uint8 (C, H, W), converted to the model's channel count and resized to its input size."""
    from PIL import Image, UnidentifiedImageError

    c, h, w = input_shape
    try:
        with Image.open(path) as img:
            img = img.convert("RGB" if c == 3 else "L").resize((w, h), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise UsageError(f"image file {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise UsageError(f"cannot read {path} as an image ({exc}); give a PNG or JPEG") from None
    if c not in (1, 3):
        raise InvalidSettingError(f"--image needs a model with 1 or 3 input channels, this one has {c}")
    t = torch.from_numpy(arr.copy())
    return t[None] if c == 1 else t.permute(2, 0, 1)


def display_image(img_u8: torch.Tensor) -> np.ndarray:
    arr = img_u8.numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def save_figure(fig, path: Path, dpi: int = 150) -> Path:
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


# -------------------------------------------------------------------- where the model comes from


def test_image(loaded: LoadedModel, data_dir, sample: int) -> tuple[torch.Tensor, int]:
    """Test image ``sample`` of the model's dataset as uint8 (C, H, W), and its label."""
    from dlbench.data import get_dataset

    data = get_dataset(loaded.dataset).load(data_dir, loaded.dataset_options)
    n = len(data.test_x)
    if not 0 <= sample < n:
        raise UsageError(
            f"--sample must be between 0 and {n - 1} (test images of {loaded.dataset}), got {sample}"
        )
    return data.test_x[sample], int(data.test_y[sample])


def visualize(
    loaded: LoadedModel,
    out: Path,
    *,
    layer: str = "first",
    norm: str = "layer",
    channels: str = "auto",
    max_units: int = 256,
    save_array: bool = False,
) -> KernelFigure:
    """Draw the weights of ``layer`` of ``loaded`` as a grid of images and write the PNG to ``out``."""
    choice = select_layer(loaded.model, loaded.built.spec, loaded.model_input_shape, layer)
    w_shape = tuple(choice.module.weight.shape)
    what = {
        "conv": "kernels",
        "token-mixing": "token-mixing units (patch grid)",
        "linear": "units as input-shaped images",
    }[choice.kind]
    title = f"{loaded.name} {choice.name} {what} {'x'.join(map(str, w_shape))}, {loaded.source}, norm={norm}"
    fig, shown, mode, notes = kernel_figure(choice, norm, channels, title, max_units)
    path = save_figure(fig, out)
    result = KernelFigure(
        path,
        choice.name,
        choice.kind,
        w_shape,
        tuple(choice.images.shape[1:]),
        choice.images.shape[0],
        shown,
        None,
        notes,
        mode,
    )
    if save_array:
        result.array_path = path.with_suffix(".npy")
        np.save(result.array_path, choice.images)
    return result


def visualize_feature_maps(
    loaded: LoadedModel,
    out: Path,
    image_u8: torch.Tensor,
    *,
    layer: str = "first",
    max_units: int = 256,
    save_array: bool = False,
    image_label: str = "",
) -> KernelFigure:
    """Draw the activations of ``layer`` of ``loaded`` for one uint8 image (C, H, W)."""
    choice = select_layer(loaded.model, loaded.built.spec, loaded.model_input_shape, layer)
    if choice.kind != "conv":
        names = ", ".join(n for n, _ in conv_layers(loaded.model)) or "none"
        raise UsageError(
            f"feature maps need a convolution; layer {choice.name} is {choice.kind}; conv layers: {names}"
        )
    x = loaded.to_input(image_u8)  # (1, C, H, W) as training fed it
    maps = feature_maps(loaded.model, choice.name, x).numpy()  # (C, h, w)
    title = (
        f"{loaded.name} {choice.name} feature maps {'x'.join(map(str, maps.shape))}, {loaded.source}"
        f"{', ' + image_label if image_label else ''}"
    )
    fig, shown, notes = feature_map_figure(display_image(image_u8), maps, title, max_units)
    path = save_figure(fig, out)
    result = KernelFigure(
        path,
        choice.name,
        "feature-maps",
        tuple(choice.module.weight.shape),
        tuple(maps.shape[1:]),
        maps.shape[0],
        shown,
        None,
        notes,
    )
    if save_array:
        result.array_path = path.with_suffix(".npy")
        np.save(result.array_path, maps)
    return result


__all__ = [
    "KernelFigure",
    "LayerChoice",
    "LoadedModel",
    "build_untrained",
    "load_run",
    "select_layer",
    "visualize",
    "visualize_feature_maps",
]
