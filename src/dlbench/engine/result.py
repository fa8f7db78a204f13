"""What one training run produces: per-epoch, per-step, per-layer and per-sample records plus a summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OK, DIVERGED, OOM = "ok", "diverged", "oom"


@dataclass
class RunResult:
    status: str  # ok | diverged | oom
    message: str
    summary: dict[str, Any]  # test_acc, seconds_per_epoch, images_per_sec, peak_memory_mb, params, ...
    epochs: list[dict[str, Any]] = field(default_factory=list)  # one row per finished epoch
    steps: list[dict[str, Any]] = field(default_factory=list)  # subsampled per-step training loss
    grads: list[dict[str, Any]] = field(default_factory=list)  # per epoch and layer: mean and max grad norm
    predictions: dict[str, list] | None = None  # per test sample: index, label, pred, confidence
    state_dict: dict[str, Any] | None = None  # final (or best-validation) weights, on the CPU
