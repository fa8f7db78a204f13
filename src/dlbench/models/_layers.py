"""Small pieces shared by the families (torch-free at import: the registry is read without torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlbench.errors import InvalidSettingError, UnknownNameError

if TYPE_CHECKING:
    from torch import nn

ACTIVATIONS = {  # name -> torch.nn class name
    "relu": "ReLU",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "gelu": "GELU",
    "leaky_relu": "LeakyReLU",
    "silu": "SiLU",
    "elu": "ELU",
    "selu": "SELU",
    "mish": "Mish",
    "softplus": "Softplus",
    "identity": "Identity",
}


def make_activation(name: str) -> nn.Module:
    from torch import nn

    key = name.strip().lower().replace("-", "_")
    if key not in ACTIVATIONS:
        raise UnknownNameError("activation", name, ACTIVATIONS)
    return getattr(nn, ACTIVATIONS[key])()


def require(cond: bool, message: str) -> None:
    if not cond:
        raise InvalidSettingError(message)


def positive(name: str, value, minimum=1) -> None:
    require(value >= minimum, f"{name} must be at least {minimum}, got {value}")
