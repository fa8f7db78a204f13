"""What an equivariance check measures when no model is given: a random convolution (optionally with
rot90-symmetric kernels), a max pooling, an MLP or a stack of convolutions, each in float64.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dlbench.errors import InvalidSettingError, UsageError

LAYERS = ("conv", "pool", "mlp", "stack")
PADDINGS = ("zero", "circular")


def _padding_mode(padding: str) -> str:
    if padding not in PADDINGS:
        raise UsageError(f"--padding must be zero or circular, got '{padding}'")
    return "zeros" if padding == "zero" else "circular"


def symmetrize(conv: nn.Conv2d) -> nn.Conv2d:
    """Average each kernel over its four rotations by 90 degrees: then conv commutes with rot90 exactly."""
    with torch.no_grad():
        w = conv.weight
        conv.weight.copy_(sum(torch.rot90(w, k, dims=(-2, -1)) for k in range(4)) / 4)
    return conv


def random_conv(
    c_in: int, channels: int, kernel_size: int, padding: str, symmetric: bool, bias: bool = False
):
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise InvalidSettingError(
            f"--kernel-size must be odd (so the output keeps the input's size and centre), got {kernel_size}"
        )
    conv = nn.Conv2d(
        c_in, channels, kernel_size, padding=kernel_size // 2, padding_mode=_padding_mode(padding), bias=bias
    ).double()
    return symmetrize(conv) if symmetric else conv


class Pool(nn.Module):
    """Max pooling whose padding is zero (PyTorch's -inf) or circular."""

    def __init__(self, kernel_size: int, stride: int, padding: str):
        super().__init__()
        self.k, self.s, self.mode = kernel_size, stride, _padding_mode(padding)
        self.pl = (kernel_size - 1) // 2
        self.pr = max(0, kernel_size - stride - self.pl)

    def forward(self, x):
        if self.mode == "circular":
            x = F.pad(x, (self.pl, self.pr, self.pl, self.pr), mode="circular")
            return F.max_pool2d(x, self.k, self.s)
        return F.max_pool2d(x, self.k, self.s, padding=self.pl)


def build_target(
    layer: str,
    c_in: int,
    input_hw,
    *,
    kernel_size: int = 3,
    channels: int = 8,
    padding: str = "zero",
    symmetric: bool = False,
    depth: int = 3,
    stride: int = 2,
    bias: bool = False,
    seed: int = 0,
) -> nn.Module:
    """A random float64 layer: conv, pool (max pool), mlp (on flattened pixels) or stack (conv+ReLU)."""
    if layer not in LAYERS:
        from dlbench.errors import UnknownNameError

        raise UnknownNameError("layer", layer, LAYERS, hint="or --model NAME / --run KEY")
    torch.manual_seed(seed)
    if layer == "conv":
        return random_conv(c_in, channels, kernel_size, padding, symmetric, bias)
    if layer == "pool":
        if stride < 1 or kernel_size < 1:
            raise InvalidSettingError("pool needs --kernel-size and --stride of at least 1")
        h, w = input_hw
        if h % stride or w % stride:
            raise InvalidSettingError(f"--stride {stride} does not divide the image size {h}x{w}")
        return Pool(kernel_size, stride, padding)
    if layer == "mlp":
        h, w = input_hw
        return nn.Sequential(
            nn.Flatten(), nn.Linear(c_in * h * w, 256), nn.ReLU(), nn.Linear(256, 10)
        ).double()
    if depth < 1:
        raise InvalidSettingError(f"--depth must be at least 1, got {depth}")
    mods = []
    for i in range(depth):
        mods += [
            random_conv(c_in if i == 0 else channels, channels, kernel_size, padding, symmetric, bias),
            nn.ReLU(),
        ]
    return nn.Sequential(*mods)


def receptive_margin(modules) -> int:
    """Output pixels within the receptive-field radius of the border: where zero padding reaches."""
    rf, jump = 1, 1
    for m in modules:
        if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d | Pool):
            k = m.kernel_size if not isinstance(m, Pool) else m.k
            s = m.stride if not isinstance(m, Pool) else m.s
            k = k[0] if isinstance(k, tuple) else k
            s = s[0] if isinstance(s, tuple) else s
            d = m.dilation[0] if isinstance(m, nn.Conv2d) else 1
            rf += (k - 1) * d * jump
            jump *= s
    return math.ceil((rf // 2) / jump)
