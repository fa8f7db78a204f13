"""How a layer or a model commutes with a transformation T of its input.

For feature maps (a layer whose output is an image) we measure the *equivariance* error

    ||f(T x) - T f(x)|| / ||f(x)||

and for a classifier's logits (or any flat output) the *invariance* error ||f(T x) - f(x)|| / ||f(x)||,
together with the rate at which the predicted class stays the same.
Norms are taken over the whole batch of images.

The facts this module makes measurable (float64, so rounding is ~1e-16):
    * a convolution with circular padding is exactly shift-equivariant; with zero padding only away from the
      borders (``error`` uses a margin, ``full_error`` the whole image);
    * a convolution with generic kernels is NOT rotation-equivariant (error of order 1); one whose kernels are
      symmetric under rot90 is, exactly;
    * max pooling with stride s is shift-equivariant for shifts by multiples of s (the output shifts by d/s);
      for other shifts the output shift is not an integer and the error is not defined.

Interpolated rotations (``rotate:ANGLE``) compare inside a centred disc, on both sides, so the corners a
rotation cuts off do not count; interpolation itself leaves a small error even for symmetric kernels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlbench.errors import InvalidSettingError, UsageError

TRANSFORM_KINDS = ("shift", "rot90", "rotate", "hflip", "brightness", "contrast")
LAYERS = ("conv", "pool", "mlp", "stack")
PADDINGS = ("zero", "circular")


# -------------------------------------------------------------------- transformations


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


# -------------------------------------------------------------------- masks and errors


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


# -------------------------------------------------------------------- targets


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


# -------------------------------------------------------------------- measuring


@dataclass
class TransformError:
    transform: str
    measure: str  # 'equivariance' (feature maps) | 'invariance' (flat outputs)
    error: float | None  # away from the borders (margin) / inside the shrunken disc; invariance: the error
    full_error: float | None  # whole image (rotate: the whole disc)
    agreement: float | None = None  # classifier: fraction of images whose predicted class is unchanged
    margin: int | None = None
    note: str = ""

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.__dict__.items()}


def _forward(fn, x: torch.Tensor, batch: int = 128) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(x[i : i + batch]) for i in range(0, len(x), batch)])


def measure(
    fn,
    x: torch.Tensor,
    transform: Transform,
    *,
    margin: int = 0,
    prepare=None,
    classifier: bool = False,
    fx: torch.Tensor | None = None,
) -> TransformError:
    """Errors of ``fn`` under ``transform`` on images ``x`` (B, C, H, W) in pixel space.

    ``prepare`` maps pixel-space images to the network's input (clamping, normalisation); it runs after T.
    """
    prepare = prepare or (lambda v: v)
    fx = _forward(fn, prepare(x)) if fx is None else fx
    ftx = _forward(fn, prepare(transform.apply(x)))
    if fx.ndim != 4:  # flat outputs: invariance
        agree = None
        if classifier:
            agree = float((fx.argmax(1) == ftx.argmax(1)).double().mean())
        e = rel_error(ftx, fx)
        return TransformError(transform.name, "invariance", e, e, agree, None)
    scale = fx.shape[-1] / x.shape[-1]
    tfx = transform.apply(fx, scale)
    if tfx is None:
        stride = round(1 / scale) if scale else 0
        return TransformError(
            transform.name,
            "equivariance",
            None,
            None,
            None,
            margin,
            f"the output is {stride}x smaller: shift by a multiple of {stride}",
        )
    inner, full = masks_for(transform, fx.shape[-2], fx.shape[-1], margin, scale)
    return TransformError(
        transform.name, "equivariance", rel_error(ftx, tfx, inner), rel_error(ftx, tfx, full), None, margin
    )


def per_layer(model: nn.Module, x: torch.Tensor, transforms: list[Transform], prepare=None) -> list[dict]:
    """Errors after each conv/activation/pool module (children of a Sequential, or top-level children)."""
    prepare = prepare or (lambda v: v)
    layers = layer_list(model)
    rows = []
    outs: dict[str, list] = {}

    def run(inp):
        got = {}
        handles = [
            m.register_forward_hook(lambda _m, _i, o, n=n: got.__setitem__(n, o.detach())) for n, m in layers
        ]
        try:
            with torch.no_grad():
                model(inp)
        finally:
            for h in handles:
                h.remove()
        return got

    base = run(prepare(x))
    for t in transforms:
        outs[t.name] = run(prepare(t.apply(x)))
    seen = []
    for name, module in layers:
        seen.append(module)
        fx = base[name]
        row = {"layer": name, "type": type(module).__name__, "output": "x".join(map(str, fx.shape[1:]))}
        margin = receptive_margin([m for _, m in _flat_modules(seen)])
        for t in transforms:
            ftx = outs[t.name][name]
            if fx.ndim != 4:
                row[t.name] = rel_error(ftx, fx)
                continue
            scale = fx.shape[-1] / x.shape[-1]
            tfx = t.apply(fx, scale)
            if tfx is None:
                row[t.name] = None
                continue
            inner, _full = masks_for(t, fx.shape[-2], fx.shape[-1], margin, scale)
            row[t.name] = rel_error(ftx, tfx, inner) if inner.sum() > 0 else rel_error(ftx, tfx)
        row["margin"] = margin if fx.ndim == 4 else None
        rows.append(row)
    return rows


def _flat_modules(mods):
    for m in mods:
        for sub in m.modules():
            yield "", sub


def layer_list(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules after which ``--per-layer`` measures: a Sequential's children (conv/activation/pool/
    linear), or a model's top-level children with Sequential children expanded one level (ResNet stages)."""
    keep = (
        nn.Conv2d,
        nn.ReLU,
        nn.GELU,
        nn.Tanh,
        nn.Sigmoid,
        nn.SiLU,
        nn.LeakyReLU,
        nn.ELU,
        nn.MaxPool2d,
        nn.AvgPool2d,
        nn.AdaptiveAvgPool2d,
        nn.Linear,
        nn.Flatten,
        nn.BatchNorm2d,
        Pool,
    )
    if isinstance(model, nn.Sequential):
        return [(n, m) for n, m in model.named_children() if isinstance(m, keep)]
    out = []
    for n, m in model.named_children():
        if isinstance(m, nn.Sequential) and len(m):
            out += [(f"{n}.{c}", sub) for c, sub in m.named_children()]
        else:
            out.append((n, m))
    return out


