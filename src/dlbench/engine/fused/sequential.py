"""K copies of one ``nn.Sequential`` (the mlp and cnn families) as one model.

Its activations switch layout as its layers need (see :mod:`.leaves`): *stacked* ``(K, B, ...)`` for linear
layers and batch norm 1d, so an input that every trial shares stays an expanded view (no copy per trial), and
*channels* ``(B, K*C, H, W)`` from the first convolution, batch norm 2d or pooling on, until ``Flatten``.
"""

from __future__ import annotations

import torch
from torch import nn

from dlbench.engine.fused.leaves import POOLS, fuse_leaf, load_member_state, member_state, unsupported_leaf

CHANNELS = (nn.Conv2d, nn.BatchNorm2d, *POOLS)  # layers that take the channels layout


def unsupported_sequential(model: nn.Module) -> str | None:
    """The first layer :class:`FusedSequential` cannot hold (None: the whole model fuses)."""
    if not isinstance(model, nn.Sequential):
        return f"a {type(model).__name__}, not a sequence of layers"
    for name, m in model.named_children():
        why = unsupported_leaf(m, "stacked") if not list(m.children()) else f"a {type(m).__name__}"
        if why:
            return f"layer {name} ({why})"
    return None


class FusedSequential(nn.Module):
    """``forward`` takes ``(K, B, C, H, W)`` (an expanded view when every trial sees the same batch) and returns
    ``(K, B, classes)``."""

    def __init__(self, members: list[nn.Sequential]):
        super().__init__()
        self.k = len(members)
        self.channels_last = False  # the channels layout in memory (set with the weights' format)
        self.names = [name for name, _ in members[0].named_children()]
        self.channels: list[bool] = []  # per layer: takes the channels layout
        for name in self.names:
            layers = [getattr(m, name) for m in members]
            takes_channels = isinstance(layers[0], CHANNELS)
            fused = fuse_leaf(layers, "channels" if takes_channels else "stacked")
            self.add_module(name, fused if fused is not None else layers[0])
            self.channels.append(takes_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stacked = True  # (K, B, ...) or (B, K*C, H, W)
        for name, takes_channels in zip(self.names, self.channels, strict=True):
            mod = getattr(self, name)
            if takes_channels and stacked:
                x = x.transpose(0, 1).flatten(1, 2)  # trial k's channels are k*C..(k+1)*C-1
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                stacked = False
            if isinstance(mod, nn.Flatten):
                x = x.flatten(2) if stacked else x.unflatten(1, (self.k, -1)).flatten(2).transpose(0, 1)
                stacked = True
            else:
                x = mod(x)
        return x

    def trial_parameters(self):
        """(name, parameter) pairs named as in one member."""
        return self.named_parameters()

    def trial_view(self, t: torch.Tensor) -> torch.Tensor:
        """Any parameter (or its gradient or optimizer state) as (K, numel per trial)."""
        return t.view(self.k, -1)

    def member(self, k: int) -> dict[str, torch.Tensor]:
        """Trial ``k``'s weights as the family's ordinary state_dict (CPU copies)."""
        return member_state(self, k)

    def load_member(self, k: int, sd: dict[str, torch.Tensor]) -> None:
        """Put an ordinary state_dict (from :meth:`member`) back into trial ``k``'s slot."""
        load_member_state(self, k, sd)
