"""The transformations T an equivariance check applies (shift, rot90, rotate, hflip, brightness, contrast),
parsed from ``--transform``, and the masks and relative error the check measures with.

Interpolated rotations (``rotate:ANGLE``) compare inside a centred disc, on both sides, so the corners a
rotation cuts off do not count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dlbench.errors import UsageError

TRANSFORM_KINDS = ("shift", "rot90", "rotate", "hflip", "brightness", "contrast")


@dataclass(frozen=True)
class Transform:
    name: str  # as the user wrote it: shift, rot90, rotate:30, brightness:1.5
    kind: str
    value: float = 0.0
    shift: tuple[int, int] = (0, 0)  # (dx, dy) pixels, for kind 'shift'

    @property
    def spatial(self) -> bool:
        return self.kind in ("shift", "rot90", "rotate", "hflip")

    def apply(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor | None:
        """T applied to images or feature maps ``x`` (B, C, H, W); ``scale`` = output size / input size.

        Returns None where T has no counterpart at this resolution (a shift that is not a multiple of the
        stride).
        """
        if self.kind == "shift":
            dx, dy = self.shift[0] * scale, self.shift[1] * scale
            if abs(dx - round(dx)) > 1e-9 or abs(dy - round(dy)) > 1e-9:
                return None
            return torch.roll(x, shifts=(int(round(dy)), int(round(dx))), dims=(-2, -1))
        if self.kind == "rot90":
            return torch.rot90(x, 1, dims=(-2, -1))
        if self.kind == "hflip":
            return torch.flip(x, dims=(-1,))
        if self.kind == "rotate":
            return rotate(x, self.value)
        if self.kind == "brightness":
            return x * self.value
        if self.kind == "contrast":  # around each channel's mean: exact for a linear, circular conv
            mean = x.mean(dim=(-2, -1), keepdim=True)
            return mean + self.value * (x - mean)
        raise AssertionError(self.kind)


def parse_transforms(text: str, shift: tuple[int, int] = (3, 3)) -> list[Transform]:
    """``shift,rot90,rotate:30,hflip,brightness:1.5,contrast:0.5`` -> transforms (unknown: UsageError)."""
    out = []
    for raw in [t.strip() for t in str(text).split(",") if t.strip()]:
        kind, _, arg = raw.partition(":")
        kind = kind.strip().lower()
        if kind not in TRANSFORM_KINDS:
            from dlbench.errors import UnknownNameError

            raise UnknownNameError(
                "transform",
                kind,
                TRANSFORM_KINDS,
                hint="e.g. --transform shift,rot90,rotate:30,hflip,brightness:1.5,contrast:0.5",
            )
        needs_arg = kind in ("rotate", "brightness", "contrast")
        if needs_arg and not arg:
            raise UsageError(f"transform {kind} needs a value, e.g. {kind}:{30 if kind == 'rotate' else 1.5}")
        if not needs_arg and arg:
            raise UsageError(
                f"transform {kind} takes no value (the shift comes from --shift DX,DY), got '{raw}'"
            )
        value = 0.0
        if needs_arg:
            try:
                value = float(arg)
            except ValueError:
                raise UsageError(f"transform {kind} needs a number, got '{arg}'") from None
        if kind == "shift":
            out.append(Transform(f"shift({shift[0]},{shift[1]})", kind, shift=tuple(shift)))
        else:
            out.append(Transform(raw if not needs_arg else f"{kind}:{value:g}", kind, value))
    if not out:
        raise UsageError("--transform is empty; e.g. shift,rot90")
    return out


def parse_shift(text: str) -> tuple[int, int]:
    parts = [p.strip() for p in str(text).split(",")]
    try:
        dx, dy = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--shift takes two integers DX,DY, got '{text}'") from None
    return dx, dy


def rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    """Bilinear rotation of (B, C, H, W) about the image centre; zeros outside.

    Positive angles turn counter-clockwise as the image is displayed (row 0 at the top), the convention of
    ``torch.rot90(x, 1, dims=(-2, -1))`` and torchvision's ``rotate``: ``rotate(x, 90)`` equals ``rot90``.
    """
    theta = math.radians(degrees)
    c, s = math.cos(theta), math.sin(theta)
    b = x.shape[0]
    # affine_grid maps each output pixel (x right, y down) to the input point it samples: the inverse turn.
    mat = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=x.dtype).expand(b, 2, 3)
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def interior(h: int, w: int, margin: int, dtype=torch.float64) -> torch.Tensor:
    m = torch.zeros(h, w, dtype=dtype)
    if 2 * margin < h and 2 * margin < w:
        m[margin : h - margin, margin : w - margin] = 1
    return m


def disc(h: int, w: int, shrink: float = 0.0, dtype=torch.float64) -> torch.Tensor:
    """1 inside the centred disc of radius min(h, w)/2 - shrink (pixel centres), else 0."""
    yy, xx = torch.meshgrid(
        torch.arange(h, dtype=dtype) - (h - 1) / 2, torch.arange(w, dtype=dtype) - (w - 1) / 2, indexing="ij"
    )
    return ((yy**2 + xx**2).sqrt() <= min(h, w) / 2 - 0.5 - shrink).to(dtype)


def masks_for(t: Transform, h: int, w: int, margin: int, scale: float):
    """(mask away from the borders, full mask) for comparing maps of size h x w under ``t``."""
    if t.kind == "rotate":
        return disc(h, w, margin), disc(h, w)
    inner = interior(h, w, margin)
    if t.kind == "shift":  # the shifted copy's borders (and the wrap-around seam) must be left out too
        moved = t.apply(inner[None, None], 1.0 if scale is None else scale)
        inner = inner * (moved[0, 0] if moved is not None else 0)
    return inner, torch.ones(h, w, dtype=torch.float64)


def rel_error(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """||mask (a - b)|| / ||mask b|| over the whole batch."""
    d, ref = a - b, b
    if mask is not None:
        d, ref = d * mask, ref * mask
    den = float(ref.double().norm())
    return float(d.double().norm()) / den if den > 0 else float("nan")
