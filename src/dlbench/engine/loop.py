"""The epoch loop and evaluation, written against a small :class:`Step` so other engines can reuse it.

:class:`EpochLoop` does what does not depend on the model: batching (through ``DeviceData``), the learning-rate
schedule, seeding by (seed, epoch), host syncs every ``SYNC_EVERY`` steps (to catch a non-finite loss early and
report progress), timing, the per-epoch record, the checkpoint callback and the stop decision. A step object does
the rest: forward, backward and optimizer update for one batch, returning its loss and correct count as device
tensors (no host sync), and evaluation. :class:`ClassifierStep` is the step for one model; a fused engine (many
trials stacked into one model) supplies its own step and reuses :meth:`EpochLoop.train_epoch` and the per-epoch
bookkeeping.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from dlbench.config import TrainOptions
from dlbench.engine.device_data import DeviceData, Split
from dlbench.engine.environment import Timer, is_oom
from dlbench.engine.metrics import GradNorms, step_rows
from dlbench.engine.schedule import lr_at
from dlbench.engine.state import Stop, TrainState, after_epoch

SYNC_EVERY = 50  # steps between host syncs (divergence check, progress with the loss)
PROGRESS_SECONDS = (
    0.5  # between syncs, a step event (loss None) at least this often, so a bar never sits still
)

Callback = Callable[..., None]


class Step(Protocol):
    """One training step and evaluation for whatever model an engine trains."""

    def begin_epoch(self) -> None:
        """Put the model in training mode and reset per-epoch accumulators."""

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Train on one batch at ``lr``; return (loss, number correct) as device tensors."""

    def grad_rows(self, epoch: int) -> list[dict]:
        """The epoch's gradient-norm rows; the last is the global norm."""

    def evaluate(self, split: Split) -> tuple[float, float]:
        """(loss, accuracy) over ``split``."""

    def snapshot(self) -> dict:
        """A CPU copy of the weights (the best so far, for early stopping)."""


def at_least_fp32(out: torch.Tensor) -> torch.Tensor:
    """Logits for the loss: bf16 upcast to fp32; fp32 and fp64 (tests that compare engines) as they are."""
    return out if out.dtype in (torch.float32, torch.float64) else out.float()


@torch.no_grad()
def evaluate(model, data: DeviceData, split: Split, autocast, predictions: bool = False):
    """(loss, accuracy[, (pred, confidence)]) over a split; one host sync at the end."""
    model.eval()
    loss_sum = torch.zeros((), device=data.device)
    correct = torch.zeros((), device=data.device, dtype=torch.long)
    preds, confs = [], []
    for xb, yb in data.eval_batches(split):
        with autocast():
            out = model(xb)
        out = at_least_fp32(out)
        loss_sum += F.cross_entropy(out, yb, reduction="sum")
        p = out.argmax(1)
        correct += (p == yb).sum()
        if predictions:
            preds.append(p)
            confs.append(out.softmax(1).amax(1))
    n = max(1, len(split))
    loss, acc = loss_sum.item() / n, correct.item() / n
    if predictions:
        return loss, acc, (torch.cat(preds).cpu(), torch.cat(confs).cpu())
    return loss, acc


class ClassifierStep:
    """The step of one classifier: cross-entropy, per-layer gradient norms (and clipping), optimizer update."""

    def __init__(
        self,
        model: nn.Module,
        forward: Callable,
        optimizer: torch.optim.Optimizer,
        data: DeviceData,
        opts: TrainOptions,
        autocast: Callable[[], AbstractContextManager],
        frozen_bn: list[nn.Module] = (),
    ):
        self.model, self.forward, self.optimizer, self.data = model, forward, optimizer, data
        self.autocast, self.frozen_bn = autocast, list(frozen_bn)
        self.label_smoothing, self.grad_clip = opts.label_smoothing, opts.grad_clip
        self.norms = GradNorms(model, data.device)

    def begin_epoch(self) -> None:
        self.model.train()
        for bn in self.frozen_bn:  # frozen layers keep their running statistics
            bn.eval()
        self.norms.reset(self.data.device)

    def __call__(self, xb, yb, lr):
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.autocast():
            out = self.forward(xb)
        loss = F.cross_entropy(at_least_fp32(out), yb, label_smoothing=self.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.norms.update(self.grad_clip)
        self.optimizer.step()
        return loss.detach(), (out.detach().argmax(1) == yb).sum()

    def grad_rows(self, epoch: int) -> list[dict]:
        return self.norms.rows(epoch)

    def evaluate(self, split: Split, predictions: bool = False):
        return evaluate(self.forward, self.data, split, self.autocast, predictions)

    def snapshot(self) -> dict:
        return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}


@dataclass
class EpochStats:
    """One epoch of training as the host sees it after its end-of-epoch sync."""

    losses: list  # per step (a float, or one per trial), up to the sync that found no finite loss
    correct: int | list[int]
    seen: int
    seconds: float
    lr: float  # of the last step

    @property
    def finite(self) -> bool:
        return all(math.isfinite(v) for v in self.losses)

    def first_bad_step(self) -> int:
        return next(j for j, v in enumerate(self.losses) if not math.isfinite(v))


