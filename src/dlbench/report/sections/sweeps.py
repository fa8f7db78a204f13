"""One report section per study, results first: the summary table with the best and the worst value, the
sweep's figures (the very figures `dlbench sweep` writes), test images, then what was swept and held fixed (in a
collapsed block) and the reproducing command."""

from __future__ import annotations

import functools

import pandas as pd

from dlbench.config import TrainConfig, train_option_defaults
from dlbench.formatting import fmt_cell
from dlbench.report.blocks import Command, Details, FileNames, Heading, Image, P, Table
from dlbench.report.collect import Chosen
from dlbench.report.plots import MAX_CURVES, draw_sweep, kept_pngs, pyplot
from dlbench.report.sections.samples import samples
from dlbench.report.workers import Done, run_all
from dlbench.settings import format_value
from dlbench.sweep.study import Study, Summary

IMPORTANT_OPTIONS = (
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "schedule",
    "batch_size",
    "epochs",
    "label_smoothing",
    "augment",
    "normalize",
    "val_split",
    "seed",
    "precision",
    "memory_format",
)
FIGURE_TEXT = {  # figure name -> (heading, file-name suffix, alt text)
    "metric": ("Final accuracy against the swept value", "metric", "final accuracy against the value of"),
    "heatmap": ("Final accuracy over the grid", "heatmap", "heatmap of the final accuracy of"),
    "seeds": ("Validation curves over seeds", "seeds", "mean and min-max band over seeds of"),
    "curves": ("Training curves", "curves", "training curves of"),
    "confusion": (
        "Confusion matrix of the best trial",
        "confusion",
        "confusion matrix and per-class accuracy of",
    ),
    "grad_norms": ("Gradient norms by layer kind", "grad-norms", "gradient norms of"),
    "step_loss": ("Per-step training loss", "step-loss", "per-step loss of"),
}
CAPTIONS = {  # what a reader needs to read the figure; trial-capped figures add the drawing's note
    "metric": "Best validation accuracy and test accuracy of each value (with several seeds: their mean, the "
    "band spanning the lowest to the highest seed); the dotted line marks the best value.",
    "heatmap": "Each cell is annotated with its value (in grids of up to 100 cells); the red box marks the "
    "best combination.",
    "seeds": "Mean over the finished seeds of each value combination (one colour each); the band spans the "
    "lowest to the highest seed.",
    "curves": "One line per trial (with several seeds: one colour per value, one dash per seed).",
    "confusion": "Rows: true class; columns: predicted class; cells count the test images. Right: the share "
    "of each class's test images classified correctly.",
    "grad_norms": "One panel per layer kind (convolution, linear, normalisation, other), so no line joins a "
    "convolution to a batch norm; layers at their depth in the network, input to output.",
}


def study_runs(study: Study, runs: dict[str, dict]) -> pd.DataFrame:
    """The study's runs rows, in its order."""
    return pd.DataFrame([runs[k] for k in dict.fromkeys(study.keys) if k in runs])


def start_figures(store, studies: list[Chosen], runs: dict[str, dict]):
    """Each study's (drawing, PNGs) as an object whose ``result()`` gives it, in the studies' order, and a
    function that stops the workers: figures `dlbench sweep` kept are read now, the rest drawn in worker
    processes (:mod:`~dlbench.report.workers`) while the caller builds the sections."""
    results: list = []
    tasks: dict[int, functools.partial] = {}
    for i, chosen in enumerate(studies):
        sr = study_runs(chosen.study, runs)
        kept = kept_pngs(store, chosen.study, chosen.summary, sr)
        results.append(Done(functools.partial(lambda k: k, kept)))
        if kept is None:
            tasks[i] = functools.partial(draw_sweep, store, chosen.study, chosen.summary, sr)
    if tasks:
        pyplot()  # imported before the workers fork, so they inherit it rather than each import it (0.3 s)
    costs = [_tables_read(studies[i]) for i in tasks]
    futures, close = run_all(list(tasks.values()), costs)
    for i, future in zip(tasks, futures, strict=True):
        results[i] = future
    return results, close


def _tables_read(chosen: Chosen) -> int:
    """About how many tables a study's figures read, which sets their drawing time: three for each trial drawn
    (curves, gradients, steps), and with seeds the curves of every seed of the values drawn."""
    trials = len(chosen.summary.trials)
    return 3 * min(MAX_CURVES, trials) + (trials if chosen.study.repeats > 1 else 0)


