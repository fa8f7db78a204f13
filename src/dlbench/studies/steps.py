"""The steps of a study that are not sweeps, each one library call, and the record a study run leaves.

A count step records its table (`count-params`'s own record); a kernels or equivariance step draws and records
its figure through the very calls of `visualize-kernels` and `equivariance`, on the run the study trained
through the cache (or an untrained model, or a random layer). The record (:func:`study_record`) names what each
section produced, so `dlbench report --study` can follow the study's sections in order.
"""

from __future__ import annotations

from pathlib import Path

from dlbench.studies.file import text
from dlbench.studies.plan import PlannedSection, StudyPlan, default_dataset, layer_args, transform_text


def record_count(ps: PlannedSection, store) -> dict:
    """Record the section's count table for the report; its entry in the study record."""
    table = ps.count
    store.record_counts(table.title, table.command, table.columns, table.rows)
    return {"count": {"title": table.title, "command": table.command}}


def _source(ps: PlannedSection):
    from dlbench.analysis.model_source import ModelSource

    if ps.trial is not None:
        return ModelSource(run=ps.trial.key)
    k = ps.keys
    return ModelSource(
        model=k["model"],
        dataset=k.get("dataset") or default_dataset(k["model"]),
        settings={n: text(v) for n, v in (k.get("settings") or {}).items()},
        dataset_options={n: text(v) for n, v in (k.get("dataset_options") or {}).items()},
        untrained=True,
        seed=k.get("seed", 0),
    )


def draw_kernels(ps: PlannedSection, cache_dir: Path | None, data_dir: Path | None) -> tuple[dict, str]:
    """Draw and record the kernels figure: (its entry in the study record, a one-line summary)."""
    from dlbench.analysis.kernel_views import DEFAULT_MAX_UNITS, KernelView, visualize_kernels

    k = ps.keys
    view = KernelView(
        layer=k.get("layer", "first"),
        norm=k.get("norm", "layer"),
        channels=k.get("channels", "auto"),
        max_units=k.get("max_units", DEFAULT_MAX_UNITS),
    )
    result = visualize_kernels(_source(ps), view, cache_dir=cache_dir, data_dir=data_dir)
    return {"figures": [str(result.figure.path)]}, result.summary


def measure(ps: PlannedSection, cache_dir: Path | None, data_dir: Path | None) -> tuple[dict, str]:
    """Measure the equivariance and record its figure: (its entry in the study record, a one-line summary)."""
    from dlbench.analysis.equivariance_views import Measurement, RandomLayer, measure_equivariance

    k = ps.keys
    if "layer" in k:
        args = layer_args(k)
        target = RandomLayer(
            layer=k["layer"],
            **{n: args[n] for n in ("kernel_size", "channels", "padding", "depth", "seed")},
            dataset=k.get("dataset"),
            dataset_options={n: text(v) for n, v in (k.get("dataset_options") or {}).items()},
        )
    else:
        target = _source(ps)
    how = Measurement(
        transform=transform_text(k),
        shift=k.get("shift", "3,3"),
        images=k.get("images", 256),
        per_layer=k.get("per_layer", False),
    )
    result = measure_equivariance(target, how, cache_dir=cache_dir, data_dir=data_dir)
    errors = ", ".join(f"{name} {value:.3g}" for name, value in result.report.errors().items())
    figures = [str(result.figure.path)] if result.figure else []
    return {"figures": figures}, f"equivariance of {result.report.target}: {errors}"


def study_record(plan: StudyPlan, produced: list[dict], command: str) -> dict:
    """What the cache keeps of a study run: the file, its sections in order, each with its step's keys at the
    scale run (the quick tables applied) and what it produced: the sweep's name, the count table, the figures."""
    study = plan.study
    sections = []
    for ps, made in zip(plan.sections, produced, strict=True):
        entry = {"heading": ps.section.heading, "text": ps.section.text, "kind": ps.kind, "step": ps.keys}
        if ps.sweep is not None:
            entry["sweep"] = ps.sweep.name
        if ps.trial is not None:
            entry["run"] = ps.trial.key
        sections.append({**entry, **made})
    return {
        "name": plan.record_name,
        "study": study.name,
        "title": study.title,
        "text": study.text,
        "source": study.source,
        "quick": plan.quick,
        "command": command,
        "file": study.toml,  # the study file as read: what was asked, word for word
        "sections": sections,
    }
