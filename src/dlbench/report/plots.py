"""Matplotlib figures of sweeps (Agg backend: files, never windows). Inputs are cache tables as DataFrames."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)
    return path


def curves(epochs: pd.DataFrame, labels: dict[str, str], path: Path, title: str = "") -> Path:
    """The four-panel comparison: train/validation loss and accuracy per epoch, one line per trial."""
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
    panels = [("train_loss", "training loss"), ("val_loss", "validation loss"),
              ("train_acc", "training accuracy"), ("val_acc", "validation accuracy")]
    for ax, (col, name) in zip(axes.flat, panels, strict=True):
        for key, lab in labels.items():
            d = epochs[epochs["key"] == key].sort_values("epoch")
            if len(d):
                ax.plot(d["epoch"] + 1, d[col], marker="o", markersize=3, label=lab)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if "loss" in col:
            ax.set_yscale("log")
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    handles, labs = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labs, loc="lower center", ncol=min(5, max(1, len(labs))), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * (len(labs) // 5), 1, 0.97))
    return _save(fig, path)


def grad_norms(grads: pd.DataFrame, labels: dict[str, str], path: Path, title: str = "") -> Path:
    """Left: mean gradient norm per layer (input to output) averaged over epochs, log scale: vanishing
    gradients fall towards the input, exploding ones rise. Right: the global norm per epoch."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key, lab in labels.items():
        d = grads[grads["key"] == key]
        if not len(d):
            continue
        layers = d[d["layer"] != "global"].groupby(["depth", "layer"], sort=True)["mean_norm"].mean().reset_index()
        left.plot(layers["depth"], layers["mean_norm"], marker=".", label=lab)
        glob = d[d["layer"] == "global"].sort_values("epoch")
        right.plot(glob["epoch"] + 1, glob["mean_norm"], marker="o", markersize=3, label=lab)
    left.set(yscale="log", xlabel="parameterised layer (input -> output)", ylabel="mean gradient norm",
             title="per-layer gradient norm (mean over steps and epochs)")
    right.set(yscale="log", xlabel="epoch", ylabel="global gradient norm", title="global gradient norm")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    right.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def step_loss(steps: pd.DataFrame, labels: dict[str, str], path: Path, title: str = "") -> Path:
    """Per-step training loss against the fraction of training done, so runs of different lengths align:
    its noise shows the stability of training (for example across batch sizes)."""
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for key, lab in labels.items():
        d = steps[steps["key"] == key].sort_values("step")
        if len(d):
            x = d["step"] / max(1, d["step"].max())
            ax.plot(x * (d["epoch"].max() + 1), d["loss"], linewidth=0.8, alpha=0.8, label=lab)
    ax.set(yscale="log", xlabel="epoch", ylabel="training loss (per step)", title=title or "per-step training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def sweep_figures(store, definition: dict, folder: Path) -> dict[str, Path]:
    """Write the three figures of a sweep into ``folder``; returns {name: path}."""
    from dlbench.sweep.grid import label
    from dlbench.sweep.summary import trial_frame

    trials = trial_frame(store, definition)
    if trials.empty:
        return {}
    axes = [a["name"] for a in definition["axes"]]
    labels = {}
    for r in trials.to_dict("records"):
        lab = label({a: r[a] for a in axes})
        if definition.get("repeats", 1) > 1:
            lab += f" (seed {r['repeat']})"
        labels[r["key"]] = lab
    keys = list(labels)
    title = f"{definition['model']} on {definition['dataset']}: sweep of {', '.join(axes)}"
    out = {"curves": curves(store.table("epochs", keys), labels, folder / "curves.png", title)}
    grads = store.table("grads", keys)
    if len(grads):
        out["grad_norms"] = grad_norms(grads, labels, folder / "grad_norms.png", title)
    steps = store.table("steps", keys)
    if len(steps):
        out["step_loss"] = step_loss(steps, labels, folder / "step_loss.png", title)
    return out
