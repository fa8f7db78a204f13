"""K copies of a model that is not one sequence of layers (resnet18, VGG, MLP-Mixer) as one model.

The fused model is a copy of the first member whose layers are swapped for their fused twins
(:mod:`.leaves`); the family's own ``forward`` then runs unchanged on activations in one layout throughout:
*channels* ``(B, K*C, H, W)`` for convolutional networks (a residual sum, ``flatten(1)`` and global pooling keep
the trials' channel blocks apart), *batch* ``(K*B, ...)`` for a model that moves its dimensions around (the
Mixer's token mixing transposes tokens and channels; each trial's rows stay its own block of the batch).
This holds only for a forward built from the layers and layout-blind tensor operations: the families are
listed in :mod:`.families`, each with the layout its forward allows.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dlbench.engine.fused.leaves import fuse_leaf, load_member_state, member_state, unsupported_leaf


def unsupported_tree(model: nn.Module, layout: str) -> str | None:
    """The first layer :class:`FusedTree` cannot hold in ``layout`` (None: the whole model fuses)."""
    for name, m in model.named_modules():
        if not list(m.children()) and m is not model:
            why = unsupported_leaf(m, layout)
            if why:
                return f"layer {name} ({why})"
    return None


class FusedTree(nn.Module):
    """``forward`` takes ``(K, B, C, H, W)`` and returns ``(K, B, classes)``; ``body`` is the fused copy."""

    def __init__(self, members: list[nn.Module], layout: str):
        super().__init__()
        self.k, self.layout = len(members), layout
        self.channels_last = False  # the channels layout in memory (set with the weights' format)
        body = copy.deepcopy(members[0])
        trees = [dict(m.named_modules()) for m in members]
        for name, first in list(members[0].named_modules()):
            if list(first.children()) or not name:
                continue
            fused = fuse_leaf([t[name] for t in trees], layout)
            if fused is not None:
                parent, _, attr = name.rpartition(".")
                setattr(body.get_submodule(parent), attr, fused)
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, b = x.shape[:2]
        if self.layout == "batch":
            return self.body(x.reshape(k * b, *x.shape[2:])).view(k, b, -1)
        x = x.transpose(0, 1).flatten(1, 2)  # (B, K*C, H, W)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.body(x).view(b, k, -1).transpose(0, 1)

    def trial_parameters(self):
        """(name, parameter) pairs named as in one member."""
        return self.body.named_parameters()

    def trial_view(self, t: torch.Tensor) -> torch.Tensor:
        """Any parameter (or its gradient or optimizer state) as (K, numel per trial)."""
        return t.view(self.k, -1)

    def member(self, k: int) -> dict[str, torch.Tensor]:
        """Trial ``k``'s weights as the family's ordinary state_dict (CPU copies)."""
        return member_state(self.body, k)

    def load_member(self, k: int, sd: dict[str, torch.Tensor]) -> None:
        """Put an ordinary state_dict (from :meth:`member`) back into trial ``k``'s slot."""
        load_member_state(self.body, k, sd)
