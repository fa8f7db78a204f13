"""Train one resolved config on one device: build, resume, run the epoch loop, evaluate, summarise.

The step loop keeps everything on the device (see :mod:`.loop`); the model, optimizer and history are
checkpointed after every epoch as a :class:`~.state.TrainState`, and shuffling, augmentation and dropout are
seeded by (seed, epoch), so a run resumed from its checkpoint ends exactly where an uninterrupted one would on
the CPU.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn

from dlbench import hardware
from dlbench.config import TrainConfig
from dlbench.data import ArrayDataset, get_dataset
from dlbench.engine import checkpoint as ckpt
from dlbench.engine.device_data import DeviceData
from dlbench.engine.environment import Timer, peak_memory_mb, reset_peak_memory, resolve_device
from dlbench.engine.loop import ClassifierStep, EpochLoop
from dlbench.engine.metrics import summary
from dlbench.engine.result import RunResult
from dlbench.engine.state import Stop, TrainState
from dlbench.errors import UsageError
from dlbench.models import get_model_spec
from dlbench.models.counting import build_meta, count_macs
from dlbench.models.transfer import Prepared, prepare_model

Callback = Callable[..., None]
_MACS: dict[tuple, int | None] = {}  # MACs per image by architecture (model, settings, input shape, classes)


def no_callback(event: str, **data) -> None:
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


def cap_threads(device: torch.device) -> None:
    """On a CPU, torch's threads capped at the CPUs this process may use: torch counts the machine's cores, not
    the container's or job's share."""
    if device.type == "cpu" and torch.get_num_threads() > (cpus := hardware.available_cpus()):
        torch.set_num_threads(cpus)


def autocast_for(device: torch.device, bf16: bool) -> Callable:
    """A new autocast context per call: bf16 where the run's precision says so, else nothing."""

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()

    return autocast


def formats(bf16: bool, channels_last: bool) -> dict:
    """The resolved precision and memory format, as the run's summary records them."""
    return {
        "precision": "bf16" if bf16 else "fp32",
        "memory_format": "channels_last" if channels_last else "contiguous",
    }


def predictions_table(split, pred: torch.Tensor, conf: torch.Tensor) -> dict:
    """The test predictions a run stores: each image's index, label, predicted class and confidence."""
    return {
        "index": split.index.tolist(),
        "label": split.y.cpu().tolist(),
        "pred": pred.tolist(),
        "confidence": conf.tolist(),
    }


def model_counts(config: TrainConfig, info, prepared: Prepared) -> dict:
    """params, trainable, and MACs per image (counted once on the meta device; NaN where it cannot run)."""
    shape = prepared.inputs.input_shape(info.input_shape)
    arch = (config.model, repr(sorted(config.model_settings.items())), shape, info.num_classes)
    if arch not in _MACS:  # a sweep over optimizer settings counts its architecture once per process
        spec = get_model_spec(config.model)
        _MACS[arch] = count_macs(build_meta(spec, shape, info.num_classes, config.model_settings), shape)
    macs = _MACS[arch]
    params = list(prepared.model.parameters())
    return {
        "params": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in params if p.requires_grad),
        "macs": math.nan if macs is None else macs,
    }


def uses_channels_last(memory_format: str, conv: bool, device: torch.device) -> bool:
    """The resolved memory format; "auto" only in configs recorded before the option existed, which trained
    convolutional models channels_last on CUDA."""
    if memory_format == "auto":
        return conv and device.type == "cuda"
    return memory_format == "channels_last"


def device_data(data: ArrayDataset, device, opts, prepared: Prepared, channels_last: bool) -> DeviceData:
    """The dataset resident on ``device``, shaped for the prepared model (shared with the fused engine)."""
    inputs = prepared.inputs
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
        raise UsageError("no training images left after the validation split; lower --val-split")
    return dd