def sweep_section(
    store, chosen: Chosen, runs: dict[str, dict], names: FileNames, data_dir, loaded, figures
) -> list:
    """The blocks of one study; ``loaded`` caches test images between studies on the same dataset;
    ``figures`` (its entry from :func:`start_figures`) gives the study's figures, kept or drawn."""
    study, summary = chosen.study, chosen.summary
    table = chosen.table or summary  # with the trials whose cluster job failed
    blocks: list = [
        Heading(2, f"Sweep {study.name}: {study.model} on {study.dataset}"),
        P(_intro(study, table)),
        Heading(3, "Results"),
    ]
    blocks += _best_and_worst(study, table)
    blocks.append(Table(table.columns, table.rows, table.best))
    blocks += _failed(study, table)
    drawing, pngs = figures.result()
    for name, png in pngs.items():
        heading, suffix, alt = FIGURE_TEXT[name]
        caption = " ".join(c for c in (CAPTIONS.get(name, ""), _capped(name, drawing.note)) if c)
        blocks += [Heading(3, heading), Image(names(study.name, suffix), png, f"{alt} {study.name}", caption)]
    blocks.append(Heading(3, "Best against worst on test images"))
    blocks += samples(store, study, summary, runs, names, data_dir, loaded)
    first = TrainConfig.from_json(runs[summary.trials["key"].iloc[0]]["config"])
    held = _held_fixed(study, first)
    blocks.append(
        Details(
            f"Swept: {', '.join(study.axis_names)}; held fixed: {len(held.rows)} settings",
            [P(("bold", "Swept")), _swept(study), P(("bold", "Held fixed")), held],
        )
    )
    blocks.append(Heading(3, "Reproduce"))
    if study.command:
        blocks.append(Command(study.command))
    else:
        blocks.append(
            P("The sweep definition records no command; each trial's own command is in `dlbench runs`.")
        )
    return blocks


def _capped(name: str, note: str) -> str:
    """The drawing's note (fewer trials drawn than run) belongs to the figures that draw trials."""
    return note if name in ("curves", "grad_norms", "step_loss") else ""


def _intro(study: Study, summary: Summary) -> str:
    n, total = len(summary.trials), len(study.trials)
    text = f"{n} trial{'s' * (n != 1)} of {study.model} on {study.dataset}"
    if n < total:
        text += f" ({total - n} more in the definition are not in this report: unfinished or filtered out)."
    else:
        text += "."
    if study.repeats > 1:
        text += f" Each value combination ran with {study.repeats} seeds: the table shows mean and std."
    return text


def _swept(study: Study) -> Table:
    rows = [
        {"parameter": a.name, "kind": a.kind, "values": ", ".join(map(str, a.values))} for a in study.axes
    ]
    return Table(["parameter", "kind", "values"], rows)


def _held_fixed(study: Study, first: TrainConfig) -> Table:
    """What was held fixed: given on the command line, or the resolved defaults of the first trial."""
    axes = study.axis_names
    rows = []
    for kind, values, given in (
        ("setting", first.model_settings, study.fixed_values("settings")),
        ("dataset", first.dataset_options, study.fixed_values("dataset_options")),
    ):
        for k in sorted(values):
            if k not in axes:
                rows.append(_fixed_row(k, kind, values[k], k in given))
    defaults = train_option_defaults()
    given_opts = study.fixed_values("options")
    for k in defaults:
        if k in axes or k == "device":
            continue
        v = getattr(first.options, k)
        if k in IMPORTANT_OPTIONS or k in given_opts or v != defaults[k]:
            rows.append(_fixed_row(k, "option", v, k in given_opts))
    rows.sort(key=lambda r: r["source"] != "given")  # what the user chose first; stable otherwise
    rows.append({"name": "device", "kind": "run", "value": first.device_kind, "source": "resolved"})
    return Table(["name", "kind", "value", "source"], rows)


def _fixed_row(name: str, kind: str, value, given: bool) -> dict:
    return {
        "name": name,
        "kind": kind,
        "value": format_value(value),
        "source": "given" if given else "default",
    }


def _best_and_worst(study: Study, summary: Summary) -> list:
    """The best and the worst value combination (the rule is the study's, shared with the sweep's figures)."""
    blocks = []
    for word, index in (("Best", summary.best), ("Worst", summary.worst)):
        if index is None or (word == "Worst" and index == summary.best):
            continue
        row = summary.rows[index]
        blocks.append(
            P(
                f"{word} by validation accuracy: ",
                ("bold", study.label({a: row[a] for a in study.axis_names})),
                f" (best_val_acc {fmt_cell(row['best_val_acc'], 'acc')}, "
                f"test_acc {fmt_cell(row['test_acc'], 'acc')}).",
            )
        )
    return blocks


def _failed(study: Study, summary: Summary) -> list:
    """One line per failed trial (diverged, out of memory, a failed cluster job) with its message."""
    blocks = []
    failed = summary.trials[summary.trials["status"] != "ok"]
    for r in failed.to_dict("records"):
        what = study.label({a: r[a] for a in study.axis_names}, r["repeat"])
        blocks.append(
            P(f"Trial {what}: {r['status']}" + (f" ({r['message']})" if r.get("message") else "") + ".")
        )
    return blocks
