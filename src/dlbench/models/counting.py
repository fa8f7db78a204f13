"""Exact parameter and multiply-accumulate counts, from instantiating a model on the ``meta`` device.

Meta tensors carry shapes but no storage, so even ``tv:vgg16`` (138M parameters) is built at once, and a
forward pass on a meta input yields exact MACs through torch's FLOP counter (MACs = FLOPs / 2).
"""

from __future__ import annotations

import torch
from torch import nn

from dlbench.models._registry import ModelSpec


def build_meta(spec: ModelSpec, input_shape, num_classes: int, settings=None) -> nn.Module:
    """``spec`` built on the meta device: shapes without storage (and no draw from the random generator)."""
    with torch.device("meta"):
        return spec.build(input_shape, num_classes, settings)


def count_parameters(model: nn.Module, bias: bool = True) -> tuple[int, int]:
    """(total, trainable); ``model.parameters()`` yields a shared tensor once, so it is counted once."""
    total = trainable = 0
    for name, p in model.named_parameters():
        if not bias and name.rsplit(".", 1)[-1] == "bias":
            continue
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return total, trainable


def count_macs(model: nn.Module, input_shape) -> int | None:
    """Multiply-accumulates for one image of ``input_shape`` (C, H, W); None if an op has no meta kernel."""
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
