"""The drawing code of ``shapes`` (:mod:`.shapes` registers the dataset; this module imports torch).

Images are generated class by class with whole-batch tensor ops (coordinate grids and masks for all images of a
class at once), so 50,000 32x32 images take a few seconds.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dlbench.data.shapes import CLASSES

_SUPERSAMPLE = 2  # render at 2x and average-pool: anti-aliased edges at a small cost
_CHUNK = 4096  # images rendered at once; bounds peak memory (~ a few hundred MB at 32x32)
_SPLIT_SALT = {"train": 0x5EED_0001, "test": 0x5EED_0002}  # train and test use different derived seeds


# -------------------- masks
# Each mask function takes local coordinates x, y (m, R, R), where the shape's nominal radius is 1, and the
# per-image parameters p (each (m, 1, 1)), and returns a float mask (m, R, R) in {0, 1}.


def _circle(x, y, p):
    return (x * x + y * y < 1.0).float()


def _square(x, y, p):
    return (torch.maximum(x.abs(), y.abs()) < 0.8).float()


def _triangle(x, y, p):
    # Equilateral triangle: inside all three half-planes whose normals point at 90, 210 and 330 degrees.
    proj = [x * math.cos(a) + y * math.sin(a) for a in (math.pi / 2, math.pi * 7 / 6, math.pi * 11 / 6)]
    return (torch.maximum(torch.maximum(proj[0], proj[1]), proj[2]) < 0.5).float()


def _cross(x, y, p):
    ax, ay = x.abs(), y.abs()
    return (((ax < 0.27) & (ay < 0.95)) | ((ay < 0.27) & (ax < 0.95))).float()


def _ring(x, y, p):
    r2 = x * x + y * y
    return ((r2 < 1.0) & (r2 > 0.36)).float()


def _patch(x, y):
    return torch.maximum(x.abs(), y.abs()) < 1.0


def _hstripes(x, y, p):
    return (_patch(x, y) & (torch.sin(math.pi * p["freq"] * y + p["phase"]) > 0)).float()


def _vstripes(x, y, p):
    return (_patch(x, y) & (torch.sin(math.pi * p["freq"] * x + p["phase"]) > 0)).float()


def _checker(x, y, p):
    s = torch.sin(math.pi * p["freq"] * x + p["phase"]) * torch.sin(math.pi * p["freq"] * y + p["phase2"])
    return (_patch(x, y) & (s > 0)).float()


def _diagonal(x, y, p):
    # A thick bar; its rotation is drawn near +-45 degrees (see _angles), so it always reads as a diagonal.
    return ((y.abs() < 0.16) & (x.abs() < 1.3)).float()


def _star(x, y, p):
    r = torch.sqrt(x * x + y * y)
    phi = torch.atan2(y, x)
    lobes = ((torch.cos(5 * phi) + 1) / 2) ** 2  # 5 points
    return (r < 0.4 + 0.65 * lobes).float()


_MASKS = (_circle, _square, _triangle, _cross, _ring, _hstripes, _vstripes, _checker, _diagonal, _star)
_AXIS_ALIGNED = (CLASSES.index("horizontal-stripes"), CLASSES.index("vertical-stripes"))
_DIAGONAL = CLASSES.index("diagonal-line")


# -------------------- render
def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _angles(labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Rotation per image (n,): free for most shapes, small tilts for the orientation-defined classes."""
    n = len(labels)
    free = _uniform(n, 0.0, 2 * math.pi, gen)
    tilt = _uniform(n, -0.25, 0.25, gen)  # radians, about 15 degrees
    diag = (math.pi / 4) * torch.where(torch.rand(n, generator=gen) < 0.5, 1.0, -1.0) + tilt
    axis = (labels == _AXIS_ALIGNED[0]) | (labels == _AXIS_ALIGNED[1])
    return torch.where(axis, tilt, torch.where(labels == _DIAGONAL, diag, free))


