"""The training step of a fused group: per-trial loss, gradient norms, clipping and update, and evaluation.

It fits :class:`dlbench.engine.loop.Step`, returning one loss and one correct count per trial, shape (K,), so
:meth:`EpochLoop.train_epoch` drives it as it drives one model. ``active`` (K,) lives on the device: a trial
whose loss is not finite is masked out right after that step (its update skipped, its losses reported as NaN
from then on), without a host sync; the host reads the mask at the end of the epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

from dlbench.engine.device_data import DeviceData, Split
from dlbench.engine.fused.optim import FusedOptimizer
from dlbench.engine.fused.sequential import FusedSequential
from dlbench.engine.fused.tree import FusedTree
from dlbench.engine.loop import at_least_fp32
from dlbench.engine.metrics import GradNorms


def trial_losses(out: torch.Tensor, y: torch.Tensor, smoothing: torch.Tensor | None) -> torch.Tensor:
    """Mean cross-entropy per trial, (K,), from logits (K, B, classes) and labels (K, B); ``smoothing`` (K,)."""
    logp = out.log_softmax(-1)
    per = -logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)  # (K, B)
    if smoothing is not None:  # torch's label smoothing: (1 - e) * nll + e * mean over classes of -log p
        e = smoothing.view(-1, 1)
        per = (1 - e) * per - e * logp.mean(-1)
    return per.mean(1)


class TrialNorms:
    """Per-trial, per-layer gradient norms (sum and max over the epoch) and per-trial clipping by global norm."""

    def __init__(self, model: FusedSequential | FusedTree, grad_clip: list[float], template: GradNorms):
        """``template``: the engine's :class:`GradNorms` of one member, which names the rows as a run alone
        does (the fused model keeps the members' layer names, in the same order)."""
        self.model, self.template = model, template
        self.params, owners, self.layers = [], [], []
        for name, p in model.trial_parameters():
            layer = name.rsplit(".", 1)[0]
            if layer not in self.layers:
                self.layers.append(layer)
            self.params.append(p)
            owners.append(self.layers.index(layer))
        assert self.layers == template.layers, (self.layers, template.layers)
        device = self.params[0].device
        self.owner = torch.tensor(owners, device=device)
        self.clip = torch.tensor(grad_clip, device=device)
        self.clipping = any(grad_clip)  # known here: no host sync per step
        self.reset()

    def reset(self) -> None:
        k, n, device = self.model.k, len(self.layers) + 1, self.params[0].device
        self.sum = torch.zeros(k, n, device=device, dtype=torch.float32)
        self.max = torch.zeros(k, n, device=device, dtype=torch.float32)
        self.count = torch.zeros(k, device=device, dtype=torch.float32)

    def update(self, active: torch.Tensor) -> None:
        """As :meth:`GradNorms.update`, one row per trial; only ``active`` trials accumulate."""
        view = self.model.trial_view
        grads = [view(p.grad) if p.grad is not None else view(torch.zeros_like(p)) for p in self.params]
        norms = torch.stack([g.norm(dim=1) for g in grads], 1).float()  # (K, P)
        layer_sq = torch.zeros(self.model.k, len(self.layers), device=norms.device, dtype=norms.dtype)
        layer_sq.index_add_(1, self.owner, norms**2)
        total = layer_sq.sum(1).sqrt()
        both = torch.cat([layer_sq.sqrt(), total[:, None]], 1)
        on = active[:, None]
        self.sum += torch.where(on, both, 0)
        self.max.copy_(torch.where(on, torch.maximum(self.max, both), self.max))
        self.count += active
        if self.clipping:  # a trial's clip 0 (off) multiplies by 1
            coef = torch.where(self.clip > 0, (self.clip / (total + 1e-6)).clamp(max=1.0), 1.0)
            for g in grads:
                g.mul_(coef.to(g.dtype)[:, None])

    def rows(self, k: int, epoch: int) -> list[dict]:
        """Trial ``k``'s rows of the epoch, written by the engine's own :meth:`GradNorms.rows`."""
        t = self.template
        t.sum, t.max, t.count = self.sum[k], self.max[k], int(self.count[k].item())
        return t.rows(epoch)


class FusedStep:
    """Forward, per-trial losses, backward, norms and update of a whole group, for one batch."""

    def __init__(
        self,
        model: FusedSequential | FusedTree,
        optimizer: FusedOptimizer,
        data: DeviceData,
        options: list,
        autocast: Callable[[], AbstractContextManager],
        norms: GradNorms,
    ):
        self.model, self.optimizer, self.data, self.autocast = model, optimizer, data, autocast
        device, dtype = data.device, model.trial_view(next(model.parameters())).dtype
        smoothing = [o.label_smoothing for o in options]
        self.smoothing = torch.tensor(smoothing, dtype=dtype, device=device) if any(smoothing) else None
        self.norms = TrialNorms(model, [o.grad_clip for o in options], norms)
        self.active = torch.ones(model.k, dtype=torch.bool, device=device)
        self.epoch = 0  # set by the group loop before each epoch, for grad_rows

    def begin_epoch(self) -> None:
        self.model.train()
        self.norms.reset()

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor, lr: torch.Tensor):
        with self.autocast():
            out = self.model(xb)
        out = at_least_fp32(out)
        losses = trial_losses(out, yb, self.smoothing)
        self.optimizer.zero_grad()
        losses.sum().backward()  # the trials share no weights: each gets the gradient of its own loss
        before = self.active.clone()
        self.norms.update(before)
        finite = torch.isfinite(losses)
        self.active &= finite
        self.optimizer.step(lr, self.active)
        right = torch.where(before, (out.detach().argmax(-1) == yb).sum(1), 0)
        return torch.where(before, losses.detach(), torch.nan), right

    def grad_rows(self, epoch: int) -> list[dict]:
        return []  # per trial: see TrialNorms.rows

    def snapshot(self) -> dict:
        return {}  # per trial: see the fused model's member()

    @torch.no_grad()
    def evaluate(self, split: Split, predictions: bool = False):
        """Per trial: (loss, accuracy[, (pred, confidence)]) lists over ``split``; one host sync at the end."""
        self.model.eval()
        k, device = self.model.k, self.data.device
        loss_sum = torch.zeros(k, device=device, dtype=torch.float64)
        correct = torch.zeros(k, device=device, dtype=torch.long)
        preds, confs = [], []
        for xb, yb in self.data.eval_batches(split):
            with self.autocast():
                out = self.model(xb[None].expand(k, *xb.shape))
            out = at_least_fp32(out)
            y = yb[None].expand(k, -1)
            loss_sum += (trial_losses(out, y, None) * yb.shape[0]).double()
            p = out.argmax(-1)
            correct += (p == y).sum(1)
            if predictions:
                preds.append(p)
                confs.append(out.softmax(-1).amax(-1))
        n = max(1, len(split))
        losses, accs = (loss_sum / n).tolist(), (correct.double() / n).tolist()
        if predictions:
            pred, conf = torch.cat(preds, 1).cpu(), torch.cat(confs, 1).cpu()
            return losses, accs, [(pred[i], conf[i]) for i in range(k)]
        return losses, accs
