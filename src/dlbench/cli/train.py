"""`dlbench train`: train one configuration (or fetch it from the cache) and summarise it."""

from __future__ import annotations

from pathlib import Path

import typer

from dlbench.cli._options import CacheDirOpt, DataDirOpt, DatasetOptOpt, FormatOpt, SetOpt
from dlbench.cli._output import Format, out, print_json, render_rows
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
    "torch_version",
    "dlbench_version",
    "command",
)


def default_dataset(model: str) -> str:
    from dlbench.models import get_model_spec

    ds = get_model_spec(model).default_dataset
    return "shapes" if ds == "imagenet-shape" else ds


def single_values(texts: list[str] | None) -> dict[str, str]:
    from dlbench.settings import parse_assignments

    return {k: v[0] for k, v in parse_assignments(texts, allow_lists=False).items()}


def record(row: dict, cached: bool) -> dict:
    rec = {k: row.get(k) for k in RECORD_FIELDS}
    rec["cached"] = cached
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
    from dlbench.config import resolve_config
    from dlbench.sweep.trial import run_trial_here as run_one

    config = resolve_config(
        model, dataset or default_dataset(model), single_values(sets), single_values(dataset_opts), train_opts
    )
    store = Store(paths.cache_dir(cache_dir))
    with TrainProgress(f"{config.model} on {config.dataset}") as progress:
        row, cached = run_one(
            config, store, data_dir=paths.data_dir(data_dir), force=force, callback=progress.callback
        )
    rec = record(row, cached)
    if fmt == Format.json:
        print_json(rec)
        return
    show_run(store, rec, fmt)


def show_run(store, rec: dict, fmt: Format) -> None:
    epochs = store.table("epochs", [rec["key"]])
    cols = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_sec"]
    rows = [{c: r[c] for c in cols} for r in epochs.to_dict("records")] if len(epochs) else []
    for r in rows:
        r["epoch"] = int(r["epoch"]) + 1
    if fmt == Format.table:
        state = {"ok": "[green]ok[/]", "diverged": "[red]diverged[/]", "oom": "[red]oom[/]"}.get(
            rec["status"]
        )
        src = "from the cache" if rec["cached"] else "trained now"
        out.print(f"[bold]{rec['model']}[/] on [bold]{rec['dataset']}[/]  run {rec['key']}  {state}  ({src})")
        if rec.get("message"):
            out.print(f"  {rec['message']}")
    render_rows(rows, cols, fmt=fmt, title="Epochs")
    summary = [
        {"metric": k, "value": rec.get(k)}
        for k in (
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
        )
    ]
    render_rows(summary, fmt=fmt, title="Summary")
    if fmt == Format.table:
        out.print(f"reproduce: {rec['command']}")
