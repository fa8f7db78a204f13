"""A study turned into what it will do, before anything runs: each sweep's trials (validated configs), each count
table, and the run each kernels or equivariance step looks inside. A value refused by `sweep`, `train` or
`count-params` is refused here with the same reason, prefixed with the file and the section's key.

The ``--quick`` scale: each step's keys with, in this order, the file's ``[quick] options`` and the section's
``quick`` table merged over them; a step whose dataset has no files in the data folder runs on ``[quick]
dataset`` (with ``[quick] dataset_options``) instead. Count tables keep their dataset: counting needs no files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dlbench.config import TrainConfig
from dlbench.errors import UsageError
from dlbench.settings import canon_key
from dlbench.studies.file import Section, StudyFile, StudyFileError, merge, text
from dlbench.sweep.grid import SweepPlan

TRAINING_STEPS = ("sweep", "transfer", "kernels", "equivariance")


@dataclass
class PlannedSection:
    """One section at the chosen scale: its step's resolved ``keys`` and what it runs."""

    section: Section
    index: int
    keys: dict
    quick: bool = False
    sweep: SweepPlan | None = None  # sweep and transfer steps
    trial: TrainConfig | None = None  # the run a kernels or equivariance step trains (None: untrained)
    count: object | None = None  # the CountTable of a count step (counted on the meta device)
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.section.step.kind


@dataclass
class StudyPlan:
    study: StudyFile
    quick: bool
    sections: list[PlannedSection]

    @property
    def record_name(self) -> str:
        """The name the run is recorded under: ``NAME``, or ``NAME-quick`` at the quick scale."""
        return f"{self.study.name}-quick" if self.quick else self.study.name

    def configs(self) -> list[tuple[PlannedSection, str, TrainConfig]]:
        """Every trial of the study, in order: (section, label, config)."""
        out = []
        for ps in self.sections:
            if ps.sweep is not None:
                study = ps.sweep.study()
                out += [(ps, study.label(t.values, t.repeat), t.config) for t in ps.sweep.trials]
            elif ps.trial is not None:
                out.append((ps, f"the {ps.kind} model", ps.trial))
        return out


def default_dataset(model: str) -> str:
    from dlbench.models import get_model_spec

    ds = get_model_spec(model).default_dataset
    return "shapes" if ds == "imagenet-shape" else ds


def plan_study(
    study: StudyFile, *, quick: bool = False, data_dir: Path | None = None, device_kind: str | None = None
) -> StudyPlan:
    """Plan every section of ``study`` (nothing is trained or written).

    Args:
        study: The checked study file.
        quick: The ``--quick`` scale.
        data_dir: The data folder (decides, at the quick scale, which datasets stand in for absent files).
        device_kind: The device the trials will train on when it is not this machine's (Slurm); None: here.

    Raises:
        StudyFileError: A section whose values cannot run: the file, the section and the reason with its fix.
    """
    planned = []
    for i, section in enumerate(study.sections, start=1):
        keys = scaled_keys(study, section, quick, data_dir)
        ps = PlannedSection(section, i, keys, quick)
        try:
            _PLANNERS[section.step.kind](ps, study, device_kind)
        except UsageError as exc:
            if isinstance(exc, StudyFileError):
                raise
            raise study.error(f"{section.where}.{section.step.kind}", str(exc)) from None
        planned.append(ps)
    return StudyPlan(study, quick, planned)


def scaled_keys(study: StudyFile, section: Section, quick: bool, data_dir: Path | None) -> dict:
    """The step's keys at the chosen scale (see the module's docstring)."""
    step = section.step
    if not quick:
        return step.at(False)
    keys = dict(step.keys)
    keys = merge(keys, step.quick)
    if step.kind in TRAINING_STEPS and "options" in study.quick:  # under the section's own, never a swept key
        swept = {canon_key(n) for n in [keys.get("param", ""), *(keys.get("grid") or {})]}
        quick_opts = {n: v for n, v in study.quick["options"].items() if canon_key(n) not in swept}
        keys = merge(keys, {"options": {**quick_opts, **step.quick.get("options", {})}})
    stand_in = study.quick.get("dataset")
    if stand_in and step.kind != "count":
        ds = keys.get("dataset") or (default_dataset(keys["model"]) if "model" in keys else None)
        if ds and ds != stand_in and not _present(ds, data_dir):
            opts = {**study.quick.get("dataset_options", {}), **step.quick.get("dataset_options", {})}
            keys = {**keys, "dataset": stand_in, "dataset_options": opts}
    return keys


def _present(dataset: str, data_dir: Path | None) -> bool:
    from dlbench import paths
    from dlbench.data import get_dataset

    return get_dataset(dataset).present(paths.data_dir(data_dir))


def _texts(table: dict | None) -> dict[str, str]:
    return {k: text(v) for k, v in (table or {}).items()}


