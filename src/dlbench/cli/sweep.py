"""`dlbench sweep`: a whole study in one command. Every trial is a cached run, so reruns train only what is missing."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from dlbench.cli._options import CacheDirOpt, DataDirOpt, DatasetOptOpt, FormatOpt, SetOpt
from dlbench.cli._output import Format, Output, err
from dlbench.cli._slurm import OnInterrupt, with_slurm_options
from dlbench.cli._train_options import with_train_options


class Executor(str, Enum):
    inline = "inline"
    local = "local"
    slurm = "slurm"


@with_train_options
@with_slurm_options
def sweep(
    param: str = typer.Argument(
        None,
        help="What to sweep: a training option (lr, batch-size, ...) or a model "
        "setting (activation, patch-size, depth, ...).",
    ),
    values: str = typer.Argument(None, help="Comma list of values; omitted: a default grid, printed first."),
    model: str = typer.Option(..., "--model", "-m", help="Model name (see `dlbench models`)."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="Dataset (default: the model's own)."),
    grid: list[str] = typer.Option(
        None, "--grid", "-g", help="Grid axis NAME=V1,V2 (repeatable), instead of PARAM."
    ),
    repeats: int = typer.Option(1, "--repeats", help="Seeds per value (seed, seed+1, ...): mean and std."),
    name: str = typer.Option(
        None,
        "--name",
        help="Name of the sweep for `report` (default: axes-model-dataset, plus -HASH when that name "
        "holds another study).",
    ),
    sets: list[str] = SetOpt,
    dataset_opts: list[str] = DatasetOptOpt,
    force: bool = typer.Option(False, "--force", help="Retrain trials even if cached."),
    fail_fast: bool = typer.Option(
        False, "--fail-fast", help="Stop at the first diverged or out-of-memory trial."
    ),
    executor: Executor = typer.Option(
        "inline",
        "--executor",
        help="inline: trials one after another in this process; local: on --jobs worker processes; "
        "slurm: one Slurm job per trial (see the --slurm-* options).",
    ),
    jobs: int = typer.Option(
        None, "--jobs", "-j", help="Workers for --executor local (default: one per GPU, else one per core)."
    ),
    detach: bool = typer.Option(
        False, "--detach", help="--executor slurm: submit and return; run the command again to follow."
    ),
    on_interrupt: OnInterrupt = typer.Option(
        "ask",
        "--on-interrupt",
        help="--executor slurm, on Ctrl-C: ask (on a terminal; elsewhere: leave), cancel or leave the jobs.",
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Let --name replace a different study saved under that name."
    ),
    fuse: str = typer.Option(
        "auto",
        "--fuse",
        help="Train trials that differ only in optimizer settings (lr, momentum, weight decay, label "
        "smoothing, clipping, patience, seed) as one fused model, each stored as its own run: auto (where "
        "that is faster: mlp; cnn on CUDA), off, or K (at most K per group; mlp and cnn anywhere). "
        "A group is one --executor local worker's task, or one Slurm job.",
    ),
    figures_dir: Path = typer.Option(None, "--figures-dir", help="Where to write the PNG figures."),
    figures: bool = typer.Option(
        True,
        "--figures/--no-figures",
        help="Write the figures (accuracy against the values, curves, confusion, gradients).",
    ),
    data_dir: Path = DataDirOpt,
    cache_dir: Path = CacheDirOpt,
    fmt: Format = FormatOpt,
    train_opts: dict = None,
    slurm_flags: dict = None,
) -> None:
    """Train one model across values of one parameter (or a grid), then tabulate and plot the trials."""
    from rich.markup import escape

    from dlbench import paths
    from dlbench.cache import Store
    from dlbench.cli.train import default_dataset, how_trained, single_values
    from dlbench.commandline import shell_join
    from dlbench.errors import UsageError
    from dlbench.sweep.grid import plan_sweep
    from dlbench.sweep.inline import check_name

    if jobs is not None and executor is not Executor.local:
        raise UsageError("--jobs is for --executor local; add --executor local")
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {jobs}")
    slurm = slurm_setup(executor, slurm_flags, detach, train_opts)
    fusing = fuse_setting(fuse)

    axes = _axes(param, values, grid)
    store = Store(paths.cache_dir(cache_dir))
    store.check_writable()  # before any output: a bad --cache-dir is one line and nothing else
    if figures and figures_dir is not None:  # not after the whole sweep has trained
        paths.check_output_dir(figures_dir, "--figures-dir")
    plan = plan_sweep(
        model,
        dataset or default_dataset(model),
        axes,
        settings=single_values(sets),
        dataset_options=single_values(dataset_opts),
        options=train_opts,
        repeats=repeats,
        name=name,
        device_kind=slurm.device_kind if slurm else None,
    )
    note = check_name(plan, store, replace=replace)  # another study under this name: refused here
    for axis, (_, given) in zip(plan.axes, axes, strict=True):
        if given is None:
            err.print(f"sweeping {axis.name} over its default values: {', '.join(axis.values)}")
    command = shell_join(["dlbench", *sys.argv[1:]]) if sys.argv[0].endswith("dlbench") else ""
    n = len(plan.trials)
    how = how_trained([t.config for t in plan.trials])
    err.print(f"sweep [bold]{escape(plan.name)}[/]: {n} trials of {plan.model} on {plan.dataset} ({how})")
    if note:
        err.print(escape(note))

    run = dict(
        data_dir=paths.data_dir(data_dir),
        force=force,
        fail_fast=fail_fast,
        command=command or sweep_command(plan),
        replace=replace,
    )
    if slurm:
        from dlbench.cli._slurm import run_on_slurm

        counts = run_on_slurm(plan, store, slurm, run, detach, on_interrupt, fusing)
        if counts is None:  # detached: the jobs run on
            return
    else:
        counts = execute_plan(plan, store, executor, jobs, run, fusing)
    study = plan.study()  # this sweep's trials, even if another process reuses its name
    show_study(store, study, f"{n} trials: {counts.line()}.", fmt, figures_dir, figures, counts.rows)


def fuse_setting(fuse: str):
    """``--fuse`` parsed, before anything runs. Every executor fuses: a group trains inline, as one local
    worker's task, or as one Slurm job."""
    from dlbench.sweep.fused import Fuse

    return Fuse.parse(fuse)


