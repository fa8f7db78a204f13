"""Train a fused group: K configs that differ only in what leaves the architecture alone, as one model.

Each member is built exactly as :func:`dlbench.engine.trainer.train` builds it (``torch.manual_seed(seed)``,
then the family's builder), so its starting weights are those of the same run trained alone; the K models are
then fused (:func:`~dlbench.engine.fused.families.fuse_models`) and trained by :class:`GroupLoop`. The result is one ordinary
:class:`RunResult` per member, its weights unstacked into the family's ``state_dict`` and its summary marked
``fused`` = K. One checkpoint holds the whole group after each epoch; a rerun of the same group resumes it.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from dlbench.config import TrainConfig
from dlbench.data import ArrayDataset, get_dataset
from dlbench.engine import checkpoint as ckpt
from dlbench.engine.environment import Timer, peak_memory_mb, reset_peak_memory, resolve_device
from dlbench.engine.fused.families import fuse_models
from dlbench.engine.fused.group import Callback, GroupLoop, Member
from dlbench.engine.fused.optim import FusedOptimizer
from dlbench.engine.fused.step import FusedStep
from dlbench.engine.loop import EpochLoop
from dlbench.engine.metrics import GradNorms, summary
from dlbench.engine.result import RunResult
from dlbench.engine.state import SCHEMA, Stop, TrainState
from dlbench.engine.trainer import (
    autocast_for,
    cap_threads,
    device_data,
    formats,
    model_counts,
    no_callback,
    predictions_table,
    uses_channels_last,
)
from dlbench.models import get_model_spec
from dlbench.models.transfer import prepare_model


def _build(configs: list[TrainConfig], data: ArrayDataset):
    """The K members' models, seeded as when trained alone, and the first one's Prepared (inputs, counts)."""
    spec = get_model_spec(configs[0].model)
    models, first = [], None
    for c in configs:
        torch.manual_seed(c.options.seed)
        prepared = prepare_model(
            spec, c.options, data.info.input_shape, data.info.num_classes, c.model_settings
        )
        first = first or prepared
        models.append(prepared.model)
    return fuse_models(models, spec.family), first


def train_group(
    configs: list[TrainConfig],
    data: ArrayDataset | None = None,
    *,
    data_dir: Path | None = None,
    callbacks: list[Callback] | None = None,
    progress: Callback | None = None,
    checkpoint_path: Path | None = None,
) -> list[RunResult]:
    """Train ``configs`` (one model, one dataset, one batch size; see :mod:`dlbench.sweep.fused` for what may
    differ) as one fused model; one :class:`RunResult` per config, in order.

    Raises:
        ResumeMismatch: the group's checkpoint loads but does not fit; nothing was trained.
        GroupOutOfMemory: the group did not fit the device (its last checkpoint stays; nothing is recorded).
    """
    opts0, k = configs[0].options, len(configs)
    callbacks = callbacks or [no_callback] * k
    progress = progress or no_callback
    device = resolve_device(opts0.device, configs[0].device_kind)
    cap_threads(device)
    if data is None:
        data = get_dataset(configs[0].dataset).load(data_dir, configs[0].dataset_options)
    model, prepared = _build(configs, data)
    counts = model_counts(configs[0], data.info, prepared)
    channels_last = uses_channels_last(opts0.memory_format, get_model_spec(configs[0].model).conv, device)
    model.to(device)  # weights stay contiguous (one (K, n) view each); activations take the memory format
    model.channels_last = channels_last
    dd = device_data(data, device, opts0, prepared, channels_last)
    hyper = {
        "momentum": [c.options.momentum for c in configs],
        "weight_decay": [c.options.weight_decay for c in configs],
        "nesterov": [float(c.options.nesterov and c.options.momentum > 0) for c in configs],  # as train()
    }
    optimizer = FusedOptimizer(list(model.parameters()), opts0.optimizer, k, hyper)
    bf16 = opts0.precision == "bf16"
    autocast = autocast_for(device, bf16)
    norms = GradNorms(prepared.model, device)  # one member's: names the gradient rows as a run alone does
    step = FusedStep(model, optimizer, dd, [c.options for c in configs], autocast, norms)
    members = [
        Member(c, TrainState(c.key), EpochLoop(step, dd, c.options, cb), cb)
        for c, cb in zip(configs, callbacks, strict=True)
    ]
    loop = GroupLoop(step, dd, members, progress)
    start = _resume(checkpoint_path, configs, model, optimizer, step, members)
    if start == 0:
        split = dd.initial_val
        initial = step.evaluate(split)[1] if len(split) else [math.nan] * k
        for m, acc in zip(members, initial, strict=True):
            m.state.initial_val_acc = acc
    started = {"epochs": opts0.epochs, "start_epoch": start, "steps_per_epoch": loop.steps_per_epoch}
    for callback in [*callbacks, progress]:
        callback("start", **started, params=counts["params"], resumed=start > 0)

    def save(epoch: int) -> None:
        ckpt.save_atomic(
            {
                "group": [c.key for c in configs],
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "active": step.active.cpu(),
                "members": [m.to_checkpoint() for m in members],
            },
            checkpoint_path,
        )

    reset_peak_memory(device)
    loop.run_group(start, save if checkpoint_path else None)
    results = _finish(members, step, dd, counts, device, (bf16, channels_last))
    progress("end", status=results[0].status, message="", **results[0].summary)
    return results


def _resume(path, configs, model, optimizer, step, members) -> int:
    """Load the group's checkpoint into the model, optimizer and members; the epoch to start from (0: fresh).

    A missing file or another group's checkpoint is a fresh start."""
    if not path or not Path(path).exists():
        return 0
    raw = ckpt.load(path)
    if not isinstance(raw, dict) or raw.get("group") != [c.key for c in configs]:
        return 0
    try:
        epoch = int(raw["epoch"])
        if epoch >= configs[0].options.epochs:
            raise ValueError(f"its epoch {epoch + 1} is past --epochs {configs[0].options.epochs}")
        model.load_state_dict(raw["model"])
        optimizer.load_state_dict(raw["optimizer"])
        step.active.copy_(raw["active"])
        for m, saved in zip(members, raw["members"], strict=True):
            m.state = TrainState(**{n: saved["state"][n] for n in SCHEMA if n in saved["state"]})
            m.stop = Stop(saved["stop"]) if saved["stop"] else None
            m.message, m.final = saved["message"], saved["final"]
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise ckpt.ResumeMismatch(path, f"{type(exc).__name__}: {first}") from None
    return epoch + 1


