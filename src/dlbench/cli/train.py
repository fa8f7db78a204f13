"""`dlbench train`: train one configuration (or fetch it from the cache) and summarise it."""

from __future__ import annotations

from pathlib import Path

import typer

from dlbench.analysis.model_source import default_dataset
from dlbench.cli._options import CacheDirOpt, DataDirOpt, DatasetOptOpt, FormatOpt, SetOpt
from dlbench.cli._output import Format, Output, Table
from dlbench.cli._train_options import with_train_options

RECORD_FIELDS = (
    "key",
    "status",
    "message",
    "cached",
    "model",
    "dataset",
    "params",
    "trainable",
    "test_acc",
    "test_loss",
    "initial_val_acc",
    "best_val_acc",
    "final_val_acc",
    "epochs_run",
    "seconds_per_epoch",
    "images_per_sec",
    "inference_seconds",
    "peak_memory_mb",
    "device_name",
    "precision",
    "memory_format",
    "torch_version",
    "dlbench_version",
    "command",
)


def single_values(texts: list[str] | None) -> dict[str, str]:
    from dlbench.settings import parse_assignments

    return {k: v[0] for k, v in parse_assignments(texts, allow_lists=False).items()}


def how_trained(configs) -> str:
    """Device kind, precision and memory format of these configs, each value once: 'cpu, bf16, channels_last'."""
    parts = []
    for get in (lambda c: c.device_kind, lambda c: c.options.precision, lambda c: c.options.memory_format):
        parts.append("/".join(dict.fromkeys(get(c) for c in configs)))
    return ", ".join(parts)


def record(row: dict, cached: bool) -> dict:
    rec = {k: row.get(k) for k in RECORD_FIELDS}
    rec["cached"] = cached
    if rec["precision"] is None and row.get("config"):  # a run recorded before the summary named them
        from dlbench.config import TrainConfig

        opts = TrainConfig.from_json(row["config"], row.get("key", "")).options
        rec["precision"], rec["memory_format"] = opts.precision, opts.memory_format
    return rec


@with_train_options
def train(
    model: str = typer.Option(..., "--model", "-m", help="Model name (see `dlbench models`)."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="Dataset (default: the model's own)."),
    sets: list[str] = SetOpt,
    dataset_opts: list[str] = DatasetOptOpt,
    force: bool = typer.Option(False, "--force", help="Train again even if the cache holds this config."),
    data_dir: Path = DataDirOpt,
    cache_dir: Path = CacheDirOpt,
    fmt: Format = FormatOpt,
    train_opts: dict = None,
) -> None:
    """Train one model; the same config again is answered from the cache at once."""
    from dlbench import paths
    from dlbench.cache import Store
    from dlbench.cli._progress import TrainProgress
    from dlbench.resolve import resolve_config
    from dlbench.sweep.checks import check_trial
    from dlbench.sweep.trial import run_trial_here as run_one

    config = resolve_config(
        model, dataset or default_dataset(model), single_values(sets), single_values(dataset_opts), train_opts
    )
    store = Store(paths.cache_dir(cache_dir))
    if force or not store.has(config.key):  # the checks a sweep runs on each trial; a cache hit needs none
        check_trial(config)
    with TrainProgress(f"{config.model} on {config.dataset}") as progress:
        row, cached = run_one(
            config, store, data_dir=paths.data_dir(data_dir), force=force, callback=progress.callback
        )
    show_run(Output(fmt), store, record(row, cached))


SUMMARY_FIELDS = (
    "key",
    "test_acc",
    "initial_val_acc",
    "best_val_acc",
    "params",
    "trainable",
    "seconds_per_epoch",
    "images_per_sec",
    "inference_seconds",
    "peak_memory_mb",
    "device_name",
    "precision",
    "memory_format",
)
EPOCH_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_sec"]


def show_run(output: Output, store, rec: dict) -> None:
    """One run: a header, its epochs (for people), the summary (JSON: the whole record) and how to reproduce it."""
    from rich.markup import escape

    state = {"ok": "[green]ok[/]", "diverged": "[red]diverged[/]", "oom": "[red]oom[/]"}.get(rec["status"])
    src = "from the cache" if rec["cached"] else "trained now"
    model, dataset = escape(str(rec["model"])), escape(str(rec["dataset"]))
    how = ", ".join(str(rec[k]) for k in ("precision", "memory_format") if rec.get(k))
    output.note(
        f"[bold]{model}[/] on [bold]{dataset}[/]  run {rec['key']}  {state}  ({src}{'; ' * bool(how)}{how})",
        markup=True,
    )
    if rec.get("message"):
        output.note(f"  {rec['message']}")
    epochs = store.table("epochs", [rec["key"]])
    rows = [{c: r[c] for c in EPOCH_COLUMNS} for r in epochs.to_dict("records")] if len(epochs) else []
    for r in rows:
        r["epoch"] = int(r["epoch"]) + 1
    output.detail(
        rows, EPOCH_COLUMNS, title="Epochs", keep=EPOCH_COLUMNS[:5], drop_order=["images_per_sec", "seconds"]
    )
    summary = [{"metric": k, "value": rec.get(k)} for k in SUMMARY_FIELDS]
    output.result(rec, Table(summary, title="Summary", name="summary", keep=["metric", "value"]))
    output.note(f"reproduce: {rec['command']}")
