"""Which model families fuse, and how: the mlp and cnn as a sequence of layers, the others as a tree whose own
forward runs on one layout of activations (:mod:`.tree`). A family is listed here only once its forward is known
to keep the trials apart in that layout; tests/test_fused.py checks each against its members trained alone."""

from __future__ import annotations

from torch import nn

from dlbench.engine.fused.sequential import FusedSequential, unsupported_sequential
from dlbench.engine.fused.tree import FusedTree, unsupported_tree

LAYOUTS = {
    "mlp": "sequential",
    "cnn": "sequential",
    "resnet": "channels",
    "vgg": "channels",
    "mlpmixer": "batch",
}


def unsupported_layer(model: nn.Module, family: str) -> str | None:
    """Why a model of ``family`` (one of :data:`LAYOUTS`) cannot be fused (None: it can)."""
    layout = LAYOUTS[family]
    if layout == "sequential":
        return unsupported_sequential(model)
    return unsupported_tree(model, layout)


def fuse_models(members: list[nn.Module], family: str) -> FusedSequential | FusedTree:
    """The K members (same architecture, own weights) as one fused model."""
    layout = LAYOUTS[family]
    if layout == "sequential":
        return FusedSequential(members)
    return FusedTree(members, layout)
