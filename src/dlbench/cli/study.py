"""`dlbench study`: run a whole study file (or a built-in one) section by section, list and show the built-ins.

Every trial goes through the cache (a rerun trains nothing) and through the chosen executor, as in `sweep`;
the run is recorded so that `dlbench report --study NAME` follows the study's sections in order.
"""

from __future__ import annotations

from pathlib import Path

import typer

from dlbench.cli._options import CacheDirOpt, DataDirOpt, FormatOpt
from dlbench.cli._output import Format, Output, err
from dlbench.cli._slurm import OnInterrupt, with_slurm_options
from dlbench.cli.sweep import Executor

app = typer.Typer(
    help="Whole studies as files: sections of sweeps, count tables, kernels and equivariance figures.",
    no_args_is_help=True,
    add_completion=False,
)


def load_target(target: str):
    """A study file (a path that exists, or ends in .toml) or a built-in study's name."""
    from dlbench.studies.builtin import load_builtin
    from dlbench.studies.file import read_study_file

    path = Path(target).expanduser()
    if target.endswith(".toml") or "/" in target or path.is_file():
        return read_study_file(path)
    return load_builtin(target)


@app.command("list")
def list_studies(fmt: Format = FormatOpt) -> None:
    """The built-in studies: name, title, and how many sections of each kind of step."""
    from dlbench.studies.builtin import builtin_names, load_builtin

    rows = []
    for name in builtin_names():
        study = load_builtin(name)
        kinds = [s.step.kind for s in study.sections]
        steps = ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))
        rows.append({"name": name, "title": study.title, "sections": len(study.sections), "steps": steps})
    output = Output(fmt)
    output.table(rows, ["name", "title", "sections", "steps"], title="Built-in studies", keep=["name"])
    output.note("show one as a file to copy and edit: dlbench study show NAME > my-study.toml")


@app.command("show")
def show(name: str = typer.Argument(..., help="A built-in study (see `dlbench study list`).")) -> None:
    """Print a built-in study as a file to copy and edit (run the copy with `dlbench study run FILE`)."""
    import sys

    from dlbench.studies.builtin import builtin_text

    sys.stdout.write(builtin_text(name))


@app.command("run")
@with_slurm_options
def run(
    target: str = typer.Argument(..., help="A study file (.toml) or a built-in study's name."),
    quick: bool = typer.Option(
        False,
        "--quick",
        help="The study's quick scale: few epochs, subsets, small widths (its \\[quick] tables).",
    ),
    plan_only: bool = typer.Option(
        False,
        "--plan",
        help="Print every trial (cached or to train) and what each section does; train nothing.",
    ),
    executor: Executor = typer.Option(
        "inline", "--executor", help="inline | local (--jobs workers) | slurm: how the sweeps' trials run."
    ),
    jobs: int = typer.Option(None, "--jobs", "-j", help="Workers for --executor local."),
    on_interrupt: OnInterrupt = typer.Option("ask", "--on-interrupt", help="--executor slurm, on Ctrl-C."),
    force: bool = typer.Option(False, "--force", help="Retrain trials even if cached."),
    fail_fast: bool = typer.Option(False, "--fail-fast", help="Stop at the first failed trial."),
    replace: bool = typer.Option(False, "--replace", help="Let a sweep replace another study of its name."),
    fuse: str = typer.Option(
        "auto",
        "--fuse",
        help="As for `sweep`: trials of one sweep that differ only in optimizer settings train as one fused "
        "model where that is faster (auto), never (off), or at most K per group.",
    ),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Write each sweep's figures."),
    data_dir: Path = DataDirOpt,
    cache_dir: Path = CacheDirOpt,
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Output format of --plan."),
    slurm_flags: dict = None,
) -> None:
    """Run a study: each section's sweep, count table, kernels or equivariance step, in order, then record it."""
    from dlbench import paths
    from dlbench.cache import Store
    from dlbench.cli.sweep import fuse_setting, slurm_setup
    from dlbench.errors import UsageError
    from dlbench.studies.plan import plan_study

    if jobs is not None and (executor is not Executor.local or jobs < 1):
        raise UsageError("--jobs N (at least 1) is for --executor local; add --executor local")
    fusing = fuse_setting(fuse)
    study = load_target(target)
    slurm = slurm_setup(executor, slurm_flags, False, {})
    store = Store(paths.cache_dir(cache_dir))
    data = paths.data_dir(data_dir)
    plan = plan_study(study, quick=quick, data_dir=data, device_kind=slurm.device_kind if slurm else None)
    if plan_only:
        show_plan(plan, store, Output(fmt))
        return
    store.check_writable()
    from dlbench.sweep.inline import check_name

    notes = [
        check_name(ps.sweep, store, replace=replace) for ps in plan.sections if ps.sweep
    ]  # before any run
    for note in filter(None, notes):
        err.print(note, markup=False, highlight=False)
    settings = dict(
        force=force,
        fail_fast=fail_fast,
        replace=replace,
        figures=figures,
        on_interrupt=on_interrupt,
        fusing=fusing,
    )
    _run_sections(plan, store, data, cache_dir, data_dir, executor, jobs, slurm, settings)


