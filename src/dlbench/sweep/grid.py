"""What a sweep means: axes (one or a grid), their default values, and the list of trial configs.

An axis is a training option (lr, batch-size, ...), a model setting (activation, patch-size, depth, ...) or a
dataset option (train_size, ...). Values are the raw strings of the command line, typed by whichever of those
owns the name, so ``--grid depth=2,4`` and ``--set depth=2`` mean the same thing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from dlbench.config import TRAIN_OPTION_NAMES, SCHEDULES, TrainConfig, resolve_config
from dlbench.errors import UsageError
from dlbench.paths import safe_name
from dlbench.settings import canon_key, format_value

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
}


@dataclass
class Axis:
    name: str  # canonical (underscores)
    kind: str  # "option" | "setting" | "dataset"
    values: list[str]


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

    def definition(self) -> dict:
        """What the cache keeps about this sweep, so `report` can rebuild its tables and figures."""
        return {
            "name": self.name,
            "model": self.model,
            "dataset": self.dataset,
            "axes": [{"name": a.name, "kind": a.kind, "values": a.values} for a in self.axes],
            "repeats": self.repeats,
            "fixed": self.fixed,
            "trials": [{"key": t.config.key, "values": t.values, "repeat": t.repeat} for t in self.trials],
        }


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
    raise UnknownNameError("sweep parameter", name, choices,
                           hint=f"a training option, a setting of {model} or an option of {dataset}")


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
    return safe_name("-".join([*(a.name.replace("_", "-") for a in axes), model, dataset]))


def plan_sweep(model: str, dataset: str, axes: list[tuple[str, list[str] | None]], *, settings: dict,
               dataset_options: dict, options: dict, repeats: int = 1, name: str | None = None) -> SweepPlan:
    """Expand axes (values None: the defaults) into validated trial configs, before anything runs."""
    from dlbench.analysis.params import build_meta
    from dlbench.data import get_dataset
    from dlbench.models import get_model_spec

    if not axes:
        raise UsageError("nothing to sweep: give PARAM [VALUES] or at least one --grid NAME=V1,V2")
    if repeats < 1:
        raise UsageError(f"--repeats must be at least 1, got {repeats}")
    resolved_axes, seen = [], set()
    for raw_name, values in axes:
        key = canon_key(raw_name)
        if key in seen:
            raise UsageError(f"'{key}' is swept twice; give its values once")
        seen.add(key)
        kind = axis_kind(key, model, dataset)
        fixed_here = {"option": options, "setting": settings, "dataset": dataset_options}[kind]
        if key in {canon_key(k) for k in fixed_here}:
            raise UsageError(f"'{key}' is both swept and fixed; drop the fixed value")
        if key == "seed" and repeats > 1:
            raise UsageError("sweep seeds or use --repeats, not both")
        vals = values if values is not None else default_values(key, model, dataset)
        if not vals:
            raise UsageError(f"no values to sweep for '{key}'")
        resolved_axes.append(Axis(key, kind, list(vals)))

    base_seed = int(options.get("seed", 0))
    plan = SweepPlan(name or default_name(resolved_axes, model, dataset), model, dataset, resolved_axes, repeats,
                     fixed={"settings": settings, "dataset_options": dataset_options, "options": options})
    spec = get_model_spec(model)
    for combo in itertools.product(*(a.values for a in resolved_axes)):
        values = dict(zip((a.name for a in resolved_axes), combo, strict=True))
        s, d, o = dict(settings), dict(dataset_options), dict(options)
        for axis, value in zip(resolved_axes, combo, strict=True):
            {"option": o, "setting": s, "dataset": d}[axis.kind][axis.name] = value
        for r in range(repeats):
            if repeats > 1:
                o["seed"] = base_seed + r
            try:
                config = resolve_config(model, dataset, s, d, o)
                info = get_dataset(config.dataset).info(None, config.dataset_options)
                build_meta(spec, info.input_shape, info.num_classes, config.model_settings)
            except UsageError as exc:
                where = ", ".join(f"{k}={v}" for k, v in values.items())
                raise type(exc)(f"trial {where}: {exc}") from None
            plan.trials.append(Trial(values, r, config))
    return plan


def label(values: dict) -> str:
    return ", ".join(f"{k}={format_value(v)}" for k, v in values.items())
