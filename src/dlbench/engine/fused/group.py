"""The epoch loop of a fused group: :class:`EpochLoop` with K learning rates, K data orders and K records.

The steps of an epoch are :meth:`EpochLoop.train_epoch` itself (batching, syncs, timing); what changes is what
happens around them. Every trial (a :class:`Member`) keeps its own :class:`TrainState`: its epochs table,
per-step losses and gradient norms, built from its column of the group's losses with the ordinary
:meth:`EpochLoop.record`; its stop (diverged, early stop) is decided by the ordinary
:func:`~dlbench.engine.state.after_epoch`. A stopped trial is masked out (its updates skipped) and the others
go on; the group ends when every trial has stopped or the last epoch is done.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dlbench.config import TrainConfig
from dlbench.engine.device_data import DeviceData
from dlbench.engine.environment import is_oom
from dlbench.engine.fused.step import FusedStep
from dlbench.engine.loop import EpochLoop, EpochStats
from dlbench.engine.metrics import step_rows
from dlbench.engine.schedule import lr_at
from dlbench.engine.state import Stop, TrainState, after_epoch

Callback = Callable[..., None]


class GroupOutOfMemory(Exception):
    """A fused group ran out of device memory: its trials are to be trained alone (nothing is recorded)."""

    def __init__(self, k: int):
        super().__init__(f"a fused group of {k} trials ran out of memory; its trials train one by one")


@dataclass
class Member:
    """One trial of the group: its config, state, why it stopped (None: still training) and its callback."""

    config: TrainConfig
    state: TrainState
    loop: EpochLoop  # the trial's own options, for its records and messages (it never steps)
    callback: Callback
    stop: Stop | None = None
    message: str = ""
    final: dict | None = None  # the weights when it stopped

    @property
    def opts(self):
        return self.config.options

    def to_checkpoint(self) -> dict:
        state = {**self.state.to_checkpoint(), "model": {}, "optimizer": {}}
        return {
            "state": state,
            "stop": self.stop and self.stop.value,
            "message": self.message,
            "final": self.final,
        }


class GroupLoop(EpochLoop):
    """Drive a :class:`FusedStep` over the group's epochs (see the module docstring)."""

    def __init__(self, step: FusedStep, data: DeviceData, members: list[Member], progress: Callback):
        super().__init__(step, data, members[0].opts, progress)
        self.members = members
        self.dtype = step.model.trial_view(next(step.model.parameters())).dtype

    def batches(self, epoch: int):
        """(step, per-trial lr (K,), x (K, B, ...), y (K, B)): one draw when all trials share a seed, else
        each trial's own permutation (and augmentation) of the one resident dataset."""
        bs, k = self.opts.batch_size, len(self.members)
        lrs = self._epoch_lrs(epoch)
        seeds = [m.opts.seed for m in self.members]
        if len(set(seeds)) == 1:
            for i, (xb, yb) in enumerate(self.data.train_batches(bs, seeds[0], epoch)):
                yield i, lrs[i], xb[None].expand(k, *xb.shape), yb[None].expand(k, -1)
            return
        draws = [self.data.train_batches(bs, s, epoch) for s in seeds]
        for i, pairs in enumerate(zip(*draws, strict=True)):
            xb, yb = torch.stack([x for x, _ in pairs]), torch.stack([y for _, y in pairs])
            yield i, lrs[i], xb, yb

    def _epoch_lrs(self, epoch: int) -> torch.Tensor:
        """(steps, K): every trial's learning rate at every step of the epoch, copied to the device once (a
        copy from host memory per step would wait for the device each step)."""
        spe = self.steps_per_epoch
        lrs = [[lr_at(epoch * spe + i, spe, m.opts) for m in self.members] for i in range(spe)]
        return torch.tensor(lrs, dtype=self.dtype, device=self.data.device)

    def run_group(self, start: int, save: Callable[[int], None] | None) -> None:
        """Train from epoch ``start``; each member's ``stop`` is set when it ends (OK after the last epoch).

        Raises:
            GroupOutOfMemory: the group did not fit the device.
        """
        try:
            for epoch in range(start, self.opts.epochs):
                if all(m.stop is not None for m in self.members):
                    break
                stats = self.train_epoch(epoch)
                records = self._finish_epoch(epoch, stats)
                if save:
                    save(epoch)
                for m, record in records:
                    m.callback("epoch", **record)
                if records:
                    self.callback("epoch", **records[0][1])
        except Exception as exc:
            if not is_oom(exc):
                raise
            # The group, not a trial, did not fit: recording each member as out of memory would be a wrong
            # result for a trial that fits alone. The caller trains them one by one instead.
            raise GroupOutOfMemory(len(self.members)) from None
        for m in self.members:
            if m.stop is None:
                m.stop = Stop.OK

    def _finish_epoch(self, epoch: int, stats: EpochStats) -> list[tuple[Member, dict]]:
        """Each running member's record of ``epoch`` and its stop decision; returns (member, record) pairs."""
        model = self.step.model
        running = [(k, m) for k, m in enumerate(self.members) if m.stop is None]
        val = self.step.evaluate(self.data.val) if len(self.data.val) else None
        done = []
        for k, m in running:
            mine = self._member_stats(k, m, epoch, stats)
            rows = self.step.norms.rows(k, epoch)
            m.state.steps += step_rows(epoch, mine.losses, self.steps_per_epoch)
            m.state.grads += rows
            record = m.loop.record(epoch, mine, rows)
            if mine.finite and val is not None:
                record["val_loss"], record["val_acc"] = val[0][k], val[1][k]
            m.state.epochs.append(record)
            stop = after_epoch(
                m.state,
                record,
                finite=mine.finite,
                patience=m.opts.patience,
                snapshot=lambda k=k: model.member(k),
            )
            if stop is not Stop.DIVERGED:
                m.state.epoch = epoch
            if stop is not None:
                m.stop, m.message, m.final = stop, m.loop.message(stop, epoch, mine), model.member(k)
                self.step.active[k] = False
            done.append((m, record))
        return done

    def _member_stats(self, k: int, m: Member, epoch: int, stats: EpochStats) -> EpochStats:
        """Member ``k``'s view of the epoch: its losses up to its first non-finite one, its images and lr."""
        column = [row[k] for row in stats.losses]
        cut = next((j for j, v in enumerate(column) if not math.isfinite(v)), len(column) - 1)
        seen = min((cut + 1) * self.opts.batch_size, len(self.data.train))
        lr = lr_at(epoch * self.steps_per_epoch + cut, self.steps_per_epoch, m.opts)
        return EpochStats(column[: cut + 1], stats.correct[k], seen, stats.seconds, lr)