def _plan_sweep(ps: PlannedSection, study: StudyFile, device_kind: str | None) -> None:
    from dlbench.sweep.grid import plan_sweep

    k = ps.keys
    axes: list[tuple[str, list[str] | None]] = []
    if ps.kind == "transfer":
        axes.append(("transfer", [text(v) for v in k["modes"]] if "modes" in k else None))
    elif "param" in k:
        axes.append((k["param"], [text(v) for v in k["values"]] if "values" in k else None))
    elif "values" in k:
        raise UsageError("'values' without 'param'; add param = \"NAME\" (what to sweep)")
    for name, values in (k.get("grid") or {}).items():
        axes.append((name, [text(v) for v in values] if isinstance(values, list) else [text(values)]))
    if not axes:
        raise UsageError('nothing to sweep; add param = "NAME" (with values = [...]) or a grid table')
    model = k["model"]
    plan = plan_sweep(
        model,
        k.get("dataset") or default_dataset(model),
        axes,
        settings=_texts(k.get("settings")),
        dataset_options=_texts(k.get("dataset_options")),
        options=_texts(k.get("options")),
        repeats=k.get("repeats", 1),
        device_kind=device_kind,
    )
    scale = "-quick" if ps.quick else ""
    plan.name = f"{k['name']}{scale}" if k.get("name") else f"{study.name}{scale}-{ps.index}-{plan.name}"
    plan.named = True  # another study under this name is refused (or replaced with --replace), never renamed
    ps.sweep = plan


def _plan_count(ps: PlannedSection, study: StudyFile, device_kind: str | None) -> None:
    from dlbench.analysis.count_tables import count_table

    k = ps.keys
    grid = {
        n: [text(x) for x in v] if isinstance(v, list) else [text(v)]
        for n, v in (k.get("settings") or {}).items()
    }
    ps.count = count_table(
        k["model"],
        k.get("dataset"),
        grid,
        _texts(k.get("dataset_options")),
        bias=k.get("bias", True),
        input_size=k.get("input_size"),
    )


def _plan_model(ps: PlannedSection, device_kind: str | None) -> None:
    """The run a kernels or equivariance step looks inside: trained through the cache unless ``untrained``."""
    from dlbench.resolve import resolve_config
    from dlbench.sweep.checks import check_trial

    k = ps.keys
    model = k["model"]
    dataset = k.get("dataset") or default_dataset(model)
    settings, ds_opts = _texts(k.get("settings")), _texts(k.get("dataset_options"))
    if k.get("untrained"):
        if k.get("options"):
            raise UsageError("'options' train a model; drop them, or drop untrained = true")
        resolve_config(model, dataset, settings, ds_opts, {"seed": str(k.get("seed", 0))}, device_kind="cpu")
        return
    options = _texts(k.get("options"))
    if "seed" in k:
        options.setdefault("seed", str(k["seed"]))
    config = resolve_config(model, dataset, settings, ds_opts, options, device_kind=device_kind)
    check_trial(config, here=device_kind is None)
    ps.trial = config


def _plan_kernels(ps: PlannedSection, study: StudyFile, device_kind: str | None) -> None:
    from dlbench.analysis.kernel_figures import CHANNELS, NORMS

    k = ps.keys
    for key, allowed in (("norm", NORMS), ("channels", CHANNELS)):
        if key in k and k[key] not in allowed:
            raise UsageError(f"{key} must be one of {', '.join(allowed)}, got '{k[key]}'")
    if k.get("max_units", 0) < 0:
        raise UsageError(f"max_units must be 0 (all) or more, got {k['max_units']}")
    _plan_model(ps, device_kind)


def _plan_equivariance(ps: PlannedSection, study: StudyFile, device_kind: str | None) -> None:
    from dlbench.analysis import equivariance as E
    from dlbench.analysis.equivariance_targets import LAYERS

    k = ps.keys
    if ("layer" in k) == ("model" in k):
        raise UsageError(
            'give one target: layer = "conv" (a random layer: conv, pool, mlp, stack) or model = "NAME"'
        )
    shift = E.parse_shift(k.get("shift", "3,3"))
    E.parse_transforms(transform_text(k), shift)
    if k.get("images", 256) < 1:
        raise UsageError(f"images must be at least 1, got {k['images']}")
    if "layer" in k:
        if k["layer"] not in LAYERS:
            raise UsageError(f"layer must be one of {', '.join(LAYERS)}, got '{k['layer']}'")
        E.build_target(k["layer"], 1, (32, 32), **layer_args(k))
        if "dataset" in k:
            from dlbench.data import get_dataset

            get_dataset(k["dataset"]).resolve(_texts(k.get("dataset_options")))
        return
    _plan_model(ps, device_kind)


def transform_text(keys: dict) -> str:
    from dlbench.analysis.equivariance_views import DEFAULT_TRANSFORMS

    t = keys.get("transform", DEFAULT_TRANSFORMS)
    return ",".join(t) if isinstance(t, list) else t


def layer_args(keys: dict) -> dict:
    """The random layer's build arguments (the `equivariance` command's defaults where not given)."""
    return dict(
        kernel_size=keys.get("kernel_size", 3),
        channels=keys.get("channels", 8),
        padding=keys.get("padding", "zero"),
        symmetric=False,
        depth=keys.get("depth", 3),
        stride=2,
        seed=keys.get("seed", 0),
    )


_PLANNERS = {
    "sweep": _plan_sweep,
    "transfer": _plan_sweep,
    "count": _plan_count,
    "kernels": _plan_kernels,
    "equivariance": _plan_equivariance,
}
