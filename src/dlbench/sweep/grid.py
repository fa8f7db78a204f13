"""What a sweep means: axes (one or a grid), their default values, and the list of trial configs.

An axis is a training option (lr, batch-size, ...), a model setting (activation, patch-size, depth, ...) or a
dataset option (train_size, ...). Values are the raw strings of the command line, typed by whichever of those
owns the name, so ``--grid depth=2,4`` and ``--set depth=2`` mean the same thing. ``transfer`` (an option) sweeps
(init, finetune) pairs: scratch, linear-probe and fine-tune; its scratch trial starts from random weights even
when --weights or --from-run is given for the others.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field

from dlbench.config import SCHEDULES, TRAIN_OPTION_NAMES, TRANSFER_MODES, TrainConfig
from dlbench.errors import UsageError
from dlbench.resolve import resolve_config
from dlbench.settings import canon_key
from dlbench.sweep.study import Axis, Study, StudyTrial

DEFAULT_VALUES = {
    "lr": ["1e-1", "1e-2", "1e-3", "1e-4", "1e-5"],
    "activation": ["relu", "tanh", "sigmoid"],
    "batch_size": ["16", "32", "64", "128"],
    "optimizer": ["sgd", "adam", "adamw"],
    "weight_decay": ["0", "1e-4", "5e-4", "1e-3"],
    "momentum": ["0", "0.5", "0.9", "0.99"],
    "epochs": ["5", "10", "20"],
    "normalize": ["false", "true"],
    "augment": ["false", "true"],
    "batchnorm": ["false", "true"],
    "seed": ["0", "1", "2"],
    "schedule": list(SCHEDULES),
    "label_smoothing": ["0", "0.1", "0.2"],
    "dropout": ["0", "0.25", "0.5"],
    "depth": ["1", "2", "4", "8"],
    "width": ["32", "64", "128", "256"],
    "kernel_size": ["1", "3", "5", "7"],
    "embed_dim": ["128", "256", "512"],
    "num_blocks": ["2", "4", "8"],
    "transfer": list(TRANSFER_MODES),
    "finetune": ["full", "linear-probe", "last-1", "last-2"],
    "init": ["scratch", "pretrained"],
}


@dataclass
class Trial:
    values: dict[str, str]  # axis name -> raw value
    repeat: int
    config: TrainConfig


@dataclass
class SweepPlan:
    name: str
    model: str
    dataset: str
    axes: list[Axis]
    repeats: int
    trials: list[Trial] = field(default_factory=list)
    fixed: dict = field(default_factory=dict)  # settings, dataset options and options held fixed
    held: str = ""  # hash of the resolved fixed part: see held_fixed
    named: bool = False  # the name was given (--name), not made from the axes

    def study(self, command: str = "") -> Study:
        """The typed study this plan runs (what the cache keeps, so `report` can rebuild tables and figures)."""
        return Study(
            name=self.name,
            model=self.model,
            dataset=self.dataset,
            axes=list(self.axes),
            trials=[StudyTrial(t.config.key, dict(t.values), t.repeat) for t in self.trials],
            fixed=self.fixed,
            repeats=self.repeats,
            command=command,
            held=self.held,
        )


def axis_kind(name: str, model: str, dataset: str) -> str:
    from dlbench.data import get_dataset
    from dlbench.models import get_model_spec

    if name in TRAIN_OPTION_NAMES:
        return "option"
    spec = get_model_spec(model)
    if name in spec.defaults or spec.open_settings:
        return "setting"
    if name in get_dataset(dataset).defaults:
        return "dataset"
    from dlbench.errors import UnknownNameError

    choices = list(TRAIN_OPTION_NAMES) + list(spec.defaults) + list(get_dataset(dataset).defaults)
    raise UnknownNameError(
        "sweep parameter",
        name,
        choices,
        hint=f"a training option, a setting of {model} or an option of {dataset}",
    )


def default_values(name: str, model: str, dataset: str) -> list[str]:
    """The grid used when VALUES is omitted; patch sizes are the divisors of the image size from 2."""
    if name == "patch_size":
        from dlbench.data import get_dataset

        _, h, w = get_dataset(dataset).info().input_shape
        return [str(d) for d in range(2, min(h, w) + 1) if h % d == 0 and w % d == 0]
    if name not in DEFAULT_VALUES:
        raise UsageError(f"no default values for '{name}'; give them: dlbench sweep {name} V1,V2,...")
    return list(DEFAULT_VALUES[name])


def default_name(axes: list[Axis], model: str, dataset: str) -> str:
    """``lr-mlp-shapes``: the axes, the model and the dataset (see :func:`dlbench.sweep.inline.check_name` for
    the name a sweep takes when the cache holds another study under this one)."""
    return "-".join([*(a.name.replace("_", "-") for a in axes), model, dataset])


def held_fixed(plan: SweepPlan) -> str:
    """A hash of what ``plan`` holds fixed, resolved (so ``--lr 0.1`` and ``--lr 1e-1`` agree, and a value
    equal to its default is the same as none), with its repeats: two sweeps of the same axes are the same
    study exactly when this agrees."""
    mine = _fixed_part(plan.trials[0].config, plan.axes, plan.repeats)
    if any(axis.name == "transfer" for axis in plan.axes):  # the source of the non-scratch trials
        mine["source"] = [str(plan.fixed["options"].get(k) or "") for k in ("from_run", "weights")]
    return hashlib.sha256(json.dumps(mine, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _fixed_part(config: TrainConfig, axes: list[Axis], repeats: int) -> dict:
    """A trial's resolved config without its axis values: what every trial of the sweep shares."""
    d = config.to_dict()
    part = {"option": "options", "setting": "model_settings", "dataset": "dataset_options"}
    for axis in axes:
        d[part[axis.kind]].pop(axis.name, None)
        if axis.name == "transfer":
            for name in ("init", "finetune", "weights", "from_run"):  # set per trial: see held_fixed
                d["options"].pop(name, None)
    d["repeats"] = repeats
    return d