def _run_sections(plan, store, data, cache_dir, data_dir, executor, jobs, slurm, settings) -> None:
    """Each section in order; then the study record and how to write its report."""
    from dlbench.commandline import CommandLine
    from dlbench.studies import steps
    from dlbench.studies.steps import study_record

    output = Output(Format.table)
    produced = []
    n = len(plan.sections)
    for ps in plan.sections:
        err.print(f"[bold]section {ps.index}/{n}[/]: {_escape(ps.section.heading)}")
        if ps.sweep is not None:
            _run_sweep(ps, store, data, executor, jobs, slurm, settings)
            produced.append({})
        elif ps.count is not None:
            output.table(ps.count.rows, ps.count.columns, title=ps.count.title, keep=ps.count.columns)
            produced.append(steps.record_count(ps, store))
        else:
            if ps.trial is not None:
                _train_one(ps, store, data, settings["force"])
            draw = steps.draw_kernels if ps.kind == "kernels" else steps.measure
            made, summary = draw(ps, cache_dir, data_dir)
            output.note(summary)
            produced.append(made)
    command = CommandLine("study").arg("run").arg(plan.study.source.removeprefix("builtin:"))
    command.flag("--quick", plan.quick)
    store.save_study_run(study_record(plan, produced, command.text))
    report = CommandLine("report").opt("--study", plan.record_name).opt("--out", "report.html")
    output.note(f"study {plan.record_name}: {n} sections done. report: {report.text}")


def _run_sweep(ps, store, data, executor, jobs, slurm, settings) -> None:
    """One sweep step through the chosen executor, then its table and figures (as `sweep` shows them)."""
    from dlbench.cli.sweep import execute_plan, show_study, sweep_command

    plan = ps.sweep
    run = dict(
        data_dir=data,
        force=settings["force"],
        fail_fast=settings["fail_fast"],
        command=sweep_command(plan),
        replace=settings["replace"],
    )
    if slurm:
        from dlbench.cli._slurm import run_on_slurm

        counts = run_on_slurm(plan, store, slurm, run, False, settings["on_interrupt"], settings["fusing"])
    else:
        counts = execute_plan(plan, store, executor, jobs, run, settings["fusing"])
    line = f"{len(plan.trials)} trials: {counts.line()}."
    show_study(store, plan.study(), line, Format.table, None, settings["figures"], counts.rows)


def _train_one(ps, store, data, force: bool) -> None:
    """The run a kernels or equivariance step looks inside, trained here unless the cache holds it."""
    from dlbench.cli._progress import TrainProgress
    from dlbench.errors import DlbenchError
    from dlbench.sweep.trial import run_trial_here

    config = ps.trial
    with TrainProgress(config.model) as progress:
        row, cached = run_trial_here(config, store, data_dir=data, force=force, callback=progress.callback)
    if row.get("status") != "ok":
        raise DlbenchError(
            f"section {ps.index}: the {ps.kind} model's run {config.key} {row.get('status')}: "
            f"{row.get('message') or 'see dlbench runs'}; change its options in the study file"
        )
    err.print(
        f"{config.model} on {config.dataset}: {'cached' if cached else 'trained'} (run {config.key[:12]})"
    )


def show_plan(plan, store, output: Output) -> None:
    """Every trial with its state (cached or to train) and what the other steps do; nothing is trained."""
    rows = []
    trials = plan.configs()
    cached = {config.key: store.has(config.key) for _, _, config in trials}  # a run shared by sections: once
    for ps, label, config in trials:
        what = ps.sweep.name if ps.sweep is not None else f"{ps.kind} of {config.model}"
        rows.append(_plan_row(ps, what, label, config.key, "cached" if cached[config.key] else "to train"))
    for ps in plan.sections:
        if ps.count is not None:
            rows.append(
                _plan_row(ps, ps.count.title, f"{len(ps.count.rows)} rows", "", "counted, no training")
            )
        elif ps.sweep is None and ps.trial is None:
            target = ps.keys.get("layer") or ps.keys.get("model")
            rows.append(_plan_row(ps, f"{ps.kind} of {target}", "untrained", "", "no training"))
    rows.sort(key=lambda r: r["section"])  # stable: trials in order within each section
    title = f"Study {plan.record_name}: {plan.study.title}" + (" (--quick)" if plan.quick else "")
    columns = ["section", "step", "what", "trial", "key", "state"]
    output.table(rows, columns, title=title, keep=["section", "trial", "state"])
    done = sum(cached.values())
    output.note(
        f"{len(trials)} trials, {len(cached)} distinct runs: {done} cached, {len(cached) - done} to train; "
        "nothing was trained (--plan)"
    )


def _plan_row(ps, what: str, trial: str, key: str, state: str) -> dict:
    return {
        "section": ps.index,
        "step": ps.kind,
        "what": what,
        "trial": trial,
        "key": key[:12],
        "state": state,
    }


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
