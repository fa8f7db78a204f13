"""What must hold for a trial to be trainable at all, checked before anything is written or loaded.

:func:`check_trial` is run by `sweep` for every trial of its plan before the first one trains, and by `train`
before it trains (not on a cache hit, so cached answers stay fast). It builds the model on the meta device
(no memory, no weights), checks the fine-tuning choice against it, counts the training images the split
leaves, and compares what the parameters alone need with the memory the device has free.
"""

from __future__ import annotations

import os

from dlbench.config import TrainConfig
from dlbench.errors import UsageError


def check_trial(config: TrainConfig, here: bool = True) -> None:
    """Refuse, in one line, a config that cannot train: a model that does not fit its data or the memory, or a
    split that leaves no training image. ``here`` False (a trial for a cluster node): this machine's memory says
    nothing about the node's, so memory is not checked.

    Raises:
        UsageError: The reason, with what to change.
    """
    from dlbench.analysis.params import build_meta
    from dlbench.data import get_dataset
    from dlbench.models import get_model_spec
    from dlbench.models.transfer import check_finetune, input_plan

    spec = get_model_spec(config.model)
    info = get_dataset(config.dataset).info(None, config.dataset_options)
    shape = input_plan(spec, config.options, info.input_shape).input_shape(info.input_shape)
    meta = build_meta(spec, shape, info.num_classes, config.model_settings)
    check_finetune(meta, spec, config.options.finetune, info.num_classes)
    check_split(config, info.train_size)
    if here:
        check_memory(config, meta)


def training_images(train_size: int, val_split: float, train_subset: int) -> int:
    """How many images train: what the validation split leaves (rounded as the engine splits), capped by
    ``--train-subset`` (0: no cap)."""
    left = train_size - int(round(train_size * val_split))
    return min(left, train_subset) if train_subset else left


def check_split(config: TrainConfig, train_size: int) -> None:
    """At least one training image after the split (a batch larger than the set is one short batch)."""
    opts = config.options
    if training_images(train_size, opts.val_split, opts.train_subset) < 1:
        raise UsageError(
            f"--val-split {opts.val_split:g} leaves no training image of the {train_size} in "
            f"{config.dataset}; lower --val-split"
        )


def optimizer_states(config: TrainConfig) -> int:
    """Tensors the optimizer keeps per parameter: Adam/AdamW two moments, SGD a momentum buffer if any."""
    opts = config.options
    if opts.optimizer in ("adam", "adamw"):
        return 2
    return 1 if opts.momentum > 0 else 0


def check_memory(config: TrainConfig, meta) -> None:
    """Refuse a model whose parameters, gradients and optimizer states alone exceed the device's free memory
    (activations come on top, so passing this check does not promise the run fits)."""
    params = list(meta.parameters())
    weights = sum(p.numel() * p.element_size() for p in params)
    trained = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    need = weights + trained * (1 + optimizer_states(config))
    free, where = available_memory(config)
    if free is not None and need > free:
        count = sum(p.numel() for p in params)
        raise UsageError(
            f"{config.model} has {count:,} parameters: they need {human_bytes(need)} with their gradients "
            f"and optimizer states, more than the {human_bytes(free)} free {where}; make the model smaller"
        )


def available_memory(config: TrainConfig) -> tuple[int | None, str]:
    """(bytes free for this process on the config's device, where), or (None, ...) when it cannot be told."""
    if config.device_kind == "cuda":
        import torch

        device = config.options.device if config.options.device.startswith("cuda") else "cuda"
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free), f"on {device}"
    return _host_available(), "in this machine's memory"


def _host_available() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else free pages from sysconf; None where neither exists."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def human_bytes(n: float) -> str:
    """1234567890 -> '1.1 GiB'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
