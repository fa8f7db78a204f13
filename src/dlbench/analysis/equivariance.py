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

The parts live beside it: the transformations and masks (:mod:`.image_transforms`), the random layers measured
when no model is given (:mod:`.equivariance_targets`) and the four-panel figure (:mod:`.equivariance_figure`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

# The parts, re-exported: transformations and masks, random targets, the figure.
from dlbench.analysis.equivariance_figure import figure  # noqa: F401
from dlbench.analysis.equivariance_targets import (  # noqa: F401
    LAYERS,
    PADDINGS,
    Pool,
    build_target,
    random_conv,
    receptive_margin,
    symmetrize,
)
from dlbench.analysis.image_transforms import (  # noqa: F401
    TRANSFORM_KINDS,
    Transform,
    disc,
    interior,
    masks_for,
    parse_shift,
    parse_transforms,
    rel_error,
    rotate,
)
from dlbench.errors import UsageError

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
