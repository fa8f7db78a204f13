"""How fast does `dlbench report` render a big cache? 1,000 synthetic runs of 100 epochs in four sweeps.

The cache is written through `Store.save` (one Parquet file per run per table, the `runs` row last, sweep
definitions as JSON), with plausible learning curves, gradient norms, per-step losses and test
predictions, so nothing is trained. Then the report is built as Markdown and as HTML and the seconds are
printed, with the time spent reading the `runs` table on its own for comparison (the report reads it once).

    python benchmarks/report_cache.py                    # a fresh cache in a temporary folder
    python benchmarks/report_cache.py --cache /tmp/big   # reuse (or create) a cache there
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from dlbench.cache import Store
from dlbench.config import TrainConfig, make_options
from dlbench.data import get_dataset
from dlbench.models import get_model_spec

EPOCHS = 100
TABLES = ("epochs", "steps", "grads", "predictions")
STEPS_PER_EPOCH = 5  # subsampled, as the engine stores them
TEST_SIZE = 500
DATASET_OPTIONS = {"train_size": 1000, "test_size": TEST_SIZE}


def config(model: str, settings: dict, options: dict) -> TrainConfig:
    return TrainConfig(
        model=model,
        dataset="shapes",
        model_settings=get_model_spec(model).resolve(settings),
        dataset_options=get_dataset("shapes").resolve(DATASET_OPTIONS),
        options=make_options({**options, "epochs": EPOCHS}),
        device_kind="cpu",
    )


def write_run(store: Store, cfg: TrainConfig, quality: float, rng: np.random.Generator, created: str) -> None:
    """One run's tables: curves that approach ``quality`` (final validation accuracy)."""
    key = cfg.key
    ep = np.arange(EPOCHS)
    progress = 1 - np.exp(-ep / 15)
    val_acc = np.clip(0.1 + (quality - 0.1) * progress + rng.normal(0, 0.01, EPOCHS), 0, 1)
    epochs = pd.DataFrame(
        {
            "key": key,
            "epoch": ep,
            "train_loss": 2.3 * np.exp(-3 * quality * progress) + 0.01,
            "train_acc": np.clip(val_acc + 0.05, 0, 1),
            "val_loss": 2.3 * np.exp(-2.5 * quality * progress) + 0.05,
            "val_acc": val_acc,
            "lr": cfg.options.lr,
            "seconds": 0.5,
            "images_per_sec": 2000.0,
            "grad_norm": 1 + rng.random(EPOCHS),
        }
    )
    n_steps = EPOCHS * STEPS_PER_EPOCH
    steps = pd.DataFrame(
        {
            "key": key,
            "epoch": np.repeat(ep, STEPS_PER_EPOCH),
            "step": np.arange(n_steps) * 8,
            "loss": np.repeat(epochs["train_loss"].to_numpy(), STEPS_PER_EPOCH)
            * np.exp(rng.normal(0, 0.1, n_steps)),
        }
    )
    layers = ["conv1", "bn1", "conv2", "bn2", "fc", "global"]
    grads = pd.DataFrame(
        {
            "key": key,
            "epoch": np.repeat(ep, len(layers)),
            "layer": layers * EPOCHS,
            "depth": list(range(len(layers))) * EPOCHS,
            "mean_norm": np.exp(rng.normal(-1, 0.3, EPOCHS * len(layers))),
            "max_norm": np.exp(rng.normal(0, 0.3, EPOCHS * len(layers))),
        }
    )
    labels = np.arange(TEST_SIZE) % 10
    correct = rng.random(TEST_SIZE) < quality
    preds = np.where(correct, labels, (labels + 1 + rng.integers(0, 9, TEST_SIZE)) % 10)
    predictions = pd.DataFrame(
        {
            "key": key,
            "index": np.arange(TEST_SIZE),
            "label": labels,
            "pred": preds,
            "confidence": rng.uniform(0.2, 1.0, TEST_SIZE),
        }
    )
    frames = (epochs, steps, grads, predictions)
    summary = {
        "created": created,
        "params": 100_000,
        "trainable": 100_000,
        "epochs_run": EPOCHS,
        "seconds_per_epoch": 0.5,
        "images_per_sec": 2000.0,
        "best_val_acc": float(val_acc.max()),
        "final_val_acc": float(val_acc[-1]),
        "test_loss": 1.0,
        "test_acc": float(correct.mean()),
        "inference_seconds": 0.05,
        "peak_memory_mb": 500.0,
        "device_name": "cpu (synthetic)",
        "torch_version": "synthetic",
        "dlbench_version": "synthetic",
        "python_version": "synthetic",
        "best_epoch": int(val_acc.argmax()),
    }
    tables = {n: df.drop(columns="key").to_dict("list") for n, df in zip(TABLES, frames, strict=True)}
    result = SimpleNamespace(status="ok", message="", summary=summary, state_dict=None, **tables)
    store.save(cfg, result)  # as the engine's result would be stored: tables, then the runs row


