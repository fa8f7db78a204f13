"""The training options of `train` and `sweep`, declared once and derived from ``TrainOptions``.

``with_train_options`` appends one CLI flag per ``TrainOptions`` field to a command's signature (typer reads
``__signature__``), and hands the command only the flags the user actually gave, as ``train_opts``.
``--from-run KEY`` is resolved here, through the cache of the command's ``--cache-dir``, into the source run's
full key and the absolute path of its weights file, so the engine never needs to know the cache.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect

import typer

from dlbench.config import TrainOptions
from dlbench.settings import format_value

HELP = {
    "optimizer": "sgd | adam | adamw",
    "lr": "Learning rate (peak rate with a schedule).",
    "momentum": "SGD momentum.",
    "nesterov": "Nesterov momentum (SGD).",
    "weight_decay": "L2 weight decay.",
    "schedule": "none | step | cosine | onecycle",
    "warmup_epochs": "Linear warm-up length in epochs (fractions allowed).",
    "step_every": "Step schedule: epochs between decays (0: a third of the run).",
    "gamma": "Step schedule: decay factor.",
    "batch_size": "Images per optimizer step.",
    "epochs": "Training epochs.",
    "label_smoothing": "Label smoothing of the cross-entropy loss.",
    "grad_clip": "Clip the global gradient norm to this value (0: off).",
    "patience": "Early stopping after this many epochs without a better validation accuracy (0: off).",
    "val_split": "Fraction of the training set held out for validation.",
    "train_subset": "Train on only the first N training images (0: all).",
    "normalize": "Normalise inputs with the dataset's mean and std.",
    "augment": "Random crop (padding 4) and horizontal flip, on the device.",
    "seed": "Random seed.",
    "precision": "auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32) | fp32 | bf16",
    "memory_format": "auto (channels_last for conv models on CUDA and AVX2+ CPUs) | channels_last | contiguous",
    "device": "auto | cpu | cuda | cuda:N | mps",
    "compile": "torch.compile the model.",
    "init": "scratch | pretrained (torchvision's DEFAULT weights for tv:NAME; --weights/--from-run imply it).",
    "finetune": "full | linear-probe (head only) | last-K (head + last K blocks, e.g. last-2).",
    "weights": "Start from this local state dict (head re-initialised if its shape differs).",
    "from_run": "Start from the final weights of this cached run (its key; same model).",
    "input_size": "Resize images to N x N on the device (0: the pretrained weights' own size, else the data's).",
    "transfer": "Shorthand for (init, finetune): scratch | linear-probe | fine-tune | last-K; a sweep axis.",
}
PANEL = "Training options"


def _option(field: dataclasses.Field) -> tuple[type, typer.models.OptionInfo]:
    flag = "--" + field.name.replace("_", "-")
    default = field.default
    shown = format_value(default) if default != "" else "none"
    # `\[` keeps rich from reading "[default: sgd]" as a markup tag and dropping it
    help_text = f"{HELP.get(field.name, '')} \\[default: {shown}]"
    if isinstance(default, bool):
        return bool | None, typer.Option(
            None, f"{flag}/--no-{flag[2:]}", help=help_text, show_default=False, rich_help_panel=PANEL
        )
    return type(default) | None, typer.Option(
        None, flag, help=help_text, show_default=False, rich_help_panel=PANEL
    )


TRAIN_FLAGS = {f.name: _option(f) for f in dataclasses.fields(TrainOptions)}


def with_train_options(fn):
    """Add every training flag to ``fn``'s CLI signature; ``fn`` receives ``train_opts`` (flags given)."""
    sig = inspect.signature(fn, eval_str=True)
    own = [p for p in sig.parameters.values() if p.name != "train_opts"]
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann)
        for name, (ann, opt) in TRAIN_FLAGS.items()
    ]

    @functools.wraps(fn)
    def wrapper(**kwargs):
        given = {name: kwargs.pop(name) for name in TRAIN_FLAGS}
        opts = {k: v for k, v in given.items() if v is not None}
        for name in ("from_run", "weights"):
            if name in opts and not str(opts[name]).strip():
                from dlbench.errors import UsageError

                what = "a run key (see `dlbench runs`)" if name == "from_run" else "the path of a state dict"
                raise UsageError(f"--{name.replace('_', '-')} is empty; give {what}")
        if opts.get("from_run"):
            from dlbench import paths
            from dlbench.errors import UsageError
            from dlbench.sweep.grid import source_run_options

            if opts.get("weights"):
                raise UsageError("give either --weights PATH or --from-run KEY, not both")
            opts.update(
                source_run_options(
                    opts["from_run"], paths.cache_dir(kwargs.get("cache_dir")), kwargs.get("model")
                )
            )
        return fn(**kwargs, train_opts=opts)

    wrapper.__signature__ = sig.replace(parameters=own + extra)
    wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
    del wrapper.__wrapped__  # typer must read our signature, not the original's
    return wrapper
