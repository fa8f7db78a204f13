"""The fused twins of single layers: K layers of one kind as one module, each trial's weights in its own slice.

A fused model's activations take one of three layouts, named by where the trials sit:

- *stacked* ``(K, B, ...)``: the trials lead (a sequential model's linear layers: one ``torch.baddbmm``);
- *batch* ``(K*B, ...)``: the trials are blocks of the batch, trial k's images at ``k*B..(k+1)*B-1``, so a
  model's own forward (transposes over tokens, means over a dimension) runs unchanged;
- *channels* ``(B, K*C, ...)``: the trials are blocks of the channels, so a convolution with ``groups=K`` reads
  and writes only each trial's own C channels, batch norm keeps each trial's statistics, and residual sums,
  pooling and ``flatten(1)`` keep the blocks apart.

Each leaf is built from the K members' layers (their weights copied in), takes the layout it is used in, and maps
trial k's slice to the ordinary layer's ``state_dict`` (``member``, ``load_member``). Every parameter is K-major
in its first dimension, so ``t.view(K, -1)`` is one row per trial for the fused optimizer. Elementwise layers,
dropout (a mask drawn for every element: each trial its own draws), pooling and ``Flatten(1)`` are not fused:
they work in every layout as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.SiLU, nn.ELU, nn.SELU, nn.Mish)
ELEMENTWISE += (nn.Softplus, nn.Identity, nn.Dropout)
POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d)
FUSED = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)


def to_channels(x: torch.Tensor, k: int) -> torch.Tensor:
    """(K*B, C, ...) -> (B, K*C, ...)."""
    kb, c, rest = x.shape[0], x.shape[1], x.shape[2:]
    return x.view(k, kb // k, c, *rest).transpose(0, 1).reshape(kb // k, k * c, *rest)


def from_channels(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, K*C, ...) -> (K*B, C, ...)."""
    b, kc, rest = x.shape[0], x.shape[1], x.shape[2:]
    return x.view(b, k, kc // k, *rest).transpose(0, 1).reshape(k * b, kc // k, *rest)


class StackedLinear(nn.Module):
    """K linear layers: weight (K, in, out), bias (K, 1, out)."""

    def __init__(self, layers: list[nn.Linear], layout: str):
        super().__init__()
        self.k, self.layout = len(layers), layout
        self.weight = nn.Parameter(torch.stack([m.weight.detach().t() for m in layers]).contiguous())
        bias = [m.bias for m in layers]
        self.bias = None if bias[0] is None else nn.Parameter(torch.stack([b.detach()[None] for b in bias]))

    def _mm(self, x: torch.Tensor) -> torch.Tensor:  # (K, n, in) -> (K, n, out)
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layout == "stacked":  # (K, B, in)
            return self._mm(x)
        if self.layout == "batch":  # (K*B, ..., in)
            return self._mm(x.reshape(self.k, -1, x.shape[-1])).view(*x.shape[:-1], -1)
        b = x.shape[0]  # channels: (B, K*in)
        return self._mm(x.view(b, self.k, -1).transpose(0, 1)).transpose(0, 1).reshape(b, -1)

    def member(self, k: int) -> dict[str, torch.Tensor]:
        out = {"weight": self.weight[k].t()}
        if self.bias is not None:
            out["bias"] = self.bias[k, 0]
        return out

    def load_member(self, k: int, sd: dict) -> None:
        self.weight[k].copy_(sd["weight"].t())
        if self.bias is not None:
            self.bias[k, 0].copy_(sd["bias"])


class StackedLayerNorm(nn.Module):
    """K layer norms over the last dimensions, in the batch or stacked layout: weight and bias (K, *D)."""

    def __init__(self, layers: list[nn.LayerNorm]):
        super().__init__()
        first = layers[0]
        self.k, self.shape, self.eps = len(layers), first.normalized_shape, first.eps
        w, b = first.weight, getattr(first, "bias", None)
        self.weight = None if w is None else nn.Parameter(torch.stack([m.weight.detach() for m in layers]))
        self.bias = None if b is None else nn.Parameter(torch.stack([m.bias.detach() for m in layers]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x, self.shape, eps=self.eps)
        if self.weight is None and self.bias is None:
            return y
        z = y.reshape(self.k, -1, *self.shape)
        if self.weight is not None:
            z = z * self.weight.view(self.k, 1, *self.shape)
        if self.bias is not None:
            z = z + self.bias.view(self.k, 1, *self.shape)
        return z.view(y.shape)

    def member(self, k: int) -> dict[str, torch.Tensor]:
        return {n: t[k] for n, t in (("weight", self.weight), ("bias", self.bias)) if t is not None}

    def load_member(self, k: int, sd: dict) -> None:
        for n, t in (("weight", self.weight), ("bias", self.bias)):
            if t is not None:
                t[k].copy_(sd[n])


class _Sliced:
    """A layer whose K*C channels are K blocks of C (grouped convolution, wide batch norm): trial k's
    weights and statistics are block k of every tensor, except one shared ``num_batches_tracked`` (every
    trial took the same steps)."""

    k: int
    layout: str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layout == "channels":
            return super().forward(x)
        if self.layout == "batch":
            return from_channels(super().forward(to_channels(x, self.k)), self.k)
        b = x.shape[1]  # stacked (K, B, F): batch norm 1d after a stacked linear layer
        out = super().forward(x.transpose(0, 1).reshape(b, -1))
        return out.view(b, self.k, -1).transpose(0, 1)

    def member(self, k: int) -> dict[str, torch.Tensor]:
        return {n: _block(t, k, self.k, n) for n, t in self.state_dict().items()}

    def load_member(self, k: int, sd: dict) -> None:
        for n, t in self.state_dict().items():
            if n != "num_batches_tracked":
                _block(t, k, self.k, n).copy_(sd[n])


def _block(t: torch.Tensor, k: int, n: int, name: str) -> torch.Tensor:
    if name == "num_batches_tracked":
        return t
    per = t.shape[0] // n
    return t[k * per : (k + 1) * per]


class GroupedConv(_Sliced, nn.Conv2d):
    """K convolutions as one with ``groups = K * groups``."""


class WideBatchNorm1d(_Sliced, nn.BatchNorm1d):
    """K batch norms over K*C features."""


class WideBatchNorm2d(_Sliced, nn.BatchNorm2d):
    """K batch norms over K*C channels."""


def _grouped_conv(layers: list[nn.Conv2d], layout: str) -> GroupedConv:
    m, k = layers[0], len(layers)
    conv = GroupedConv(
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
    conv.k, conv.layout = k, layout
    with torch.no_grad():
        conv.weight.copy_(torch.cat([c.weight for c in layers]))
        if m.bias is not None:
            conv.bias.copy_(torch.cat([c.bias for c in layers]))
    return conv


def _wide_norm(layers: list[nn.modules.batchnorm._BatchNorm], layout: str) -> nn.Module:
    m, k = layers[0], len(layers)
    cls = WideBatchNorm2d if isinstance(m, nn.BatchNorm2d) else WideBatchNorm1d
    bn = cls(k * m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine, dtype=m.running_mean.dtype)
    bn.k, bn.layout = k, layout
    with torch.no_grad():
        for name, _ in [*bn.named_parameters(), *bn.named_buffers()]:
            if name != "num_batches_tracked":
                getattr(bn, name).copy_(torch.cat([getattr(x, name) for x in layers]))
    return bn


def fuse_leaf(layers: list[nn.Module], layout: str) -> nn.Module | None:
    """The fused twin of K equal layers in ``layout`` (None: the first layer serves all K as it is)."""
    first = layers[0]
    if isinstance(first, nn.Linear):
        return StackedLinear(layers, layout)
    if isinstance(first, nn.Conv2d):
        return _grouped_conv(layers, "batch" if layout == "batch" else "channels")
    if isinstance(first, nn.LayerNorm):
        return StackedLayerNorm(layers)
    if isinstance(first, nn.BatchNorm1d | nn.BatchNorm2d):
        return _wide_norm(layers, layout)
    return None


def unsupported_leaf(module: nn.Module, layout: str) -> str | None:
    """Why ``module`` (a layer without children) cannot be fused in ``layout`` (None: it can)."""
    name = type(module).__name__
    if isinstance(module, nn.Flatten):
        return "a partial Flatten" if (module.start_dim, module.end_dim) != (1, -1) else None
    if isinstance(module, nn.LayerNorm) and layout == "channels":
        return "a LayerNorm over mixed channels"
    if isinstance(module, nn.Conv2d) and module.padding_mode != "zeros":
        return f"a {name} with padding_mode {module.padding_mode}"
    if isinstance(module, (*FUSED, *ELEMENTWISE, *POOLS)):
        return None
    if isinstance(module, nn.Sequential):  # an empty one, the identity (resnet's shortcut where shapes match)
        return None
    return f"a {name}"  # unknown: it may mix the trials' activations


def member_state(root: nn.Module, k: int) -> dict[str, torch.Tensor]:
    """Trial ``k``'s weights under ``root`` as the family's ordinary state_dict (CPU copies)."""
    out: dict[str, torch.Tensor] = {}
    for path, mod in root.named_modules():
        if hasattr(mod, "member") and mod is not root:
            part = mod.member(k)
            out.update({f"{path}.{n}": t.detach().to("cpu", copy=True).contiguous() for n, t in part.items()})
    return out


@torch.no_grad()
def load_member_state(root: nn.Module, k: int, sd: dict[str, torch.Tensor]) -> None:
    """Put an ordinary state_dict (from :func:`member_state`) back into trial ``k``'s slot under ``root``."""
    for path, mod in root.named_modules():
        if hasattr(mod, "load_member") and mod is not root:
            mod.load_member(k, {n[len(path) + 1 :]: t for n, t in sd.items() if n.startswith(path + ".")})
