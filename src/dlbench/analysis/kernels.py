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

from dlbench.analysis.kernel_figures import (  # noqa: F401 - re-exported: the pictures of a layer
    CHANNELS,
    NORMS,
    display_values,
    draw_grid,
    feature_map_figure,
    kernel_figure,
    resolve_channels,
    save_figure,
)
from dlbench.analysis.loaded import LoadedModel, build_untrained, load_run
from dlbench.errors import InvalidSettingError, UsageError
from dlbench.models import Anatomy, anatomy


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