def _finish(members: list[Member], step: FusedStep, dd, counts: dict, device, fmt) -> list[RunResult]:
    """Each member's best (early stopping) or last weights, one test pass for the group, one result each."""
    model = step.model
    kept = []  # what each member stores: the snapshot it stopped with (with its own batch-norm step count, which
    # the group's one shared counter no longer holds), else its weights in the group now (it trained every step)
    for k, m in enumerate(members):
        weights = m.state.best["state"] if m.state.best["state"] is not None else m.final
        if weights is not None:
            model.load_member(k, weights)
        kept.append(weights)
    ok = [m.stop.status == "ok" for m in members]
    tested = None
    if any(ok):
        with Timer(device) as t_inf:
            tested = step.evaluate(dd.test, predictions=True)
    peak = peak_memory_mb(device)
    results = []
    for k, m in enumerate(members):
        run_summary = summary(m.state.epochs, counts, device, m.state.initial_val_acc)
        run_summary.update(formats(*fmt), fused=len(members))
        predictions = None
        if ok[k]:
            pred, conf = tested[2][k]
            predictions = predictions_table(dd.test, pred, conf)
            run_summary.update(test_loss=tested[0][k], test_acc=tested[1][k], inference_seconds=t_inf.seconds)
        run_summary["peak_memory_mb"] = peak
        best = m.state.best
        run_summary["best_epoch"] = best["epoch"] if best["state"] is not None else len(m.state.epochs) - 1
        s = m.state
        results.append(
            RunResult(
                m.stop.status,
                m.message,
                run_summary,
                s.epochs,
                s.steps,
                s.grads,
                predictions,
                kept[k] if kept[k] is not None else model.member(k),
            )
        )
        m.callback("end", status=m.stop.status, message=m.message, **run_summary)
    return results
