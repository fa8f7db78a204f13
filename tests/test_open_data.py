"""Open data: each run's hyperparameters are columns of its runs row (written for new runs, derived for old ones),
and the pandas, polars and DuckDB examples of docs/data.md run against a real cache."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from dlbench.cache import Store
from dlbench.cache.integrity import config_key

ROOT = Path(__file__).resolve().parents[1]
DATA = ["--dataset", "shapes", "--dataset-opt", "train_size=300", "--dataset-opt", "test_size=100"]
CNN = [*DATA, "--model", "cnn", "--set", "width=4", "--epochs", "2", "--batch-size", "64", "--no-figures"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cache() -> Path:
    return Path(os.environ["DLBENCH_HOME"])


def _sweep(cli, values: str = "0.01,0.1") -> list[str]:
    done = cli("sweep", "lr", values, *CNN, "--format", "json")
    assert done.code == 0, done
    return [t["key"] for t in Store(_cache()).get_sweep("lr-cnn-shapes")["trials"]]


def _strip_hyperparameters(path: Path) -> None:
    """Rewrite a runs file as dlbench wrote it before the hyperparameter columns existed."""
    df = pd.read_parquet(path)
    old = df[[c for c in df.columns if not c.startswith(("opt_", "set_", "data_")) and c != "device_kind"]]
    old.to_parquet(path, index=False)


def test_a_new_run_stores_its_hyperparameters_as_columns_and_stays_intact(cli):
    keys = _sweep(cli)
    store = Store(_cache())
    for key, lr in zip(keys, (0.01, 0.1), strict=True):
        row = pd.read_parquet(store.path("runs", key)).iloc[0]  # the raw file, as pandas or DuckDB sees it
        config = json.loads(row["config"])
        assert config_key(row["config"]) == key  # the key is still the hash of the config alone
        assert row["opt_lr"] == lr and row["opt_batch_size"] == 64 and row["opt_epochs"] == 2
        assert row["opt_optimizer"] == "sgd" and row["opt_transfer"] == "scratch" and "opt_device" not in row
        assert row["set_width"] == 4 and row["set_activation"] == config["model_settings"]["activation"]
        assert row["set_channels"] == "/".join(map(str, config["model_settings"]["channels"]))
        assert row["data_train_size"] == 300 and row["data_test_size"] == 100
        assert row["device_kind"] == "cpu"
        assert store.has(key)  # the integrity record (files: sizes and hashes) still matches every file
    rerun = cli("sweep", "lr", "0.01,0.1", *CNN, "--format", "json")
    assert rerun.code == 0 and "2 cached" in rerun.err + rerun.out, rerun


def test_runs_written_before_the_columns_existed_show_them_too(cli):
    keys = _sweep(cli)
    store = Store(_cache())
    _strip_hyperparameters(store.path("runs", keys[0]))  # an old run beside a new one
    assert "opt_lr" not in pd.read_parquet(store.path("runs", keys[0])).columns

    fresh = Store(_cache())
    assert fresh.has(keys[0]) and fresh.has(keys[1])  # nothing about the run's identity or integrity changed
    df = fresh.runs().set_index("key")
    assert df.loc[keys[0], "opt_lr"] == 0.01 and df.loc[keys[1], "opt_lr"] == 0.1
    assert (df["set_width"] == 4).all() and (df["data_train_size"] == 300).all()
    assert fresh.get(keys[0])["opt_lr"] == 0.01  # one row, as `runs show` reads it

    listed = cli("runs", "--format", "csv")
    assert listed.code == 0, listed
    rows = {r["key"]: r for r in csv.DictReader(io.StringIO(listed.out))}
    assert set(rows) == set(keys)
    for key, lr in zip(keys, ("0.01", "0.1"), strict=True):
        assert rows[key]["opt_lr"] == lr and rows[key]["set_width"] == "4"
        assert rows[key]["data_train_size"] == "300" and rows[key]["opt_batch_size"] == "64"

    table = cli("runs")  # for people: only the columns that differ between the runs listed
    assert table.code == 0 and "opt_lr" in table.out and "opt_batch_size" not in table.out, table


def test_shown_hyperparameters_always_come_from_the_checked_config(cli):
    """A stored column that disagrees with the config (edited by hand) never reaches dlbench's readers: the
    config is what the key is checked against."""
    keys = _sweep(cli, "0.01")
    path = Store(_cache()).path("runs", keys[0])
    df = pd.read_parquet(path)
    df["opt_lr"] = 99.0
    df.to_parquet(path, index=False)
    store = Store(_cache())
    assert store.has(keys[0])
    assert store.runs()["opt_lr"].tolist() == [0.01]
    assert store.get(keys[0])["opt_lr"] == 0.01


def _examples() -> list[str]:
    text = (ROOT / "docs" / "data.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_every_example_of_the_data_page_runs_against_a_real_cache(cli, capsys):
    _sweep(cli, "0.01,0.03,0.1")
    examples = _examples()
    assert len(examples) == 4  # pandas, Store, polars, DuckDB
    home = 'cache = Path("~/.local/share/dlbench/results").expanduser()'
    ran = []
    for code in examples:
        assert home in code, code[:200]
        needs = re.search(r"^import (polars|duckdb)", code, re.M)
        if needs and not _importable(needs[1]):
            continue  # neither is a dependency of dlbench; CI images with them run these too
        capsys.readouterr()
        exec(compile(code.replace(home, f"cache = Path({str(_cache())!r})"), "docs/data.md", "exec"), {})
        out = capsys.readouterr().out
        assert "0.03" in out, out  # the learning rates are there, one row or column each
        ran.append(needs[1] if needs else "pandas")
    assert ran.count("pandas") == 2


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def test_the_data_page_names_every_column_dlbench_writes(cli):
    keys = _sweep(cli, "0.01")
    store = Store(_cache())
    text = (ROOT / "docs" / "data.md").read_text()
    for table in ("runs", "epochs", "steps", "grads", "predictions"):
        columns = pd.read_parquet(store.path(table, keys[0])).columns
        named = [c for c in columns if not c.startswith(("opt_", "set_", "data_"))]
        missing = [c for c in named if f"`{c}`" not in text]
        assert not missing, f"{table}: {missing} not documented in docs/data.md"
    row = pd.read_parquet(store.path("runs", keys[0])).iloc[0]
    options = [c for c in row.index if c.startswith("opt_")]
    assert [c for c in options if f"`{c}`" not in text] == []
