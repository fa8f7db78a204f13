"""A configurable plain convolutional net: stages of conv (+BN) + activation, then pooling, then a head.

Stage widths come from ``channels`` when it is given (``--set channels=16/32/45``), otherwise from
``depth`` stages starting at ``width`` channels and multiplied by ``growth`` at each stage
(depth=3 width=32 growth=2 gives 32/64/128).
"""

from __future__ import annotations

from collections import OrderedDict

from dlbench.models._layers import make_activation, positive, require
from dlbench.models._registry import register_model
from dlbench.models.anatomy import sequential_anatomy

POOLS = ("max", "avg", "none")
HEADS = ("flatten", "avg")


def stage_channels(depth: int, width: int, growth: float, channels: tuple) -> list[int]:
    if channels:
        return [int(c) for c in channels]
    positive("depth", depth)
    positive("width", width)
    require(growth > 0, f"growth must be positive, got {growth}")
    return [max(1, round(width * growth**i)) for i in range(depth)]


def _padding(padding: str, kernel_size: int) -> int | str:
    text = str(padding).strip().lower()
    if text in ("same", "valid"):
        return text
    require(text.isdigit(), f"padding must be same, valid or a non-negative integer, got '{padding}'")
    return int(text)


def _out_size(size: int, kernel_size: int, padding: int | str) -> int:
    if padding == "same":
        return size
    pad = 0 if padding == "valid" else padding
    return size + 2 * pad - kernel_size + 1


@register_model(
    "cnn",
    family="cnn",
    description="plain conv net: stages of conv+BN+act+pool, then an MLP head",
    anatomy=sequential_anatomy,  # conv1 (or conv1_1) first; blocks: conv, bn and fc1 layers (head excluded)
    default_dataset="fashion-mnist",
)
def cnn(
    input_shape,
    num_classes,
    *,
    depth: int = 3,
    width: int = 32,
    growth: float = 2.0,
    channels: tuple = (),
    kernel_size: int = 3,
    padding: str = "same",
    convs_per_stage: int = 1,
    pool: str = "max",
    batchnorm: bool = True,
    activation: str = "relu",
    head: str = "flatten",
    head_width: int = 128,
    dropout: float = 0.0,
    bias: bool = True,
):
    c_in, h, w = input_shape
    widths = stage_channels(depth, width, growth, channels)
    for c in widths:
        positive("every entry of channels", c)
    positive("kernel_size", kernel_size)
    positive("convs_per_stage", convs_per_stage)
    require(pool in POOLS, f"pool must be one of {', '.join(POOLS)}, got '{pool}'")
    require(head in HEADS, f"head must be one of {', '.join(HEADS)}, got '{head}'")
    require(head_width >= 0, f"head_width must be 0 (no hidden layer) or positive, got {head_width}")
    require(0.0 <= dropout < 1.0, f"dropout must be in [0, 1), got {dropout}")
    pad = _padding(padding, kernel_size)
    make_activation(activation)
    from torch import nn

    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for s, c_out in enumerate(widths, start=1):
        for j in range(1, convs_per_stage + 1):
            name = f"conv{s}" if convs_per_stage == 1 else f"conv{s}_{j}"
            h, w = _out_size(h, kernel_size, pad), _out_size(w, kernel_size, pad)
            require(
                h >= 1 and w >= 1,
                f"kernel_size {kernel_size} with padding {padding} leaves no pixels at stage {s} "
                f"(input {input_shape[1]}x{input_shape[2]}); use padding=same or a smaller kernel",
            )
            layers[name] = nn.Conv2d(c_in, c_out, kernel_size, padding=pad, bias=bias and not batchnorm)
            if batchnorm:
                layers[name.replace("conv", "bn")] = nn.BatchNorm2d(c_out)
            layers[name.replace("conv", "act")] = make_activation(activation)
            c_in = c_out
        if pool != "none":
            require(
                h >= 2 and w >= 2,
                f"{len(widths)} pooled stages shrink a {input_shape[1]}x{input_shape[2]} image to nothing; "
                "use fewer stages or pool=none",
            )
            layers[f"pool{s}"] = nn.MaxPool2d(2) if pool == "max" else nn.AvgPool2d(2)
            h, w = h // 2, w // 2

    if head == "avg":
        layers["gap"] = nn.AdaptiveAvgPool2d(1)
        h = w = 1
    layers["flatten"] = nn.Flatten()
    fan_in = c_in * h * w
    if head_width:
        layers["fc1"] = nn.Linear(fan_in, head_width, bias=bias)
        layers["fc_act"] = make_activation(activation)
        fan_in = head_width
    if dropout:
        layers["drop"] = nn.Dropout(dropout)
    layers["head"] = nn.Linear(fan_in, num_classes, bias=bias)
    return nn.Sequential(layers)