def _show_groups(plan, store, fusing, force: bool) -> None:
    """One line on the fused groups and one per reason some trials run alone."""
    from rich.markup import escape

    from dlbench.sweep.fused_run import work_units

    todo = [t.config for t in plan.trials if force or not store.has(t.config.key)]
    for line in work_units(todo, fusing)[1]:
        err.print(escape(line))


def execute_plan(plan, store, executor: Executor, jobs: int | None, run: dict, fusing=None):
    """Run the plan's trials with the chosen executor, showing each trial as it starts (inline) or ends."""
    from dlbench.cli._progress import TrainProgress
    from dlbench.sweep.study import label

    if fusing is not None and not fusing.off:
        _show_groups(plan, store, fusing, run["force"])
    n = len(plan.trials)
    with TrainProgress(plan.model, sweep_task=True) as progress:
        if executor is Executor.local:
            from dlbench.sweep.local import run_local

            def on_done(k, trial, counts):
                done = counts.cached + counts.done + counts.failed
                progress.set_sweep(
                    done, n, f"trial {k + 1}/{n} done: {label(trial.values)}  ({counts.line()})"
                )

            counts = run_local(plan, store, jobs=jobs, on_done=on_done, fuse=fusing, **run)
        else:
            from dlbench.sweep.inline import run_sweep

            def on_trial(k, trial, counts):
                progress.set_sweep(k, n, f"trial {k + 1}/{n}: {label(trial.values)}  ({counts.line()})")
                return progress.callback

            counts = run_sweep(plan, store, on_trial=on_trial, fuse=fusing, **run)
        progress.set_sweep(n, n, counts.line())
    return counts


def slurm_setup(executor: Executor, flags: dict, detach: bool, train_opts: dict):
    """The Slurm options of an ``--executor slurm`` sweep (None for the other executors, which take none)."""
    from dlbench.errors import UsageError

    if executor is not Executor.slurm:
        given = [f"--slurm-{k.replace('_', '-')}" for k in flags] + (["--detach"] if detach else [])
        if given:
            raise UsageError(f"{given[0]} is for --executor slurm; add --executor slurm")
        return None
    from dlbench.cli._slurm import SlurmSetup

    return SlurmSetup.resolve(flags, train_opts.get("device"))