def _resolve_axes(
    axes: list[tuple[str, list[str] | None]],
    model: str,
    dataset: str,
    settings: dict,
    dataset_options: dict,
    options: dict,
    repeats: int,
) -> list[Axis]:
    """Canonical, typed axes with their values (the defaults where None); UsageError for a conflict."""
    resolved, seen = [], set()
    for raw_name, values in axes:
        key = canon_key(raw_name)
        if key in seen:
            raise UsageError(f"'{key}' is swept twice; give its values once")
        seen.add(key)
        kind = axis_kind(key, model, dataset)
        fixed_here = {"option": options, "setting": settings, "dataset": dataset_options}[kind]
        if key in {canon_key(k) for k in fixed_here}:
            raise UsageError(f"'{key}' is both swept and fixed; drop the fixed value")
        if key == "transfer" and ({"init", "finetune"} & (seen | {canon_key(k) for k in options})):
            raise UsageError(
                "the transfer axis sets init and finetune; drop --init/--finetune (or sweep those)"
            )
        if key in ("init", "finetune") and "transfer" in seen | {canon_key(k) for k in options}:
            raise UsageError(f"'{key}' and transfer both set init/finetune; give one of them")
        if key in ("weights", "from_run"):
            raise UsageError(
                f"'{key}' cannot be swept; give --{key.replace('_', '-')} once (sweep transfer to "
                "compare with training from scratch)"
            )
        if key == "seed" and repeats > 1:
            raise UsageError("sweep seeds or use --repeats, not both")
        vals = values if values is not None else default_values(key, model, dataset)
        if not vals:
            raise UsageError(f"no values to sweep for '{key}'")
        resolved.append(Axis(key, kind, list(vals)))
    return resolved


def plan_sweep(
    model: str,
    dataset: str,
    axes: list[tuple[str, list[str] | None]],
    *,
    settings: dict,
    dataset_options: dict,
    options: dict,
    repeats: int = 1,
    name: str | None = None,
    device_kind: str | None = None,
) -> SweepPlan:
    """Expand axes (values None: the defaults) into trial configs, each checked by
    :func:`dlbench.sweep.checks.check_trial` before anything runs or is written.

    ``device_kind`` is the device the trials will run on when that is not this machine (a Slurm job's GPU);
    None: resolve ``--device`` here."""
    from dlbench.data import get_dataset
    from dlbench.models import get_model_spec
    from dlbench.sweep.checks import check_trial

    if not axes:
        raise UsageError("nothing to sweep: give PARAM [VALUES] or at least one --grid NAME=V1,V2")
    if repeats < 1:
        raise UsageError(f"--repeats must be at least 1, got {repeats}")
    if name is not None and not name.strip():
        raise UsageError("--name is empty; give the sweep a name, or leave --name out for the default")
    get_model_spec(model)  # a misspelt model or dataset is one error, not one per trial
    get_dataset(dataset)
    resolved_axes = _resolve_axes(axes, model, dataset, settings, dataset_options, options, repeats)

    base_seed = int(options.get("seed", 0))
    # --from-run resolves to a weights path in this cache: keep only the key, which is what reproduces the sweep
    shown = {k: v for k, v in options.items() if not (canon_key(k) == "weights" and options.get("from_run"))}
    plan = SweepPlan(
        name or "",
        model,
        dataset,
        resolved_axes,
        repeats,
        fixed={"settings": settings, "dataset_options": dataset_options, "options": shown},
    )
    for combo in itertools.product(*(a.values for a in resolved_axes)):
        values = dict(zip((a.name for a in resolved_axes), combo, strict=True))
        s, d, o = dict(settings), dict(dataset_options), dict(options)
        for axis, value in zip(resolved_axes, combo, strict=True):
            {"option": o, "setting": s, "dataset": d}[axis.kind][axis.name] = value
            if axis.name == "transfer" and value == "scratch":  # random weights: no source for this trial
                o = {k: v for k, v in o.items() if canon_key(k) not in ("weights", "from_run")}
        for r in range(repeats):
            if repeats > 1:
                o["seed"] = base_seed + r
            try:
                config = resolve_config(model, dataset, s, d, o, device_kind=device_kind)
                check_trial(config, here=device_kind is None)
            except UsageError as exc:  # say which trial (a UsageError: every subclass exits with 2)
                where = ", ".join(f"{k}={v}" for k, v in values.items())
                raise UsageError(f"trial {where}: {exc}") from None
            plan.trials.append(Trial(values, r, config))
    plan.held = held_fixed(plan)
    plan.name, plan.named = name or default_name(resolved_axes, model, dataset), bool(name)
    return plan


def source_run_options(key: str, cache_root, model: str | None = None) -> dict:
    """Resolve ``--from-run KEY`` through the cache: {from_run: full key, weights: absolute weights path}.

    The engine never sees the cache: it gets the weights file of the source run as a plain path.
    """
    from pathlib import Path

    from dlbench.cache import Store
    from dlbench.models import get_model_spec

    store = Store(Path(cache_root))
    full = store.resolve_key(key)
    source = store.config(full)
    if model is not None and get_model_spec(model).name != source.model:
        raise UsageError(f"run {full} trained {source.model}; --from-run needs the same model, not {model}")
    path = store.weights_path(full)
    if not path.is_file():
        status = store.get(full).get("status")
        raise UsageError(
            f"run {full} ({status}) kept no weights in {path.parent}; rerun it with --force "
            "to train and keep them"
        )
    return {"from_run": full, "weights": str(path.resolve())}
