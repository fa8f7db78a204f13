"""What a run measures besides its loss: per-layer gradient norms, the per-step loss table, and the summary."""

from __future__ import annotations

import math

import torch
from torch import nn

from dlbench.engine.environment import environment

MAX_STEPS_KEPT = 400  # per epoch, for the per-step loss table


class GradNorms:
    """Per-layer gradient norms accumulated on the device: sum (for the mean) and max over an epoch."""

    def __init__(self, model: nn.Module, device: torch.device):
        self.params, owners, self.layers, self.kinds = [], [], [], []
        modules = dict(model.named_modules())
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            layer = name.rsplit(".", 1)[0] if "." in name else name
            if layer not in self.layers:
                self.layers.append(layer)
                self.kinds.append(layer_kind(modules.get(layer)))
            self.params.append(p)
            owners.append(self.layers.index(layer))
        self.owner = torch.tensor(owners, device=device)
        self.reset(device)

    def reset(self, device) -> None:
        n = len(self.layers)
        self.sum = torch.zeros(n + 1, device=device, dtype=torch.float32)  # last entry: the global norm
        self.max = torch.zeros(n + 1, device=device, dtype=torch.float32)
        self.count = 0

    def update(self, grad_clip: float) -> torch.Tensor:
        """Accumulate this step's norms and clip by the global norm (no host sync); returns the global norm."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        norms = torch.stack(torch._foreach_norm(grads)).float()  # (P,)
        layer_sq = torch.zeros(len(self.layers), device=norms.device, dtype=norms.dtype).index_add_(
            0, self.owner, norms**2
        )
        total = layer_sq.sum().sqrt()
        both = torch.cat([layer_sq.sqrt(), total[None]])
        self.sum += both
        torch.maximum(self.max, both, out=self.max)
        self.count += 1
        if grad_clip:
            coef = (grad_clip / (total + 1e-6)).clamp(max=1.0)
            torch._foreach_mul_(grads, coef)
        return total

    def rows(self, epoch: int) -> list[dict]:
        mean = (self.sum / max(1, self.count)).tolist()
        mx = self.max.tolist()
        names, kinds = self.layers + ["global"], self.kinds + ["global"]
        return [
            {
                "epoch": epoch,
                "layer": n,
                "kind": kinds[i],
                "depth": i,
                "mean_norm": mean[i],
                "max_norm": mx[i],
            }
            for i, n in enumerate(names)
        ]


def layer_kind(module) -> str:
    """conv | linear | norm | other: the report groups gradient norms by it (names such as ``features.3`` do
    not say whether a layer is a convolution or a batch norm)."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, nn.Linear):
        return "linear"
    if "Norm" in type(module).__name__:
        return "norm"
    return "other"


def step_rows(epoch: int, losses: list[float], steps_per_epoch: int) -> list[dict]:
    """The per-step loss table of one epoch: at most ``MAX_STEPS_KEPT`` steps, plus every non-finite one."""
    keep_every = max(1, math.ceil(steps_per_epoch / MAX_STEPS_KEPT))
    return [
        {"epoch": epoch, "step": epoch * steps_per_epoch + j, "loss": v}
        for j, v in enumerate(losses)
        if j % keep_every == 0 or not math.isfinite(v)
    ]


def summary(epochs: list[dict], counts: dict, device: torch.device, initial_val_acc: float) -> dict:
    """The run's summary row: sizes (``counts``: params, trainable, macs), speed, accuracy, environment.

    Test results, inference time, peak memory and the best epoch are filled in by the caller when known.
    """
    done = [e for e in epochs if math.isfinite(e["seconds"])]
    secs = [e["seconds"] for e in done]
    # The first epoch carries one-time costs (cudnn autotuning, compilation); leave it out when we can.
    steady = secs[1:] if len(secs) > 1 else secs
    rates = [e["images_per_sec"] for e in (done[1:] or done)]
    vals = [e["val_acc"] for e in epochs if math.isfinite(e["val_acc"])]
    return {
        **counts,
        "epochs_run": len(epochs),
        "seconds_per_epoch": sum(steady) / len(steady) if steady else math.nan,
        "images_per_sec": sum(rates) / len(rates) if rates else math.nan,
        "initial_val_acc": initial_val_acc,  # before the first step
        "best_val_acc": max(vals) if vals else math.nan,
        "final_val_acc": vals[-1] if vals else math.nan,
        "test_loss": math.nan,
        "test_acc": math.nan,
        "inference_seconds": math.nan,
        "peak_memory_mb": math.nan,
        **environment(device),
    }
