"""Learning-rate schedules as a pure function of the step, so a resumed run needs no scheduler state."""

from __future__ import annotations

import math

from dlbench.config import TrainOptions


def lr_at(step: int, steps_per_epoch: int, opts: TrainOptions) -> float:
    """Learning rate for optimizer step ``step`` (0-based)."""
    total = max(1, steps_per_epoch * opts.epochs)
    warmup = int(opts.warmup_epochs * steps_per_epoch)
    if step < warmup:
        return opts.lr * (step + 1) / warmup
    if opts.schedule == "none":
        return opts.lr
    if opts.schedule == "step":
        every = (opts.step_every or max(1, opts.epochs // 3)) * steps_per_epoch
        return opts.lr * opts.gamma ** ((step - warmup) // every)
    progress = (step - warmup) / max(1, total - warmup)
    if opts.schedule == "cosine":
        return opts.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    # onecycle (Smith 2018): linear up to the peak over 30% of the run, then cosine down to ~0
    peak = 0.3
    if progress < peak and not warmup:
        return opts.lr * (0.04 + 0.96 * progress / peak)
    p = (progress - (0 if warmup else peak)) / (1 - (0 if warmup else peak))
    return opts.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))