def _params(labels: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random per-image parameters, each (n, 1, 1) so they broadcast over the pixel grid."""
    n = len(labels)
    p = {
        "cx": _uniform(n, -0.4, 0.4, gen),
        "cy": _uniform(n, -0.4, 0.4, gen),
        "scale": _uniform(n, 0.35, 0.65, gen),
        "theta": _angles(labels, gen),
        "freq": _uniform(n, 2.0, 3.5, gen),
        "phase": _uniform(n, 0.0, 2 * math.pi, gen),
        "phase2": _uniform(n, 0.0, 2 * math.pi, gen),
    }
    return {k: v.view(n, 1, 1) for k, v in p.items()}


def _masks(labels: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Anti-aliased shape masks (n, 1, size, size) in [0, 1]."""
    n, res = len(labels), size * _SUPERSAMPLE
    p = _params(labels, gen)
    lin = (torch.arange(res, dtype=torch.float32) + 0.5) / res * 2 - 1  # pixel centres in [-1, 1]
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")  # (R, R), y grows downwards
    mask = torch.empty(n, res, res)
    for c, fn in enumerate(_MASKS):
        sel = (labels == c).nonzero(as_tuple=True)[0]
        if len(sel) == 0:
            continue
        q = {k: v[sel] for k, v in p.items()}  # (m, 1, 1) each
        dx, dy = gx - q["cx"], gy - q["cy"]  # (m, R, R)
        cos, sin = torch.cos(q["theta"]), torch.sin(q["theta"])
        x = (dx * cos + dy * sin) / q["scale"]  # local coordinates: rotated, shape radius 1
        y = (dy * cos - dx * sin) / q["scale"]
        mask[sel] = fn(x, y, q)
    return F.avg_pool2d(mask.unsqueeze(1), _SUPERSAMPLE)  # (n, 1, size, size)


def _colours(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground and background colours (n, 3, 1, 1) whose brightness differs by at least 0.25."""
    bg_level = _uniform(n, 0.0, 1.0, gen)
    gap = _uniform(n, 0.25, 0.6, gen)
    up = (bg_level + gap <= 1.0) & ((torch.rand(n, generator=gen) < 0.5) | (bg_level - gap < 0.0))
    fg_level = torch.where(up, bg_level + gap, bg_level - gap)
    tint_bg = _uniform(3 * n, -0.15, 0.15, gen).view(n, 3)
    tint_fg = _uniform(3 * n, -0.15, 0.15, gen).view(n, 3)
    bg = (bg_level[:, None] + tint_bg).clamp(0, 1)
    fg = (fg_level[:, None] + tint_fg).clamp(0, 1)
    return fg.view(n, 3, 1, 1), bg.view(n, 3, 1, 1)


def _render(labels: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Images (n, 3, size, size) uint8 for the given labels (n,)."""
    n = len(labels)
    mask = _masks(labels, size, gen)  # (n, 1, S, S)
    fg, bg = _colours(n, gen)
    sigma = _uniform(n, 0.02, 0.12, gen).view(n, 1, 1, 1)
    # In-place ops on one (n, 3, S, S) buffer: this compositing step dominates the time after the masks.
    img = torch.randn(n, 3, size, size, generator=gen).mul_(sigma).add_(bg)
    img.addcmul_(fg - bg, mask)  # bg + (fg - bg) * mask + noise
    return img.mul_(255).add_(0.5).clamp_(0, 255).to(torch.uint8)  # round half up to uint8


def generate(n: int, image_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``n`` balanced, shuffled images deterministically from ``seed``.

    Args:
        n: Number of images.
        image_size: Side length in pixels.
        seed: Seed of the torch generator; the same seed gives bit-identical tensors.

    Returns:
        ``(x, y)``: uint8 images (n, 3, image_size, image_size) and int64 labels (n,).
    """
    gen = torch.Generator().manual_seed(int(seed))
    labels = (torch.arange(n) % len(CLASSES))[torch.randperm(n, generator=gen)]  # balanced, shuffled
    x = torch.empty(n, 3, image_size, image_size, dtype=torch.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        x[start:stop] = _render(labels[start:stop], image_size, gen)
    return x, labels.to(torch.int64)


def split_seed(seed: int, split: str) -> int:
    return (int(seed) * 1_000_003 + _SPLIT_SALT[split]) % (2**63)
