"""From names and raw options to a validated :class:`~dlbench.config.TrainConfig`, and back to a command line.

This is where the registries meet the config: ``resolve_config`` fills every default of the model, the dataset
and the training options and validates them; ``reproduce_command`` writes the shortest `dlbench train` line
for a config, leaving out what equals a default. ``dlbench.config`` itself stays plain data and imports no
registry, so the cache and the report can read configs without knowing models.
"""

from __future__ import annotations

import dataclasses

from dlbench import hardware
from dlbench.commandline import CommandLine
from dlbench.config import (
    TRAIN_OPTION_NAMES,
    TrainConfig,
    TrainOptions,
    make_options,
    train_option_defaults,
    transfer_label,
    transfer_pair,
)
from dlbench.data import get_dataset
from dlbench.errors import UsageError
from dlbench.models import get_model_spec
from dlbench.settings import format_value


def resolve_device_kind(device: str) -> str:
    """auto -> cuda if available, else mps, else cpu. Imports torch unless no GPU can exist here."""
    if device == "cpu" or (device == "auto" and not hardware.accelerator_possible()):
        return "cpu"
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    kind = device.split(":")[0]
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(device[5:]) if device.startswith("cuda:") else 0
        if index >= count:
            seen = f"{count} CUDA device(s)" if count else "no CUDA GPU"
            built = "" if torch.version.cuda else " (this torch is a CPU build)"
            raise UsageError(f"--device {device}: torch sees {seen}{built}; use --device cpu or auto")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError(f"--device {device}: no Apple GPU (MPS) is available; use --device cpu or auto")
    return kind


def auto_precision(device_kind: str) -> str:
    """What ``--precision auto`` means on this device: bf16 autocast on CUDA and on a CPU with native bf16
    (:func:`dlbench.hardware.native_bf16`), fp32 elsewhere (MPS, CPUs that would emulate bf16)."""
    if device_kind == "cuda":
        return "bf16"
    return hardware.cpu_precision() if device_kind == "cpu" else "fp32"


def auto_memory_format(device_kind: str, conv: bool) -> str:
    """What ``--memory-format auto`` means: channels_last for a convolutional model on CUDA and on an AVX2+
    CPU (oneDNN's NHWC convolutions), contiguous otherwise."""
    fast = device_kind == "cuda" or (device_kind == "cpu" and hardware.nhwc_convolutions())
    return "channels_last" if conv and fast else "contiguous"


def resolve_config(
    model: str,
    dataset: str,
    model_settings: dict | None = None,
    dataset_options: dict | None = None,
    options: dict | TrainOptions | None = None,
    device_kind: str | None = None,
) -> TrainConfig:
    """Validate names and values and fill every default: the config whose key identifies the run.

    ``device_kind`` (cpu, cuda) names the device of the machine that will train it when that is another one
    (a cluster node); None: the device ``--device`` resolves to here."""
    spec = get_model_spec(model)
    ds = get_dataset(dataset)
    opts = options if isinstance(options, TrainOptions) else make_options(options)
    kind = device_kind or resolve_device_kind(opts.device)
    precision = auto_precision(kind) if opts.precision == "auto" else opts.precision
    memory_format = opts.memory_format
    if memory_format == "auto":
        memory_format = auto_memory_format(kind, spec.conv)
    opts = dataclasses.replace(opts, precision=precision, memory_format=memory_format)
    opts = _resolve_transfer(opts, spec)
    return TrainConfig(
        model=spec.name,
        dataset=ds.name,
        model_settings=spec.resolve(model_settings),
        dataset_options=ds.resolve(dataset_options),
        options=opts,
        device_kind=kind,
    )


def _resolve_transfer(opts: TrainOptions, spec) -> TrainOptions:
    """Canonical transfer options: the shorthand expanded, --weights absolute and implying --init pretrained."""
    init, finetune, weights = opts.init, opts.finetune, opts.weights
    pair = transfer_pair(opts.transfer)  # None for a resolved config's label such as scratch+last-2
    if pair:
        t_init, t_finetune = pair
        for name, given, implied, default in (
            ("init", init, t_init, "scratch"),
            ("finetune", finetune, t_finetune, "full"),
        ):
            if given != default and given != implied:
                raise UsageError(
                    f"--transfer {opts.transfer} means --{name} {implied}; drop --{name} {given}"
                )
        init, finetune = t_init, t_finetune
        if opts.transfer == "scratch" and (weights or opts.from_run):
            raise UsageError("--transfer scratch starts from random weights; drop --weights / --from-run")
    if opts.from_run and not weights:
        raise UsageError(
            f"--from-run {opts.from_run} needs the path of that run's weights: resolve it through the "
            "cache (the `train` and `sweep` commands do; in Python: "
            "dlbench.sweep.grid.source_run_options)"
        )
    if weights:
        from pathlib import Path

        path = Path(weights).expanduser().resolve()
        if not path.is_file():
            why = (
                "is a folder"
                if path.is_dir()
                else "is not a regular file"
                if path.exists()
                else "does not exist"
            )
            raise UsageError(f"weights file {path} {why}; give the path of a saved state dict")
        weights, init = str(path), "pretrained"
    if init == "pretrained" and not weights and spec.family != "torchvision":
        raise UsageError(
            f"'{spec.name}' has no published pretrained weights; start from a cached run with "
            "--from-run KEY or from a state dict with --weights PATH (or use a tv:NAME model)"
        )
    return dataclasses.replace(
        opts, init=init, finetune=finetune, weights=weights, transfer=transfer_label(init, finetune)
    )


def reproduce_command(config: TrainConfig) -> str:
    """The shortest `dlbench train` command line that reproduces this run (non-default values only), every
    value shell-quoted so that pasting it into a shell runs exactly this command."""
    cmd = CommandLine("train").opt("--model", config.model).opt("--dataset", config.dataset)
    model_defaults = get_model_spec(config.model).defaults
    for k, v in sorted(config.model_settings.items()):
        if k not in model_defaults or model_defaults[k] != v:
            cmd.opt("--set", f"{k}={format_value(v)}")
    data_defaults = get_dataset(config.dataset).defaults
    for k, v in sorted(config.dataset_options.items()):
        if data_defaults.get(k) != v:
            cmd.opt("--dataset-opt", f"{k}={format_value(v)}")
    defaults = train_option_defaults()
    auto = {
        "precision": auto_precision(config.device_kind),
        "memory_format": auto_memory_format(config.device_kind, get_model_spec(config.model).conv),
    }
    for k in TRAIN_OPTION_NAMES:
        v = getattr(config.options, k)
        if v == defaults[k] or k in ("device", "transfer") or auto.get(k) == v:
            continue
        if (k == "weights" and config.options.from_run) or (k == "init" and config.options.weights):
            continue  # --from-run resolves to its weights path; --weights implies --init pretrained
        flag = "--" + k.replace("_", "-")
        if isinstance(v, bool):
            cmd.flag(flag if v else "--no-" + flag[2:])
        else:
            cmd.opt(flag, format_value(v))
    if config.device_kind != "cpu":
        cmd.opt("--device", config.device_kind)
    return cmd.text
