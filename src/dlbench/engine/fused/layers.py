"""K copies of one sequential model as one module: stacked linear layers, grouped convolutions, per-trial BN.

A fused model keeps two layouts of its activations: *stacked* ``(K, B, ...)`` for linear layers (one
``torch.baddbmm`` over a ``(K, in, out)`` weight) and *channels* ``(B, K*C, H, W)`` for convolutions (one
convolution with ``groups=K``, so trial k reads and writes only its own C channels), batch normalisation
(``K*C`` channels: each trial keeps its own statistics) and pooling. Elementwise layers (activations, dropout)
work in either layout; dropout draws its mask for every element, so each trial gets its own draws.

Each trial's weights map one to one onto the family's ordinary ``state_dict`` (:meth:`FusedSequential.member`
and :meth:`FusedSequential.load_member`), so a fused trial is stored exactly like one trained alone.
"""

from __future__ import annotations

import torch
from torch import nn

ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.SiLU, nn.ELU, nn.SELU, nn.Mish)
ELEMENTWISE += (nn.Softplus, nn.Identity, nn.Dropout)
POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)


class StackedLinear(nn.Module):
    """K linear layers: weight (K, in, out), bias (K, 1, out); input and output in the stacked layout."""

    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        self.weight = nn.Parameter(torch.stack([m.weight.detach().t() for m in layers]).contiguous())
        bias = [m.bias for m in layers]
        self.bias = None if bias[0] is None else nn.Parameter(torch.stack([b.detach()[None] for b in bias]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)

    def member(self, k: int) -> dict[str, torch.Tensor]:
        out = {"weight": self.weight[k].t()}
        if self.bias is not None:
            out["bias"] = self.bias[k, 0]
        return out

    def load_member(self, k: int, sd: dict) -> None:
        self.weight[k].copy_(sd["weight"].t())
        if self.bias is not None:
            self.bias[k, 0].copy_(sd["bias"])


def _grouped_conv(layers: list[nn.Conv2d]) -> nn.Conv2d:
    m, k = layers[0], len(layers)
    conv = nn.Conv2d(
        k * m.in_channels,
        k * m.out_channels,
        m.kernel_size,
        stride=m.stride,
        padding=m.padding,
        dilation=m.dilation,
        groups=k * m.groups,
        bias=m.bias is not None,
        padding_mode=m.padding_mode,
        dtype=m.weight.dtype,
    )
    with torch.no_grad():
        conv.weight.copy_(torch.cat([c.weight for c in layers]))
        if m.bias is not None:
            conv.bias.copy_(torch.cat([c.bias for c in layers]))
    return conv


def _wide_norm(layers: list[nn.modules.batchnorm._BatchNorm]) -> nn.Module:
    m, k = layers[0], len(layers)
    cls = type(m)
    bn = cls(k * m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine, dtype=m.running_mean.dtype)
    with torch.no_grad():
        for name, _ in [*bn.named_parameters(), *bn.named_buffers()]:
            if name != "num_batches_tracked":
                getattr(bn, name).copy_(torch.cat([getattr(x, name) for x in layers]))
    return bn


def unsupported_layer(model: nn.Module) -> str | None:
    """The first layer a fused model cannot hold (None: the whole model fuses)."""
    if not isinstance(model, nn.Sequential):
        return f"a {type(model).__name__}, not a sequence of layers"
    for name, m in model.named_children():
        ok = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.Flatten, *ELEMENTWISE, *POOLS)
        if not isinstance(m, ok):
            return f"layer {name} ({type(m).__name__})"
        if isinstance(m, nn.Flatten) and (m.start_dim, m.end_dim) != (1, -1):
            return f"layer {name} (a partial Flatten)"
    return None


class FusedSequential(nn.Module):
    """K copies of one ``nn.Sequential`` (same architecture, own weights) as one model.

    ``forward`` takes ``(K, B, C, H, W)`` (an expanded view when every trial sees the same batch) and returns
    ``(K, B, classes)``.
    """

    def __init__(self, members: list[nn.Sequential]):
        super().__init__()
        self.k = len(members)
        self.channels_last = False  # the channels layout in memory (set with the weights' format)
        self.names = [name for name, _ in members[0].named_children()]
        self.kinds: list[str] = []
        for name in self.names:
            layers = [getattr(m, name) for m in members]
            first = layers[0]
            if isinstance(first, nn.Linear):
                mod, kind = StackedLinear(layers), "linear"
            elif isinstance(first, nn.Conv2d):
                mod, kind = _grouped_conv(layers), "conv"
            elif isinstance(first, nn.BatchNorm1d):
                mod, kind = _wide_norm(layers), "bn1d"
            elif isinstance(first, nn.BatchNorm2d):
                mod, kind = _wide_norm(layers), "bn2d"
            elif isinstance(first, nn.Flatten):
                mod, kind = nn.Identity(), "flatten"
            elif isinstance(first, POOLS):
                mod, kind = first, "pool"
            else:
                mod, kind = first, "elementwise"
            self.add_module(name, mod)
            self.kinds.append(kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.k
        stacked = True  # (K, B, ...) or (B, K*C, H, W)
        for name, kind in zip(self.names, self.kinds, strict=True):
            mod = getattr(self, name)
            if kind in ("conv", "bn2d", "pool") and stacked:
                x = x.transpose(0, 1).flatten(1, 2)  # (B, K*C, H, W): trial k's channels are k*C..(k+1)*C-1
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                stacked = False
            if kind == "flatten":
                x = x.flatten(2) if stacked else x.unflatten(1, (k, -1)).flatten(2).transpose(0, 1)
                stacked = True
            elif kind == "bn1d":
                b = x.shape[1]
                x = mod(x.transpose(0, 1).reshape(b, -1)).view(b, k, -1).transpose(0, 1)
            else:
                x = mod(x)
        return x

    def trial_view(self, t: torch.Tensor) -> torch.Tensor:
        """Any parameter (or its gradient or optimizer state) as (K, numel per trial)."""
        return t.view(self.k, -1)

    def member(self, k: int) -> dict[str, torch.Tensor]:
        """Trial ``k``'s weights as the family's ordinary state_dict (CPU copies)."""
        out: dict[str, torch.Tensor] = {}
        for name, kind in zip(self.names, self.kinds, strict=True):
            mod = getattr(self, name)
            if kind == "linear":
                part = mod.member(k)
            elif kind in ("conv", "bn1d", "bn2d"):
                part = {n: _slice(t, k, self.k, n) for n, t in mod.state_dict().items()}
            else:
                part = {}
            out.update({f"{name}.{n}": t.detach().to("cpu", copy=True).contiguous() for n, t in part.items()})
        return out

    @torch.no_grad()
    def load_member(self, k: int, sd: dict[str, torch.Tensor]) -> None:
        """Put an ordinary state_dict (from :meth:`member`) back into trial ``k``'s slot."""
        for name, kind in zip(self.names, self.kinds, strict=True):
            mod = getattr(self, name)
            part = {n[len(name) + 1 :]: t for n, t in sd.items() if n.startswith(name + ".")}
            if kind == "linear":
                mod.load_member(k, part)
            elif kind in ("conv", "bn1d", "bn2d"):
                for n, t in mod.state_dict().items():
                    if n != "num_batches_tracked":
                        _slice(t, k, self.k, n).copy_(part[n])


def _slice(t: torch.Tensor, k: int, n: int, name: str) -> torch.Tensor:
    if name == "num_batches_tracked":  # one counter for the group: every trial took the same steps
        return t
    per = t.shape[0] // n
    return t[k * per : (k + 1) * per]
