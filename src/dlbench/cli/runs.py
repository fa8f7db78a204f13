"""`dlbench runs`: list, show and remove cached runs."""

from __future__ import annotations

from pathlib import Path

import typer

from dlbench.cli._options import CacheDirOpt, FormatOpt
from dlbench.cli._output import Format, Output, err

app = typer.Typer(help="List, show and remove cached runs.", no_args_is_help=False, add_completion=False)

STATUSES = ("ok", "diverged", "oom")
LIST_COLUMNS = [
    "key",
    "status",
    "model",
    "dataset",
    "test_acc",
    "best_val_acc",
    "epochs_run",
    "params",
    "seconds_per_epoch",
    "created",
]


def _store(cache_dir):
    from dlbench import paths
    from dlbench.cache import Store

    return Store(paths.cache_dir(cache_dir))


@app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    model: str = typer.Option(None, "--model", "-m", help="Only runs of this model."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="Only runs on this dataset."),
    status: str = typer.Option(None, "--status", help="ok | diverged | oom"),
    cache_dir: Path = CacheDirOpt,
    fmt: Format = FormatOpt,
) -> None:
    """List cached runs (filter by model, dataset, status)."""
    if ctx.invoked_subcommand:
        ctx.obj = {"cache_dir": cache_dir}
        return
    if status and status not in STATUSES:
        from dlbench.errors import UnknownNameError

        raise UnknownNameError("status", status, STATUSES)
    store = _store(cache_dir)
    df = store.runs(model=model, dataset=dataset, status=status)
    output = Output(fmt)
    hyper = _hyperparameter_columns(df, varying_only=output.for_people)
    columns = LIST_COLUMNS[:4] + hyper + LIST_COLUMNS[4:] if output.for_people else LIST_COLUMNS + hyper
    rows = df.reindex(columns=columns).to_dict("records")
    output.table(
        rows,
        columns,
        title=f"{len(rows)} cached runs in {store.root}",
        keep=["key", "status", "test_acc", "best_val_acc"],
        drop_order=["created", "seconds_per_epoch", "params", "epochs_run", *reversed(hyper)],
    )


def _hyperparameter_columns(df, varying_only: bool) -> list[str]:
    """The runs' hyperparameter columns (``opt_lr``, ``set_width``, ...): every one for programs; for people,
    only those whose value differs between the listed runs (the rest would repeat one value down the table)."""
    from dlbench.cache.columns import is_hyperparameter

    columns = [c for c in df.columns if is_hyperparameter(c)]
    if varying_only:
        columns = [c for c in columns if df[c].astype(str).nunique() > 1]
    return columns


@app.command("show")
def show(
    key: str = typer.Argument(..., help="Run key (a unique prefix is enough)."),
    cache_dir: Path = CacheDirOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Show one run: its epochs, summary and the command that reproduces it."""
    from dlbench.cli.train import record, show_run

    store = _store(cache_dir)
    show_run(Output(fmt), store, record(store.get(key), cached=True))


@app.command("rm")
def remove(
    keys: list[str] = typer.Argument(..., help="Run keys (unique prefixes) to delete."),
    cache_dir: Path = CacheDirOpt,
) -> None:
    """Delete runs from the cache (all their tables, checkpoint and weights)."""
    store = _store(cache_dir)
    full = [store.resolve_key(k) for k in keys]  # check every key before deleting any
    for k in full:
        store.remove(k)
    err.print(f"removed {len(full)} run(s) from {store.root}")