def _axes(
    param: str | None, values: str | None, grid: list[str] | None
) -> list[tuple[str, list[str] | None]]:
    """(name, values or None for the defaults) per axis: PARAM [VALUES], then each --grid."""
    from dlbench.errors import UsageError
    from dlbench.settings import parse_assignments, split_values

    axes: list[tuple[str, list[str] | None]] = []
    if param:
        axes.append((param, split_values(param, values) if values is not None else None))
    elif values is not None:
        raise UsageError("VALUES given without PARAM")
    axes += list(parse_assignments(grid).items())
    return axes


# In a narrow terminal the sweep table leaves these out first (the swept values and accuracies always stay).
SWEEP_DROP_ORDER = [
    "inference_seconds",
    "peak_memory_mb",
    "trainable",
    "initial_val_acc",
    "images_per_sec",
    "seconds_per_epoch",
    "seeds",
    "params",
]


def show_study(
    store,
    study,
    counts_line: str,
    fmt: Format,
    figures_dir: Path | None,
    figures: bool,
    executor_rows: list[dict],
) -> None:
    """The summary table (best by validation accuracy marked), the figures, and how to write a report.

    ``executor_rows`` are the executor's rows: those of trials whose job failed without storing a run (Slurm) are not
    in the cache, and join the table here with the reason and the tail of their log."""
    import pandas as pd

    from dlbench.commandline import CommandLine
    from dlbench.paths import safe_name
    from dlbench.report.plots import sweep_figures

    output = Output(fmt)
    runs = store.runs(keys=study.keys)
    unstored = [r for r in executor_rows if r["key"] not in set(runs["key"])]
    if unstored:
        runs = pd.concat([runs, pd.DataFrame(unstored)], ignore_index=True)
    summary = study.summary(runs)
    rows = [{**r, "best": i == summary.best} for i, r in enumerate(summary.rows)]
    title = f"Sweep {study.name}: {study.model} on {study.dataset} (best by validation accuracy in bold)"
    # People see the best row in bold; programs get a `best` column and each trial's run key.
    columns = summary.columns if output.for_people else [*summary.columns, "best", "keys"]
    keep = [*study.axis_names, "best_val_acc", "test_acc", "test_acc_std", "status"]
    if output.for_people:  # a swept float as the shortest text that reads back as it (not 4 digits)
        rows = [{**r, **{a: _swept(r[a]) for a in study.axis_names}} for r in rows]
    output.table(rows, columns, title=title, highlight=summary.best, keep=keep, drop_order=SWEEP_DROP_ORDER)
    output.note(counts_line)
    labels = study.trial_labels(summary.trials)
    for r in unstored:
        output.note(f"trial {labels.get(r['key'], r['key'])} {r['status']}: {r['message']}")
    if figures and rows:
        folder = Path(figures_dir) if figures_dir else store.root / "sweeps" / safe_name(study.name)
        written = sweep_figures(store, study, folder, None if unstored else summary)  # stored runs only
        output.note(f"figures: {folder} ({', '.join(p.name for p in written.values())})")
    output.note("report: " + CommandLine("report").opt("--sweep", study.name).opt("--out", "report.md").text)


def _swept(value):
    value = value.item() if hasattr(value, "item") else value
    return repr(value) if isinstance(value, float) else value


def sweep_command(plan) -> str:
    """A command that reruns the sweep, for the report (used when not invoked as `dlbench`)."""
    from dlbench.commandline import CommandLine
    from dlbench.settings import format_value

    line = CommandLine("sweep")
    if len(plan.axes) == 1:
        line.arg(plan.axes[0].name.replace("_", "-"), ",".join(plan.axes[0].values))
    else:
        line.opts("--grid", [f"{a.name}={','.join(a.values)}" for a in plan.axes])
    line.opt("--model", plan.model).opt("--dataset", plan.dataset)
    fixed = plan.fixed
    line.opts("--set", [f"{k}={v}" for k, v in fixed["settings"].items()])
    line.opts("--dataset-opt", [f"{k}={v}" for k, v in fixed["dataset_options"].items()])
    for k, v in fixed["options"].items():
        line.opt(f"--{k.replace('_', '-')}", format_value(v))
    if plan.repeats > 1:
        line.opt("--repeats", plan.repeats)
    return line.text
