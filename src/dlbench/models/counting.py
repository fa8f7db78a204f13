"""Exact parameter and multiply-accumulate counts, from instantiating a model on the ``meta`` device.

Meta tensors carry shapes but no storage, so even ``tv:vgg16`` (138M parameters) is built at once; MACs are
torch's FLOP count of one forward pass halved (:mod:`dlbench.models.macs`: on zeros on the CPU where that is
small, else on the meta device).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from dlbench.models._registry import ModelSpec


def build_meta(spec: ModelSpec, input_shape, num_classes: int, settings=None) -> nn.Module:
    """``spec`` built on the meta device: shapes without storage (and no draw from the random generator)."""
    try:
        with torch.device("meta"):
            return spec.build(input_shape, num_classes, settings)
    except NotImplementedError:  # the builder computed sizes with tensors (torchvision's regnets .tolist())
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
    """Multiply-accumulates for one image of ``input_shape`` (C, H, W); None if the forward pass fails."""
    return macs_or_error(model, input_shape)[0]


def macs_or_error(model: nn.Module, input_shape) -> tuple[int | None, str | None]:
    """(MACs for one image of ``input_shape``, None), or (None, why the meta forward pass failed, one line):
    an input too small for the model's kernels and pooling, or an op without a meta kernel."""
    from dlbench.models.macs import forward_flops

    try:
        return forward_flops(model, input_shape) // 2, None
    except Exception as exc:  # report no MACs, and why, rather than fail the count
        lines = str(exc).strip().splitlines()
        return None, f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"
