"""Train one resolved config on one device.

The step loop keeps everything on the device: the batch gather, augmentation, loss and accuracy sums and the
per-layer gradient norms are tensors, and the host synchronises only every ``SYNC_EVERY`` steps (to catch a
non-finite loss early and report progress) and at the end of an epoch. The model, optimizer and history are
checkpointed after every epoch, and shuffling, augmentation and dropout are seeded by (seed, epoch), so a run
resumed from its checkpoint ends exactly where an uninterrupted one would on the CPU.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dlbench.config import TrainConfig
from dlbench.data import ArrayDataset, get_dataset
from dlbench.engine import checkpoint as ckpt
from dlbench.engine.device_data import DeviceData
from dlbench.engine.environment import (
    Timer,
    environment,
    is_oom,
    peak_memory_mb,
    reset_peak_memory,
    resolve_device,
)
from dlbench.engine.result import DIVERGED, OK, OOM, RunResult
from dlbench.engine.schedule import lr_at
from dlbench.models import get_model_spec
from dlbench.models.transfer import prepare_model

SYNC_EVERY = 50  # steps between host syncs (divergence check, progress)
MAX_STEPS_KEPT = 400  # per epoch, for the per-step loss table

Callback = Callable[..., None]


def _no_callback(event: str, **data) -> None:
    pass


def make_optimizer(model: nn.Module, opts, device: torch.device) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    fused = {"fused": True} if device.type == "cuda" else {}
    if opts.optimizer == "sgd":
        cls, kw = (
            torch.optim.SGD,
            {"momentum": opts.momentum, "nesterov": opts.nesterov and opts.momentum > 0},
        )
    elif opts.optimizer == "adam":
        cls, kw = torch.optim.Adam, {}
    else:
        cls, kw = torch.optim.AdamW, {}
    try:
        return cls(params, lr=opts.lr, weight_decay=opts.weight_decay, **kw, **fused)
    except (TypeError, RuntimeError):  # an older torch without a fused kernel for this optimizer
        return cls(params, lr=opts.lr, weight_decay=opts.weight_decay, **kw)


class GradNorms:
    """Per-layer gradient norms accumulated on the device: sum (for the mean) and max over an epoch."""

    def __init__(self, model: nn.Module, device: torch.device):
        self.params, owners, self.layers = [], [], []
        for name, p in model.named_parameters():
            if not p.requires_grad:
                continue
            layer = name.rsplit(".", 1)[0] if "." in name else name
            if layer not in self.layers:
                self.layers.append(layer)
            self.params.append(p)
            owners.append(self.layers.index(layer))
        self.owner = torch.tensor(owners, device=device)
        self.reset(device)

    def reset(self, device) -> None:
        n = len(self.layers)
        self.sum = torch.zeros(n + 1, device=device)  # last entry: the global norm
        self.max = torch.zeros(n + 1, device=device)
        self.count = 0

    def update(self, grad_clip: float) -> torch.Tensor:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        norms = torch.stack(torch._foreach_norm(grads)).float()  # (P,)
        layer_sq = torch.zeros(len(self.layers), device=norms.device).index_add_(0, self.owner, norms**2)
        total = layer_sq.sum().sqrt()
        both = torch.cat([layer_sq.sqrt(), total[None]])
        self.sum += both
        torch.maximum(self.max, both, out=self.max)
        self.count += 1
        if grad_clip:  # clip by the global norm without a host sync
            coef = (grad_clip / (total + 1e-6)).clamp(max=1.0)
            torch._foreach_mul_(grads, coef)
        return total

    def rows(self, epoch: int) -> list[dict]:
        mean = (self.sum / max(1, self.count)).tolist()
        mx = self.max.tolist()
        names = self.layers + ["global"]
        return [
            {"epoch": epoch, "layer": n, "depth": i, "mean_norm": mean[i], "max_norm": mx[i]}
            for i, n in enumerate(names)
        ]


@torch.no_grad()
def evaluate(model, data: DeviceData, split, autocast, predictions: bool = False):
    """(loss, accuracy[, (pred, confidence)]) over a split; one host sync at the end."""
    model.eval()
    loss_sum = torch.zeros((), device=data.device)
    correct = torch.zeros((), device=data.device, dtype=torch.long)
    preds, confs = [], []
    for xb, yb in data.eval_batches(split):
        with autocast():
            out = model(xb)
        out = out.float()
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


def train(
    config: TrainConfig,
    data: ArrayDataset | None = None,
    *,
    data_dir: Path | None = None,
    callback: Callback | None = None,
    checkpoint_path: Path | None = None,
) -> RunResult:
    """Train ``config``; resume from ``checkpoint_path`` if it holds this config's last finished epoch."""
    cb = callback or _no_callback
    opts = config.options
    device = resolve_device(opts.device, config.device_kind)
    if data is None:
        data = get_dataset(config.dataset).load(data_dir, config.dataset_options)
    info = data.info
    spec = get_model_spec(config.model)
    torch.manual_seed(opts.seed)
    # Built for the data, started from pretrained weights if asked, with what `finetune` leaves out frozen.
    prepared = prepare_model(spec, opts, info.input_shape, info.num_classes, config.model_settings)
    model, inputs, frozen_bn = prepared.model, prepared.inputs, prepared.frozen_bn
    channels_last = spec.conv and device.type == "cuda"
    model.to(device, memory_format=torch.channels_last) if channels_last else model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    dd = DeviceData(
        data,
        device,
        val_split=opts.val_split,
        train_subset=opts.train_subset,
        normalize=opts.normalize,
        augment=opts.augment,
        channels_last=channels_last,
        channels=inputs.channels,
        size=inputs.size,
        mean=inputs.mean,
        std=inputs.std,
    )
    if len(dd.train) == 0:
        from dlbench.errors import UsageError

        raise UsageError("no training images left after the validation split; lower --val-split")
    optimizer = make_optimizer(model, opts, device)
    norms = GradNorms(model, device)
    bf16 = opts.precision == "bf16" and device.type in ("cuda", "cpu")

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()

    forward = torch.compile(model) if opts.compile else model
    params_total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    steps_per_epoch = dd.steps_per_epoch(opts.batch_size)
    keep_every = max(1, math.ceil(steps_per_epoch / MAX_STEPS_KEPT))

    epochs, steps, grads = [], [], []
    best = {"val_acc": -1.0, "epoch": -1, "state": None}
    start_epoch, bad_epochs = 0, 0
    state = _load_resume(checkpoint_path, config)
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epochs, steps, grads = state["epochs"], state["steps"], state["grads"]
        best, bad_epochs, start_epoch = state["best"], state["bad_epochs"], state["epoch"] + 1
        initial_val_acc = state.get("initial_val_acc", float("nan"))
    else:
        # Validation accuracy before the first step ("epoch -1"): what the starting weights are worth here.
        initial_val_acc = evaluate(forward, dd, dd.val, autocast)[1] if len(dd.val) else float("nan")
    cb(
        "start",
        epochs=opts.epochs,
        start_epoch=start_epoch,
        steps_per_epoch=steps_per_epoch,
        params=params_total,
        resumed=bool(state),
    )

    status, message = OK, prepared.note
    reset_peak_memory(device)
    try:
        for epoch in range(start_epoch, opts.epochs):
            torch.manual_seed(opts.seed * 1000 + epoch)  # dropout draws, reproducible on resume
            model.train()
            for bn in frozen_bn:  # frozen layers keep their running statistics
                bn.eval()
            norms.reset(device)
            loss_buf = torch.zeros(steps_per_epoch, device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            with Timer(device) as timer:
                for i, (xb, yb) in enumerate(dd.train_batches(opts.batch_size, opts.seed, epoch)):
                    lr = lr_at(epoch * steps_per_epoch + i, steps_per_epoch, opts)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    with autocast():
                        out = forward(xb)
                    loss = F.cross_entropy(out.float(), yb, label_smoothing=opts.label_smoothing)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    norms.update(opts.grad_clip)
                    optimizer.step()
                    loss_buf[i] = loss.detach()
                    correct += (out.detach().argmax(1) == yb).sum()
                    seen += yb.shape[0]
                    if (i + 1) % SYNC_EVERY == 0:
                        last = loss_buf[i].item()
                        if not math.isfinite(last):
                            break
                        cb("step", epoch=epoch, step=i + 1, loss=last)
            losses = loss_buf[: i + 1].tolist()
            finite = all(math.isfinite(v) for v in losses)
            steps += [
                {"epoch": epoch, "step": epoch * steps_per_epoch + j, "loss": v}
                for j, v in enumerate(losses)
                if j % keep_every == 0 or not math.isfinite(v)
            ]
            grads += norms.rows(epoch)
            record = {
                "epoch": epoch,
                "train_loss": sum(losses) / len(losses) if finite else float("nan"),
                "train_acc": correct.item() / max(1, seen),
                "val_loss": float("nan"),
                "val_acc": float("nan"),
                "lr": lr,
                "seconds": timer.seconds,
                "images_per_sec": seen / timer.seconds if timer.seconds > 0 else float("nan"),
                "grad_norm": norms.rows(epoch)[-1]["mean_norm"],
            }
            if not finite:
                bad = next(j for j, v in enumerate(losses) if not math.isfinite(v))
                status = DIVERGED
                message = (
                    f"loss became non-finite at epoch {epoch + 1}, step {bad + 1} (lr {lr:g}); "
                    "try a lower --lr or --grad-clip"
                )
                epochs.append(record)
                cb("epoch", **record)
                break
            if len(dd.val):
                record["val_loss"], record["val_acc"] = evaluate(forward, dd, dd.val, autocast)
            epochs.append(record)
            stop = False
            if opts.patience and len(dd.val):
                if record["val_acc"] > best["val_acc"]:
                    state_copy = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                    best, bad_epochs = {"val_acc": record["val_acc"], "epoch": epoch, "state": state_copy}, 0
                else:
                    bad_epochs += 1
                    stop = bad_epochs >= opts.patience
            if checkpoint_path:
                ckpt.save_atomic(
                    {
                        "key": config.key,
                        "epoch": epoch,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "epochs": epochs,
                        "steps": steps,
                        "grads": grads,
                        "best": best,
                        "bad_epochs": bad_epochs,
                        "initial_val_acc": initial_val_acc,
                    },
                    checkpoint_path,
                )
            cb("epoch", **record)
            if stop:
                message = (
                    f"early stop after epoch {epoch + 1}: no better validation accuracy for {opts.patience}"
                )
                break
    except Exception as exc:
        if not is_oom(exc):
            raise
        del optimizer, forward, model
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return RunResult(
            OOM,
            f"out of memory at batch size {opts.batch_size} on {device}; try a smaller --batch-size",
            _summary(epochs, params_total, trainable, device, peak=float("nan"), initial=initial_val_acc),
            epochs,
            steps,
            grads,
        )

    if best["state"] is not None:
        model.load_state_dict(best["state"])  # early stopping: report the best-validation model
    predictions = None
    summary = _summary(epochs, params_total, trainable, device, peak=float("nan"), initial=initial_val_acc)
    if status == OK:
        test_loss, test_acc, (pred, conf) = evaluate(forward, dd, dd.test, autocast, predictions=True)
        with Timer(device) as t_inf:
            evaluate(forward, dd, dd.val if len(dd.val) else dd.test, autocast)
        predictions = {
            "index": dd.test.index.tolist(),
            "label": dd.test.y.cpu().tolist(),
            "pred": pred.tolist(),
            "confidence": conf.tolist(),
        }
        summary.update(test_loss=test_loss, test_acc=test_acc, inference_seconds=t_inf.seconds)
    summary["peak_memory_mb"] = peak_memory_mb(device)
    summary["best_epoch"] = best["epoch"] if best["state"] is not None else len(epochs) - 1
    state_dict = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    result = RunResult(status, message, summary, epochs, steps, grads, predictions, state_dict)
    cb("end", status=status, message=message, **summary)
    return result


def _summary(epochs, params, trainable, device, peak, initial=float("nan")) -> dict:
    done = [e for e in epochs if math.isfinite(e["seconds"])]
    secs = [e["seconds"] for e in done]
    # The first epoch carries one-time costs (cudnn autotuning, compilation); leave it out when we can.
    steady = secs[1:] if len(secs) > 1 else secs
    vals = [e["val_acc"] for e in epochs if math.isfinite(e["val_acc"])]
    return {
        "params": params,
        "trainable": trainable,
        "epochs_run": len(epochs),
        "seconds_per_epoch": sum(steady) / len(steady) if steady else float("nan"),
        "images_per_sec": (sum(e["images_per_sec"] for e in done[1:] or done) / len(done[1:] or done))
        if done
        else float("nan"),
        "initial_val_acc": initial,  # before the first step
        "best_val_acc": max(vals) if vals else float("nan"),
        "final_val_acc": vals[-1] if vals else float("nan"),
        "test_loss": float("nan"),
        "test_acc": float("nan"),
        "inference_seconds": float("nan"),
        "peak_memory_mb": peak,
        **environment(device),
    }


def _load_resume(path: Path | None, config: TrainConfig) -> dict | None:
    if not path or not Path(path).exists():
        return None
    state = ckpt.load(path)
    if state.get("key") != config.key:
        return None  # a checkpoint of another config: never resume from it
    return state