def train(
    config: TrainConfig,
    data: ArrayDataset | None = None,
    *,
    data_dir: Path | None = None,
    callback: Callback | None = None,
    checkpoint_path: Path | None = None,
) -> RunResult:
    """Train ``config``; resume from ``checkpoint_path`` if it holds this config's last finished epoch.

    Raises:
        CheckpointError: the checkpoint cannot be loaded safely; ``ResumeMismatch`` (a CheckpointError) when it
            loads but does not fit this run. Either is raised before any training step, the file left alone.
    """
    cb = callback or no_callback
    opts = config.options
    device = resolve_device(opts.device, config.device_kind)
    cap_threads(device)
    if data is None:
        data = get_dataset(config.dataset).load(data_dir, config.dataset_options)
    spec = get_model_spec(config.model)
    torch.manual_seed(opts.seed)
    # Built for the data, started from pretrained weights if asked, with what `finetune` leaves out frozen.
    prepared = prepare_model(spec, opts, data.info.input_shape, data.info.num_classes, config.model_settings)
    model = prepared.model
    channels_last = uses_channels_last(opts.memory_format, spec.conv, device)
    model.to(device, memory_format=torch.channels_last) if channels_last else model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    dd = device_data(data, device, opts, prepared, channels_last)
    optimizer = make_optimizer(model, opts, device)
    # Counted once the optimizer has imported torch._dynamo (every torch optimizer does): then MACs are counted
    # on the meta device, which costs less than the forward pass on the CPU that spares a count that import.
    counts = model_counts(config, data.info, prepared)
    bf16 = opts.precision == "bf16" and device.type in ("cuda", "cpu")
    autocast = autocast_for(device, bf16)
    forward = torch.compile(model) if opts.compile else model
    step = ClassifierStep(model, forward, optimizer, dd, opts, autocast, prepared.frozen_bn)
    loop = EpochLoop(step, dd, opts, cb)
    state = ckpt.load_resume(checkpoint_path, config.key, opts.epochs, model, optimizer)
    resumed = state is not None
    if state is None:
        # Validation accuracy before the first step ("epoch -1"): what the starting weights are worth here;
        # from scratch that is chance level, measured on a bounded part of the split.
        split = dd.val if opts.init == "pretrained" else dd.initial_val
        initial = step.evaluate(split)[1] if len(split) else math.nan
        state = TrainState(config.key, initial_val_acc=initial)
    cb(
        "start",
        epochs=opts.epochs,
        start_epoch=state.next_epoch,
        steps_per_epoch=loop.steps_per_epoch,
        params=counts["params"],
        resumed=resumed,
    )

    def save(s: TrainState) -> None:
        s.capture(model, optimizer)
        ckpt.save_atomic(s.to_checkpoint(), checkpoint_path)

    reset_peak_memory(device)
    stop, message = loop.run(state, save if checkpoint_path else None)
    run_summary = summary(state.epochs, counts, device, state.initial_val_acc)
    run_summary.update(formats(bf16, channels_last))
    if stop is Stop.OOM:  # free the device memory for the caller's next run
        state.model, state.optimizer = {}, {}
        del step, loop, optimizer, forward, model, prepared
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return RunResult(stop.status, message, run_summary, state.epochs, state.steps, state.grads)
    return _finish(state, stop, message or prepared.note, run_summary, step, dd, cb)


def _finish(state: TrainState, stop: Stop, message: str, run_summary: dict, step, dd, cb) -> RunResult:
    """Test-set evaluation and predictions (when the run did not diverge), then the result and ``end``."""
    device = dd.device
    best = state.best["state"]
    if best is not None:
        step.model.load_state_dict(best)  # early stopping: report the best-validation model
    predictions = None
    if stop.status == "ok":
        with Timer(device) as t_inf:  # inference time: the test pass, which is done anyway
            test_loss, test_acc, (pred, conf) = step.evaluate(dd.test, predictions=True)
        predictions = predictions_table(dd.test, pred, conf)
        run_summary.update(test_loss=test_loss, test_acc=test_acc, inference_seconds=t_inf.seconds)
    run_summary["peak_memory_mb"] = peak_memory_mb(device)
    run_summary["best_epoch"] = state.best["epoch"] if best is not None else len(state.epochs) - 1
    state_dict = {k: v.detach().cpu() for k, v in step.model.state_dict().items()}
    result = RunResult(
        stop.status, message, run_summary, state.epochs, state.steps, state.grads, predictions, state_dict
    )
    cb("end", status=stop.status, message=message, **run_summary)
    return result
