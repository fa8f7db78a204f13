"""uint8 images -> the float tensor a model is fed: the one normalisation shared by training and analysis.

The engine's device loader, ``models.load_trained(...).to_input`` and the analysis commands all turn stored
uint8 images into model input here, so a rebuilt model sees exactly what it was trained on: grey images
repeated to the model's channel count, ``x * scale + shift`` with ``scale = 1 / (255 std)`` and
``shift = -mean / std`` (or plain ``x / 255`` without normalisation), then a bilinear resize to the model's
input size (antialiased when shrinking). Augmentation, when training, happens between the two steps, at the
data's own size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


class InputTransform:
    """Normalisation and resizing for one (data shape, input plan), with its constants on ``device``."""

    def __init__(
        self,
        data_shape: Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        normalize: bool = True,
        *,
        size: int | None = None,
        channels: int | None = None,
        device="cpu",
        memory_format=torch.contiguous_format,
    ):
        c_data, h, w = data_shape
        c = channels or c_data
        if c != c_data and c_data != 1:
            raise ValueError(f"cannot feed {c_data}-channel images as {c} channels")
        self.channels = c
        self.repeat = c if c != c_data else 0
        if len(mean) != c:  # the dataset's grey statistics, repeated
            mean, std = tuple(mean) * c, tuple(std) * c
        m = torch.tensor(tuple(mean) if normalize else (0.0,) * c, dtype=torch.float32)
        s = torch.tensor(tuple(std) if normalize else (1.0,) * c, dtype=torch.float32)
        self.mean, self.std = tuple(m.tolist()), tuple(s.tolist())  # per fed channel
        self.scale = (1.0 / (255.0 * s)).view(1, c, 1, 1).to(device)  # x_float = x_uint8 * scale + shift
        self.shift = (-m / s).view(1, c, 1, 1).to(device)
        self._hw = (h, w)
        self.size = (size, size) if size and (size, size) != (h, w) else None
        self.shrink = bool(self.size) and size < min(h, w)
        self.device = torch.device(device)
        self.memory_format = memory_format

    @property
    def output_shape(self) -> tuple[int, ...]:
        """(C, H, W) of what the model is fed, for images of the data shape."""
        return (self.channels, *self.size) if self.size else (self.channels, *self._hw)

    def to_float(self, x_u8: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) -> normalised float at the data's own size (channels repeated if needed)."""
        x = x_u8.to(self.device, non_blocking=True).float()
        if self.repeat:
            x = x.expand(-1, self.repeat, -1, -1)  # (B, 1, H, W) -> (B, 3, H, W)
        x = x * self.scale + self.shift
        return x.contiguous(memory_format=self.memory_format)

    def from_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] (B, C, H, W) -> model input (normalised, channels repeated, resized)."""
        x = x.to(self.device, torch.float32)
        if self.repeat:
            x = x.expand(-1, self.repeat, -1, -1)
        return self.fit(x * (self.scale * 255.0) + self.shift)

    def fit(self, x: torch.Tensor) -> torch.Tensor:
        """Resize float images to the model's input size (after augmentation, which works at the data's)."""
        if self.size is None:
            return x
        x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=self.shrink)
        return x.contiguous(memory_format=self.memory_format)  # (B, C, size, size)

    def __call__(self, x_u8: torch.Tensor) -> torch.Tensor:
        """uint8 (B, C, H, W) or (C, H, W) -> float (B, C', H', W') as the model is fed."""
        return self.fit(self.to_float(x_u8 if x_u8.ndim == 4 else x_u8[None]))


def to_float(x_u8: torch.Tensor, mean, std, normalize: bool = True, size=None, channels=None) -> torch.Tensor:
    """uint8 (B, C, H, W) or (C, H, W) -> float model input; see the module docstring."""
    shape = tuple(x_u8.shape[-3:])
    return InputTransform(shape, mean, std, normalize, size=size, channels=channels)(x_u8)
