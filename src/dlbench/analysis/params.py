"""Count parameters and multiply-accumulates exactly, by instantiating models on the ``meta`` device.

Meta tensors carry shapes but no storage, so even ``tv:vgg16`` (138M parameters) is counted at once and a
forward pass on a meta input yields exact MACs through torch's FLOP counter (MACs = FLOPs / 2; we say MACs).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from dlbench.models import ModelSpec, get_model_spec

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


def build_meta(spec: ModelSpec, input_shape, num_classes: int, settings=None) -> nn.Module:
    """``spec``'s model with its weights on the meta device: shapes without storage, counted at once."""
    try:
        with torch.device("meta"):
            return spec.build(input_shape, num_classes, settings)
    except (
        NotImplementedError
    ):  # the builder computed sizes with tensors (torchvision's regnets call .tolist())
        with _WeightsOnMeta():
            return spec.build(input_shape, num_classes, settings)


class _WeightsOnMeta(TorchFunctionMode):
    """Allocate weights and buffers on the meta device and leave every other tensor where it was.

    Modules allocate their parameters and buffers with these factories and no device; a builder's own size
    arithmetic (``torch.arange(depth) * w_a ...tolist()``) uses others and stays on the CPU, where it has data.
    """

    FACTORIES = frozenset({torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in self.FACTORIES and kwargs.get("device") is None:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


def is_bias(name: str) -> bool:
    """Whether parameter ``name`` is an additive bias, the part ``--no-bias`` leaves out.

    An additive bias is a vector (or table) added to a layer's output rather than multiplied with its input: a
    layer's ``bias``, attention's ``in_proj_bias``, ``bias_k`` and ``bias_v``, Swin's
    ``relative_position_bias_table``, and a normalisation layer's shift (its ``bias``, beta). Everything
    multiplicative is a weight and is counted: kernels, matrices, a normalisation layer's scale (gamma), embeddings.
    """
    return "bias" in name.rsplit(".", 1)[-1]


def count_parameters(model: nn.Module, bias: bool = True) -> tuple[int, int]:
    """(total, trainable); ``model.parameters()`` yields a shared tensor once, so it is counted once.

    ``bias=False`` leaves out the additive biases (:func:`is_bias`), the convention of hand formulas.
    """
    total = trainable = 0
    for name, p in model.named_parameters():
        if not bias and is_bias(name):
            continue
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def count_macs(model: nn.Module, input_shape) -> int | None:
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        x = torch.empty(1, *input_shape, device="meta")
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        return counter.get_total_flops() // 2
    except Exception:  # an op without a meta kernel: report no MACs rather than fail the count
        return None
    finally:
        model.train(was_training)


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