# -------------------------------------------------------------------- the four-panel figure


def figure(
    image: np.ndarray,
    fn,
    x1: torch.Tensor,
    shift: Transform,
    rot: Transform,
    margin: int,
    title: str,
    prepare=None,
):
    """Original image | f(x) channel 0 | |f(shift x) - shift f(x)| | |f(rot x) - rot f(x)|.

    All three map panels share ONE colour scale (vmin/vmax), so a difference as large as the features looks
    as bright as the features; each difference panel's title prints its relative error (all channels).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    prepare = prepare or (lambda v: v)
    with torch.no_grad():
        fx = fn(prepare(x1))  # (1, C, h, w)
    scale = fx.shape[-1] / x1.shape[-1]
    panels = []
    for t in (shift, rot):
        tfx = t.apply(fx, scale)
        if tfx is None:
            panels.append((t, None, None, None))
            continue
        with torch.no_grad():
            ftx = fn(prepare(t.apply(x1)))
        inner, full = masks_for(t, fx.shape[-2], fx.shape[-1], margin, scale)
        panels.append(
            (t, (ftx - tfx).abs()[0, 0].numpy(), rel_error(ftx, tfx, inner), rel_error(ftx, tfx, full))
        )
    f0 = fx[0, 0].numpy()
    a = max([float(np.abs(f0).max())] + [float(p[1].max()) for p in panels if p[1] is not None]) or 1.0
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.4))
    axes[0].imshow(image, cmap="gray" if image.ndim == 2 else None)
    axes[0].set_title("original image", fontsize=9)
    im = axes[1].imshow(f0, cmap="RdBu_r", vmin=-a, vmax=a)
    axes[1].set_title("output features f(x)\nchannel 0", fontsize=9)
    for ax, (t, diff, e_in, e_full) in zip(axes[2:], panels, strict=True):
        label = "shift" if t.kind == "shift" else t.name
        if diff is None:
            ax.imshow(np.zeros_like(f0), cmap="RdBu_r", vmin=-a, vmax=a)
            ax.set_title(f"|f({label} x) - {label} f(x)|\nnot defined at this stride", fontsize=9)
        else:
            ax.imshow(diff, cmap="RdBu_r", vmin=-a, vmax=a)
            text = f"rel. error {e_full:.2e}"
            if margin and t.kind != "rotate" and abs(e_in - e_full) > 1e-12:
                text = f"rel. error {e_in:.2e} away from borders\n{e_full:.2e} on the full image"
            ax.set_title(f"|f({t.name} x) - {t.name} f(x)|\n{text}", fontsize=8)
            if margin and t.kind == "shift":
                h, w = diff.shape
                ax.add_patch(
                    Rectangle(
                        (margin - 0.5, margin - 0.5),
                        w - 2 * margin,
                        h - 2 * margin,
                        fill=False,
                        ls="--",
                        lw=0.8,
                        ec="k",
                    )
                )
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes[1:]), shrink=0.8, label="one shared scale (features and differences)")
    fig.suptitle(title, fontsize=10)
    return fig


# -------------------------------------------------------------------- images


@dataclass
class Images:
    x: torch.Tensor  # (N, C, H, W) float64 in [0, 1]
    dataset: str
    options: dict = field(default_factory=dict)


def load_images(n: int, data_dir, dataset: str | None = None, options: dict | None = None) -> Images:
    """``n`` test images in [0, 1]: ``dataset`` if given, else Fashion-MNIST when present, else ``shapes``."""
    from dlbench.data import get_dataset

    if n < 1:
        raise UsageError(f"--images must be at least 1, got {n}")
    if dataset is None:
        fm = get_dataset("fashion-mnist")
        if data_dir is not None and fm.present(data_dir):
            dataset, options = "fashion-mnist", {}
        else:
            dataset, options = "shapes", {"train_size": 1, "test_size": max(n, 256)}
    spec = get_dataset(dataset)
    opts = spec.resolve(options)
    data = spec.load(data_dir, opts, download=False) if dataset != "shapes" else spec.load(data_dir, opts)
    if n > len(data.test_x):
        raise UsageError(f"--images {n} is more than the {len(data.test_x)} test images of {dataset}")
    return Images(data.test_x[:n].to(torch.float64) / 255.0, spec.name, opts)


# -------------------------------------------------------------------- one call for the CLI


@dataclass
class Report:
    target: str
    dataset: str
    images: int
    rows: list[TransformError]
    per_layer: list[dict] = field(default_factory=list)
    figure: object = None  # matplotlib figure (None for flat outputs)
    notes: list[str] = field(default_factory=list)

    def errors(self) -> dict:
        return {r.transform: r.error for r in self.rows}


def run_random(
    layer: str,
    images: Images,
    transforms: list[Transform],
    *,
    margin: int | None = None,
    sample: int = 0,
    shift: tuple[int, int] = (3, 3),
    with_figure: bool = True,
    **target_args,
) -> Report:
    """Measure a random float64 layer (conv, pool, mlp or stack) on ``images``."""
    x = images.x
    net = build_target(layer, x.shape[1], tuple(x.shape[-2:]), **target_args)
    net.eval()
    if margin is None:
        margin = receptive_margin(net.modules())
    if margin < 0:
        raise UsageError(f"--margin must be >= 0, got {margin}")
    fx = _forward(net, x)
    rows = [measure(net, x, t, margin=margin, fx=fx) for t in transforms]
    desc = _describe(layer, target_args)
    report = Report(desc, images.dataset, len(x), rows)
    if fx.ndim != 4:
        report.notes.append(f"{layer} has a flat output: errors are invariance errors, no feature-map figure")
    elif with_figure:
        report.figure = _figure_for(net, images, sample, shift, margin, desc)
    return report


def _describe(layer: str, a: dict) -> str:
    if layer == "conv":
        sym = ", rot90-symmetric kernels" if a.get("symmetric") else ""
        return (
            f"random conv {a.get('kernel_size', 3)}x{a.get('kernel_size', 3)}, "
            f"{a.get('channels', 8)} channels, "
            f"{a.get('padding', 'zero')} padding{sym}"
        )
    if layer == "pool":
        return (
            f"max pool {a.get('kernel_size', 3)}, stride {a.get('stride', 2)}, "
            f"{a.get('padding', 'zero')} padding"
        )
    if layer == "stack":
        sym = ", rot90-symmetric kernels" if a.get("symmetric") else ""
        return (
            f"stack of {a.get('depth', 3)} conv{a.get('kernel_size', 3)}+ReLU, "
            f"{a.get('channels', 8)} channels, "
            f"{a.get('padding', 'zero')} padding{sym}"
        )
    return "random MLP on flattened pixels (256 hidden, 10 outputs)"


def _figure_for(fn, images: Images, sample: int, shift, margin: int, desc: str, prepare=None):
    if not 0 <= sample < len(images.x):
        raise UsageError(f"--sample must be between 0 and {len(images.x) - 1}, got {sample}")
    x1 = images.x[sample : sample + 1]
    arr = x1[0].numpy()
    img = arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)
    t_shift = Transform(f"shift({shift[0]},{shift[1]})", "shift", shift=tuple(shift))
    t_rot = Transform("rot90", "rot90")
    return figure(
        img, fn, x1, t_shift, t_rot, margin, f"{desc} - {images.dataset} test image {sample}", prepare
    )


def run_model(
    loaded,
    images: Images,
    transforms: list[Transform],
    *,
    sample: int = 0,
    shift: tuple[int, int] = (3, 3),
    per_layer_: bool = False,
    with_figure: bool = True,
) -> Report:
    """Invariance of a registry model's logits (and prediction agreement), optionally errors after each layer.

    T acts on pixels in [0, 1] at the dataset's shape; illumination results are clamped to [0, 1] like a
    camera; then the images are brought to the model's input (channels, size, normalisation) as in training.
    """
    model = loaded.model.eval()

    def prepare(v):  # pixels in [0, 1] -> the model's input, as training fed it (data/transforms.py)
        return loaded.from_unit(v.to(torch.float32).clamp(0, 1))

    x = images.x
    if tuple(x.shape[1:]) != tuple(loaded.input_shape):
        raise UsageError(
            f"{loaded.name} takes {'x'.join(map(str, loaded.input_shape))} images, "
            f"{images.dataset} has {'x'.join(map(str, x.shape[1:]))}"
        )
    fx = _forward(model, prepare(x))
    rows = [measure(model, x, t, prepare=prepare, classifier=True, fx=fx) for t in transforms]
    report = Report(f"{loaded.name} ({loaded.source})", images.dataset, len(x), rows)
    if per_layer_:
        spatial = [t for t in transforms if t.kind in ("shift", "rot90")]
        if not spatial:
            report.notes.append("--per-layer measures shift and rot90; add them to --transform")
        else:
            report.per_layer = per_layer(model, x, spatial, prepare)
    if with_figure:
        convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        if convs:
            name, conv = convs[0]
            margin = receptive_margin([conv])
            report.figure = _figure_for(
                lambda v: conv(v).double(),
                images,
                sample,
                shift,
                margin,
                f"{loaded.name} {name} ({loaded.source})",
                prepare,
            )
            report.notes.append(f"the figure shows the first convolution, {name}")
    return report
