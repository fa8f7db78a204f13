"""The four-panel equivariance figure: f(x), T f(x), f(T x), and their difference on the features' scale."""

from __future__ import annotations

import numpy as np
import torch

from dlbench.analysis.image_transforms import Transform, masks_for, rel_error


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
