"""Count parameters and multiply-accumulates exactly, by instantiating models on the ``meta`` device.

The counting itself lives in :mod:`dlbench.models.counting` (the engine records the same counts in each run's
summary); this module picks the input a model is counted on and breaks the count down by layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dlbench.models import ModelSpec, get_model_spec
from dlbench.models.counting import build_meta, count_macs, count_parameters, macs_or_error

IMAGENET_SHAPE = ((3, 224, 224), 1000)  # the input torchvision's classifiers are defined for


@dataclass(frozen=True)
class Count:
    params: int
    trainable: int
    macs: int | None  # per image; None when the forward pass cannot run on meta tensors


def input_for(spec: ModelSpec, dataset: str | None, data_dir=None, dataset_options=None):
    """(input_shape, num_classes, dataset name) for counting ``spec`` on ``dataset`` (or its default)."""
    name = dataset or spec.default_dataset
    if name == "imagenet-shape":
        shape, classes = IMAGENET_SHAPE
        return (shape[0], *(native_size(spec) or shape[1:])), classes, name
    from dlbench.data import get_dataset

    info = get_dataset(name).info(data_dir, dataset_options)
    return info.input_shape, info.num_classes, name


def native_size(spec: ModelSpec) -> tuple[int, int] | None:
    """The input size a torchvision classifier is defined for (its DEFAULT weights' crop: 299 for
    inception_v3, 224 for most), without downloading anything; None for other models."""
    from dlbench.models.transfer import default_weights, tv_name

    name = tv_name(spec)
    weights = default_weights(name) if name else None
    if weights is None:
        return None
    if name.startswith("vit_"):  # built for 224 unless its image_size is set (its DEFAULT weights may differ)
        return 224, 224
    crop = weights.transforms().crop_size
    side = int(crop[0] if isinstance(crop, list | tuple) else crop)
    return side, side


def smallest_side(spec: ModelSpec, channels: int, classes: int, settings=None, *, failed: int) -> int | None:
    """The smallest N > ``failed`` for which an N x N input runs through the model on the meta device, or None
    (nothing up to the largest input size does: the failure is not the size).

    torchvision's weights declare theirs (``meta["min_size"]``, 75 for inception_v3): checked, it costs two
    forward passes; otherwise sizes are tried, doubling and then bisecting, assuming a size that works keeps
    working when larger (true of convolutions and pooling).
    """
    from dlbench.config import MAX_INPUT_SIZE

    def works(side: int) -> bool:
        try:
            net = build_meta(spec, (channels, side, side), classes, settings)
        except Exception:  # a builder that rejects this size (a patch that does not divide it): not a fit
            return False
        return macs_or_error(net, (channels, side, side))[0] is not None

    lo, hi = failed, None
    hint = _declared_min_size(spec)
    if hint and hint > failed and works(hint):
        if not works(hint - 1):
            return hint
        hi = hint - 1
    side = max(2 * failed, failed + 1)
    while hi is None:
        side = min(side, MAX_INPUT_SIZE)
        if works(side):
            hi = side
        elif side == MAX_INPUT_SIZE:
            return None
        else:
            lo, side = side, 2 * side
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if works(mid) else (mid, hi)
    return hi


def _declared_min_size(spec: ModelSpec) -> int | None:
    """The smallest input side torchvision's DEFAULT weights declare for the model, if any."""
    from dlbench.models.transfer import default_weights, tv_name

    name = tv_name(spec)
    weights = default_weights(name) if name else None
    size = weights.meta.get("min_size") if weights is not None else None
    return int(max(size)) if size else None


def count(
    model_name: str,
    settings=None,
    *,
    input_shape=None,
    num_classes=None,
    dataset=None,
    data_dir=None,
    bias: bool = True,
    macs: bool = True,
) -> Count:
    spec = get_model_spec(model_name)
    if input_shape is None:
        input_shape, num_classes, _ = input_for(spec, dataset, data_dir)
    model = build_meta(spec, input_shape, num_classes, settings)
    total, trainable = count_parameters(model, bias=bias)
    return Count(total, trainable, count_macs(model, input_shape) if macs else None)


@dataclass(frozen=True)
class LayerRow:
    name: str
    type: str
    output_shape: tuple | None
    params: int


def layer_summary(model: nn.Module, input_shape, depth: int = 1) -> list[LayerRow]:
    """One row per module down to ``depth`` levels, with its output shape for one image, like torchinfo."""
    rows: dict[str, LayerRow] = {}
    shapes: dict[str, tuple] = {}
    hooks = []
    for name, module in model.named_modules():
        level = 0 if name == "" else name.count(".") + 1
        if name == "" or level > depth:
            continue

        def hook(mod, inp, out, name=name):
            if isinstance(out, torch.Tensor):
                shapes.setdefault(name, tuple(out.shape[1:]))

        hooks.append(module.register_forward_hook(hook))
        rows[name] = LayerRow(name, type(module).__name__, None, sum(p.numel() for p in module.parameters()))
    try:
        count_macs(model, input_shape)  # one meta forward pass fills `shapes`
    finally:
        for h in hooks:
            h.remove()
    return [LayerRow(r.name, r.type, shapes.get(r.name), r.params) for r in rows.values()]


__all__ = [
    "Count",
    "LayerRow",
    "build_meta",
    "count",
    "count_macs",
    "count_parameters",
    "input_for",
    "layer_summary",
    "macs_or_error",
    "smallest_side",
]