class EpochLoop:
    """Drive a :class:`Step` over the epochs of ``opts``; see the module docstring."""

    def __init__(self, step: Step, data: DeviceData, opts: TrainOptions, callback: Callback):
        self.step, self.data, self.opts, self.callback = step, data, opts, callback
        self.steps_per_epoch = data.steps_per_epoch(opts.batch_size)

    def batches(self, epoch: int) -> Iterator[tuple[int, float, torch.Tensor, torch.Tensor]]:
        """(step in epoch, lr, x, y) for one epoch, in an order fixed by (seed, epoch)."""
        spe, opts = self.steps_per_epoch, self.opts
        for i, (xb, yb) in enumerate(self.data.train_batches(opts.batch_size, opts.seed, epoch)):
            yield i, lr_at(epoch * spe + i, spe, opts), xb, yb

    def train_epoch(self, epoch: int) -> EpochStats:
        """One epoch of steps; the host syncs every ``SYNC_EVERY`` steps and ends the epoch early once no loss
        is finite (a step may return one loss per trial, shape (K,), as a fused engine does)."""
        device = self.data.device
        torch.manual_seed(self.opts.seed * 1000 + epoch)  # dropout draws, reproducible on resume
        self.step.begin_epoch()
        loss_buf = correct = None  # shaped like the step's outputs on the first step
        seen, i, lr = 0, -1, self.opts.lr
        shown = time.monotonic()  # when progress was last reported
        with Timer(device) as timer:
            for i, lr, xb, yb in self.batches(epoch):
                loss, right = self.step(xb, yb, lr)
                if loss_buf is None:
                    loss_buf = torch.zeros((self.steps_per_epoch, *loss.shape), device=device)
                    correct = torch.zeros_like(right)
                loss_buf[i] = loss
                correct += right
                seen += yb.shape[0]
                if (i + 1) % SYNC_EVERY == 0:
                    last = loss_buf[i].tolist()
                    if not any(math.isfinite(v) for v in (last if isinstance(last, list) else [last])):
                        break
                    self.callback("step", epoch=epoch, step=i + 1, loss=last)
                    shown = time.monotonic()
                elif time.monotonic() - shown > PROGRESS_SECONDS:  # move the bar by time, without a sync
                    self.callback("step", epoch=epoch, step=i + 1, loss=None)
                    shown = time.monotonic()
        return EpochStats(loss_buf[: i + 1].tolist(), correct.tolist(), seen, timer.seconds, lr)

    def record(self, epoch: int, stats: EpochStats, grad_rows: list[dict]) -> dict:
        """The epoch's row of the ``epochs`` table (validation filled in by the caller)."""
        return {
            "epoch": epoch,
            "train_loss": sum(stats.losses) / len(stats.losses) if stats.finite else math.nan,
            "train_acc": stats.correct / max(1, stats.seen),
            "val_loss": math.nan,
            "val_acc": math.nan,
            "lr": stats.lr,
            "seconds": stats.seconds,
            "images_per_sec": stats.seen / stats.seconds if stats.seconds > 0 else math.nan,
            "grad_norm": grad_rows[-1]["mean_norm"],
        }

    def run(self, state: TrainState, save: Callable[[TrainState], None] | None = None) -> tuple[Stop, str]:
        """Train from ``state.next_epoch`` to the last epoch; returns why it stopped and a one-line message.

        ``state`` is updated in place; ``save(state)`` is called after each finished epoch (not after one that
        diverged), before the ``epoch`` event, so a listener that stops the process never loses that epoch.
        """
        opts = self.opts
        if opts.patience and state.bad_epochs >= opts.patience:  # resumed after the epoch that stopped it
            return Stop.EARLY_STOP, self.message(Stop.EARLY_STOP, state.epoch)
        try:
            for epoch in range(state.next_epoch, opts.epochs):
                stats = self.train_epoch(epoch)
                rows = self.step.grad_rows(epoch)
                state.steps += step_rows(epoch, stats.losses, self.steps_per_epoch)
                state.grads += rows
                record = self.record(epoch, stats, rows)
                if stats.finite and len(self.data.val):
                    record["val_loss"], record["val_acc"] = self.step.evaluate(self.data.val)
                state.epochs.append(record)
                stop = after_epoch(
                    state, record, finite=stats.finite, patience=opts.patience, snapshot=self.step.snapshot
                )
                if stop is not Stop.DIVERGED:
                    state.epoch = epoch
                    if save:
                        save(state)
                self.callback("epoch", **record)
                if stop is not None:
                    return stop, self.message(stop, epoch, stats)
        except Exception as exc:
            if not is_oom(exc):
                raise
            return Stop.OOM, self.message(Stop.OOM, state.epoch)
        return Stop.OK, ""

    def message(self, stop: Stop, epoch: int, stats: EpochStats | None = None) -> str:
        """The one-line message a run records for ``stop``."""
        if stop is Stop.DIVERGED:
            return (
                f"loss became non-finite at epoch {epoch + 1}, step {stats.first_bad_step() + 1} "
                f"(lr {stats.lr:g}); try a lower --lr or --grad-clip"
            )
        if stop is Stop.EARLY_STOP:
            return (
                f"early stop after epoch {epoch + 1}: no better validation accuracy for {self.opts.patience}"
            )
        if stop is Stop.OOM:
            return (
                f"out of memory at batch size {self.opts.batch_size} on {self.data.device}; "
                "try a smaller --batch-size"
            )
        return ""
