"""Small pieces shared by the families."""

from __future__ import annotations

from torch import nn

from dlbench.errors import InvalidSettingError, UnknownNameError

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "mish": nn.Mish,
    "softplus": nn.Softplus,
    "identity": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    key = name.strip().lower().replace("-", "_")
    if key not in ACTIVATIONS:
        raise UnknownNameError("activation", name, ACTIVATIONS)
    return ACTIVATIONS[key]()


def require(cond: bool, message: str) -> None:
    if not cond:
        raise InvalidSettingError(message)


def positive(name: str, value, minimum=1) -> None:
    require(value >= minimum, f"{name} must be at least {minimum}, got {value}")
