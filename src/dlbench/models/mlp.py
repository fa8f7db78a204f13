"""Multi-layer perceptron: flatten, ``depth`` hidden layers of ``width`` units, a linear head."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import TYPE_CHECKING

from dlbench.models._layers import make_activation, positive, require
from dlbench.models._registry import register_model
from dlbench.models.anatomy import sequential_anatomy

if TYPE_CHECKING:
    from torch import nn


def _mlp(input_shape, num_classes, depth, width, activation, batchnorm, dropout, bias) -> nn.Sequential:
    from torch import nn

    positive("depth", depth)
    positive("width", width)
    require(0.0 <= dropout < 1.0, f"dropout must be in [0, 1), got {dropout}")
    make_activation(activation)  # validate the name before building anything
    layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    fan_in = math.prod(input_shape)
    for i in range(1, depth + 1):
        layers[f"fc{i}"] = nn.Linear(fan_in, width, bias=bias)
        if batchnorm:
            layers[f"bn{i}"] = nn.BatchNorm1d(width)
        layers[f"act{i}"] = make_activation(activation)
        if dropout:
            layers[f"drop{i}"] = nn.Dropout(dropout)
        fan_in = width
    layers["head"] = nn.Linear(fan_in, num_classes, bias=bias)
    return nn.Sequential(layers)


@register_model(
    "mlp",
    family="mlp",
    description="MLP: depth hidden layers of width units (depth=2 width=256 is the 784-256-256-10 net)",
    anatomy=sequential_anatomy,  # fc1 reads the pixels; blocks: fc1, bn1, fc2, ... (head excluded)
    default_dataset="fashion-mnist",
    conv=False,
)
def mlp(
    input_shape,
    num_classes,
    *,
    depth: int = 2,
    width: int = 256,
    activation: str = "relu",
    batchnorm: bool = False,
    dropout: float = 0.0,
    bias: bool = True,
):
    return _mlp(input_shape, num_classes, depth, width, activation, batchnorm, dropout, bias)