def make_cache(root: Path, n_per_sweep: int = 250) -> Store:
    store = Store(root)
    store._ensure_root()
    rng = np.random.default_rng(0)
    lrs = [f"{v:.4g}" for v in np.logspace(-4, 0, n_per_sweep)]
    grid_lr = [f"{v:g}" for v in np.logspace(-3, -1, 10)]
    grid_wd = [f"{v:.3g}" for v in np.logspace(-5, -2, max(1, n_per_sweep // 10))]
    sweeps = [
        ("lr-cnn-big", "cnn", [("lr", "option", lrs)], {"channels": (8, 16)}, {}, 1),
        (
            "lr-wd-grid",
            "cnn",
            [("lr", "option", grid_lr), ("weight_decay", "option", grid_wd)],
            {"channels": (8, 16)},
            {},
            1,
        ),
        (
            "width-mlp-seeds",
            "mlp",
            [("width", "setting", ["32", "64", "128", "256", "512"])],
            {},
            {},
            max(1, n_per_sweep // 5),
        ),
        (
            "seed-cnn",
            "cnn",
            [("seed", "option", [str(s) for s in range(n_per_sweep)])],
            {"channels": (8, 16)},
            {"lr": 0.05},
            1,
        ),
    ]
    n = 0
    for name, model, axes, settings, options, repeats in sweeps:
        trials = []
        combos = [{}]
        for axis, _, values in axes:
            combos = [{**c, axis: v} for c in combos for v in values]
        for values in combos:
            for r in range(repeats):
                s, o = dict(settings), dict(options)
                for (axis, kind, _), v in zip(axes, values.values(), strict=True):
                    (s if kind == "setting" else o)[axis] = v
                if repeats > 1:
                    o["seed"] = r
                cfg = config(model, s, o)
                quality = 0.3 + 0.6 * rng.random()
                created = f"2025-01-{1 + n // 100:02d}T{(n // 60) % 24:02d}:{n % 60:02d}:00"
                write_run(store, cfg, quality, rng, created)
                trials.append({"key": cfg.key, "values": values, "repeat": r})
                n += 1
        store.save_sweep(
            {
                "name": name,
                "model": model,
                "dataset": "shapes",
                "repeats": repeats,
                "axes": [{"name": a, "kind": k, "values": v} for a, k, v in axes],
                "fixed": {
                    "settings": {
                        k: "/".join(map(str, v)) if isinstance(v, tuple) else v for k, v in settings.items()
                    },
                    "dataset_options": DATASET_OPTIONS,
                    "options": {**options, "epochs": EPOCHS},
                },
                "trials": trials,
                "command": f"dlbench sweep ... (synthetic benchmark sweep {name})",
            }
        )
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache", type=Path, help="cache folder to reuse or create (default: a temporary one)"
    )
    parser.add_argument("--per-sweep", type=int, default=250, help="runs per sweep (four sweeps)")
    args = parser.parse_args()
    from dlbench.report.write import write_report

    with tempfile.TemporaryDirectory() as tmp:
        root = args.cache or Path(tmp) / "cache"
        data = Path(tmp) / "data"
        if not (root / "runs").is_dir():
            t = time.perf_counter()
            make_cache(root, args.per_sweep)
            print(
                f"wrote a synthetic cache of {4 * args.per_sweep} runs x {EPOCHS} epochs in "
                f"{time.perf_counter() - t:.1f} s: {root}"
            )
        store = Store(root)
        get_dataset("shapes").load(data, DATASET_OPTIONS)  # generate the test images once, outside the timing

        t = time.perf_counter()
        runs = store.runs()
        t_runs = time.perf_counter() - t
        print(f"reading the runs table ({len(runs)} files): {t_runs:.2f} s")
        out = Path(tmp) / "out"
        for name in ("report.md", "report.html"):
            t = time.perf_counter()
            done = write_report(store, out / name, data_dir=data)
            secs = time.perf_counter() - t
            size = (out / name).stat().st_size / 2**20
            print(
                f"build {name}: {secs:.2f} s ({len(done.sweeps)} sweeps, {done.runs} runs, "
                f"{len(done.figures) or 'embedded'} figures, {size:.1f} MiB); reading runs is "
                f"{t_runs / secs:.0%} of it; load average {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
