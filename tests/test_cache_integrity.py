"""The cache serves only intact results that belong to their key, cleans only its own temp files, works read-only,
and survives a full disk: the promises of docs/guarantees.md about the cache folder, tested."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from dlbench.atomic import HOST, WriteError
from dlbench.cache import Store

DATA = ["--dataset", "shapes", "--dataset-opt", "train_size=600", "--dataset-opt", "test_size=100"]
TINY = [*DATA, "--model", "mlp", "--set", "width=8", "--epochs", "1", "--batch-size", "32"]
TRAIN = ["train", *TINY, "--format", "json"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cache() -> Path:
    return Path(os.environ["DLBENCH_HOME"])


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


def _errors(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if line.strip()]


def _flip_middle(path: Path) -> None:
    """Damage a table where its data pages are, keeping the Parquet footer (and so the file's metadata) valid."""
    meta = pq.read_metadata(path)
    chunks = [meta.row_group(0).column(i) for i in range(meta.num_columns)]
    chunk = max(chunks, key=lambda c: c.total_compressed_size)  # the biggest column's pages
    at = (chunk.dictionary_page_offset or chunk.data_page_offset) + 3 * chunk.total_compressed_size // 4
    data = bytearray(path.read_bytes())
    data[at : at + 2] = bytes(b ^ 0xFF for b in data[at : at + 2])
    path.write_bytes(bytes(data))
    pq.read_metadata(path)  # the footer still reads: the check of dlbench 0.1.0 would serve this file


def _sweep_keys(cache: Path) -> list[str]:
    return [t["key"] for t in Store(cache).get_sweep("lr-mlp-shapes")["trials"]]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _abandoned(folder: Path, name: str, pid: int) -> Path:
    """A temp file as dlbench's atomic writer names it, left by the killed process ``pid``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{name}.dlbench-{HOST}-{pid}.tmp"
    path.write_bytes(b"half a file")
    return path


# ------------------------------------------------------------------------------------------------- integrity
def test_byte_damage_that_keeps_the_footer_is_recomputed_by_the_next_sweep(cli):
    argv = ["sweep", "lr", "0.05,0.02,0.01,0.005", *TINY, "--no-figures"]
    first = cli(*argv, "--format", "json")
    assert first.code == 0, first
    cache = _cache()
    keys = _sweep_keys(cache)
    before = {r["lr"]: r["test_acc"] for r in json.loads(first.out)}
    tables = ("epochs", "steps", "grads", "predictions")
    damaged = [cache / table / f"{k}.parquet" for table, k in zip(tables, keys, strict=True)]
    for path in damaged:
        _flip_middle(path)

    again = cli(*argv)
    assert again.code == 0, again
    warns = _warnings(again.err)
    assert len(warns) == 4 and "Traceback" not in again.err, again.err
    for path, line in zip(damaged, warns, strict=True):  # the sweep says which file and that it recomputes
        assert str(path) in line and "damaged" in line and "counts as missing" in line and "recompute" in line
    assert "4 trials: 0 cached, 4 trained, 0 failed" in " ".join(again.out.split())
    assert len(list((cache / "quarantine").iterdir())) == 8  # each damaged table and its runs row
    clean = cli(*argv, "--format", "json")  # the next sweep is clean, and the results are the same
    assert clean.code == 0 and not _warnings(clean.err), clean
    assert {r["lr"]: r["test_acc"] for r in json.loads(clean.out)} == before
    assert all(Store(cache).has(k) for k in keys)


def test_a_table_or_runs_row_under_another_runs_key_is_detected(cli):
    first = cli("sweep", "lr", "0.05,0.02,0.01", *TINY, "--no-figures", "--format", "json")
    assert first.code == 0, first
    cache = _cache()
    k1, k2, k3 = _sweep_keys(cache)
    shutil.copy(cache / "epochs" / f"{k1}.parquet", cache / "epochs" / f"{k2}.parquet")  # a valid file
    shutil.copy(cache / "runs" / f"{k1}.parquet", cache / "runs" / f"{k3}.parquet")
    store = Store(cache)
    with pytest.warns(UserWarning) as caught:
        assert store.has(k1) and not store.has(k2) and not store.has(k3)
    lines = [str(w.message) for w in caught]
    assert len(lines) == 2 and "misplaced" in lines[0] and "epochs" in lines[0] and k2 in lines[0]
    assert f"holds run {k1}, not {k3}" in lines[1]
    assert store.keys() == [k1]  # both set aside: the next sweep recomputes them


def test_runs_written_by_dlbench_0_1_0_stay_usable_and_are_key_checked(cli):
    first = cli("sweep", "lr", "0.05,0.02", *TINY, "--no-figures", "--format", "json")
    assert first.code == 0, first
    cache = _cache()
    k1, k2 = _sweep_keys(cache)
    for k in (k1, k2):  # as 0.1.0 wrote them: no files column
        path = cache / "runs" / f"{k}.parquet"
        pd.read_parquet(path).drop(columns="files").to_parquet(path, index=False)
    assert Store(cache).has(k1) and Store(cache).has(k2)
    assert Store(cache).load_weights(k1).keys()  # no hash to compare: loaded safely all the same
    shutil.copy(cache / "grads" / f"{k1}.parquet", cache / "grads" / f"{k2}.parquet")
    with pytest.warns(UserWarning, match=f"holds rows of run {k1}, not {k2}"):
        assert not Store(cache).has(k2)


def test_damaged_weights_are_set_aside_with_one_line_when_loaded(cli):
    res = cli(*TRAIN)
    assert res.code == 0, res
    key = json.loads(res.out)["key"]
    store = Store(_cache())
    weights = store.load_weights(key)
    assert weights and all(isinstance(v, torch.Tensor) for v in weights.values())
    _flip_middle_bytes(store.weights_path(key))
    with pytest.warns(UserWarning, match="damaged"):
        with pytest.raises(Exception) as exc:
            Store(_cache()).load_weights(key)
    assert type(exc.value).__name__ == "CacheError" and "\n" not in str(exc.value)
    assert "train it again" in str(exc.value) and not Store(_cache()).has(key)


def test_tables_read_after_a_lookup_are_checked_against_their_hash(cli):
    res = cli(*TRAIN)
    assert res.code == 0, res
    key = json.loads(res.out)["key"]
    store = Store(_cache())
    assert store.has(key) and len(store.table("epochs", [key])) == 1
    _flip_middle(store.path("epochs", key))  # after the lookup: the read itself notices
    with pytest.warns(UserWarning, match="damaged or misplaced") as caught:
        assert store.table("epochs", [key]).empty
    assert len(caught) == 1 and not Store(_cache()).has(key)  # set aside: the next train recomputes it
    again = cli(*TRAIN)
    assert again.code == 0 and json.loads(again.out)["cached"] is False, again


def test_a_run_another_process_is_rewriting_is_missing_not_damaged(cli, tmp_path):
    import socket
    import warnings

    res = cli(*TRAIN)
    assert res.code == 0, res
    key = json.loads(res.out)["key"]
    store = Store(_cache())
    _flip_middle(
        store.path("epochs", key)
    )  # as `train --force` elsewhere, halfway through replacing its files
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim = store.root / "claims" / f"{key}.claim"
        claim.parent.mkdir(exist_ok=True)
        claim.write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "token": "theirs"}))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no warning: nothing is damaged, it is being replaced
            assert not store.has(key)
        assert store.path("epochs", key).exists() and not (store.root / "quarantine").exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    with pytest.warns(UserWarning, match="damaged or misplaced"):  # its writer died: now it is damage
        assert not Store(_cache()).has(key)


def _flip_middle_bytes(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_runs_row_from_a_newer_dlbench_is_one_clear_line(cli, tmp_path):
    res = cli(*TRAIN)
    assert res.code == 0, res
    cache, key = _cache(), json.loads(res.out)["key"]
    row = pd.read_parquet(cache / "runs" / f"{key}.parquet").iloc[0].to_dict()
    config = json.loads(row["config"])
    config["options"]["fused_group"] = 4  # an option this version does not know
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    newer = hashlib.sha256(text.encode()).hexdigest()[:16]
    for table in ("epochs", "steps", "grads", "predictions"):
        shutil.copy(cache / table / f"{key}.parquet", cache / table / f"{newer}.parquet")
    shutil.copy(cache / "weights" / f"{key}.pt", cache / "weights" / f"{newer}.pt")
    pd.DataFrame([{**row, "key": newer, "config": text}]).to_parquet(cache / "runs" / f"{newer}.parquet")
    assert Store(cache).has(newer)  # intact: it is only newer
    for argv in (
        ["visualize-kernels", "--run", newer, "--out", tmp_path / "k.png"],
        ["train", *TINY, "--from-run", newer, "--format", "json"],
    ):
        res = cli(*argv)
        lines = _errors(res.err)
        assert res.code != 0 and len(lines) == 1 and "Traceback" not in res.err, (argv, res)
        assert newer in lines[0] and "newer dlbench" in lines[0] and "upgrade dlbench" in lines[0], res
        assert "TypeError" not in lines[0]


# --------------------------------------------------------------------------------------------------- cleanup
def test_cleanup_reaps_only_dlbench_temp_files_and_never_through_a_symlink(cli, tmp_path):
    first = cli("sweep", "lr", "0.05", *TINY, "--format", "json")  # with its figures
    assert first.code == 0, first
    cache = _cache()
    [sweep_figs] = [p for p in (cache / "sweeps").iterdir() if p.is_dir()]
    dead = _dead_pid()
    left = [  # every temp file a killed dlbench process can leave in the cache
        _abandoned(cache / "runs", "k.parquet", dead),
        _abandoned(cache / "epochs", "k.parquet", dead),
        _abandoned(cache / "predictions", "k.parquet", dead),
        _abandoned(cache / "weights", "k.pt", dead),
        _abandoned(cache / "checkpoints", "k.pt", dead),
        _abandoned(cache / "sweeps", "lr-mlp-shapes.json", dead),
        _abandoned(sweep_figs, "curves.png", dead),
        _abandoned(cache / "figures", "index.parquet", dead),
        _abandoned(cache / "figures", "kernels-x.png", dead),
        _abandoned(cache / "claims", "k.claim", dead),
        _abandoned(cache / "counts", "abc.json", dead),
        _abandoned(cache, "SCHEMA", dead),
    ]
    live = _abandoned(cache / "runs", "busy.parquet", os.getpid())  # a writer still at work: kept
    users = [
        cache / ".notes.tmp",
        cache / "runs" / ".x.tmp",
        cache / "mine" / f".a.dlbench-{HOST}-{dead}.tmp",
    ]
    for p in users:
        p.parent.mkdir(exist_ok=True)
        p.write_text("mine")
    outside = tmp_path / "outside"  # a symlinked folder, in the cache's own layout and inside a sweep folder
    behind = [_abandoned(outside, "k.pt", dead), _abandoned(outside / "sub", "curves.png", dead)]
    (cache / "steps").rename(tmp_path / "steps-moved")
    (cache / "steps").symlink_to(outside)
    (cache / "sweeps" / "linked").symlink_to(outside / "sub")

    res = cli(*TRAIN)  # any command that writes to the cache cleans first
    assert res.code == 0, res
    assert [p for p in left if p.exists()] == []
    assert live.exists() and all(p.exists() for p in users) and all(p.exists() for p in behind)


def test_a_read_only_cache_serves_cached_train_runs_report_and_kernels(cli, tmp_path):
    src, ro = tmp_path / "src", tmp_path / "ro"
    res = cli("sweep", "lr", "0.01", *TINY, "--format", "json", "--cache-dir", src)  # TRAIN's lr
    assert res.code == 0, res
    [key] = _sweep_keys(src)
    ro.mkdir()
    with _read_only_mount(src, ro):
        before = _tree(src)
        hit = cli(*TRAIN, "--cache-dir", ro)
        assert hit.code == 0 and json.loads(hit.out)["cached"] is True, hit
        assert not _warnings(hit.err) and "error" not in hit.err, hit
        listing = cli("runs", "--format", "json", "--cache-dir", ro)
        assert listing.code == 0 and [r["key"] for r in json.loads(listing.out)] == [key], listing
        report = cli("report", "--out", tmp_path / "out" / "report.md", "--cache-dir", ro)
        assert report.code == 0 and (tmp_path / "out" / "report.md").exists(), report
        kernels = cli("visualize-kernels", "--run", key, "--out", tmp_path / "k.png", "--cache-dir", ro)
        assert kernels.code == 0 and (tmp_path / "k.png").exists(), kernels
        assert "read-only" in " ".join(_warnings(kernels.err))  # the figure could not be recorded
        assert _tree(src) == before
        # Damage found in a read-only cache is skipped with a warning, never moved.
        _flip_middle(src / "predictions" / f"{key}.parquet")
        before = _tree(src)
        again = cli(*TRAIN, "--cache-dir", ro)
        [warning] = _warnings(again.err)
        assert "damaged" in warning and "read-only" in warning and "skipped" in warning, again
        assert (
            again.code != 0 and "cannot write the cache folder" in again.err and "Traceback" not in again.err
        )
        assert _tree(src) == before  # nothing was written, moved or cleaned


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@contextlib.contextmanager
def _read_only_mount(src: Path, dst: Path):
    """``src`` mounted read-only at ``dst`` (a bind mount: as root, chmod does not stop writes)."""
    try:
        subprocess.run(["mount", "--bind", str(src), str(dst)], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot bind-mount here (needs root and mount permission): {exc}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(dst)], check=True, capture_output=True)
        assert not os.access(dst, os.W_OK)
        yield
    finally:
        subprocess.run(["umount", str(dst)], check=False, capture_output=True)


# ------------------------------------------------------------------------------------------------ full disk
def _config(width: int):
    from dlbench.resolve import resolve_config

    return resolve_config(
        "mlp", "shapes", {"width": str(width)}, {"train_size": "600", "test_size": "100"}, {"epochs": "1"}
    )


def test_a_full_disk_is_one_line_naming_the_path_and_loses_nothing(tmp_path):
    from dlbench.engine import train

    cache = tmp_path / "tiny-disk"
    cache.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(cache)], check=True, capture_output=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a small tmpfs here (needs root and mount permission): {exc}")
    try:
        store = Store(cache)
        small, big = _config(8), _config(64)
        store.save(small, train(small, data_dir=tmp_path / "data"))
        result = train(big, data_dir=tmp_path / "data")
        checkpoint = store.checkpoint_path(big.key)  # the state a rerun would resume from
        checkpoint.parent.mkdir(exist_ok=True)
        checkpoint.write_bytes(b"resume state")
        filler = cache / "filler"
        free = os.statvfs(cache).f_bavail * os.statvfs(cache).f_frsize
        filler.write_bytes(b"\0" * max(0, free - 64 * 1024))  # room for the tables, not for the weights
        with pytest.raises(WriteError) as exc:
            store.save(big, result)
        message = str(exc.value)
        assert "\n" not in message and "no space left" in message and str(cache) in message
        assert not store.path("runs", big.key).exists() and checkpoint.exists()  # not complete; resumable
        assert not [p for p in cache.rglob(".*.tmp")]  # the failed write left no temp file
        assert Store(cache).has(small.key) and not Store(cache).has(big.key)
        filler.unlink()
        store.save(big, result)  # space again: the same save completes
        assert Store(cache).has(big.key) and not checkpoint.exists()
    finally:
        subprocess.run(["umount", str(cache)], check=False, capture_output=True)


def test_a_failed_write_of_the_runs_row_leaves_the_previous_state(tmp_path, monkeypatch):
    """Where no small disk can be mounted: the last write (the runs row) fails as a full disk would."""
    import dlbench.atomic as atomic
    from dlbench.engine import train

    store = Store(tmp_path / "cache")
    config = _config(8)
    result = train(config, data_dir=tmp_path / "data")
    real = atomic.os.replace

    def full(src, dst):
        if Path(dst).parent.name == "runs":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    with monkeypatch.context() as m, pytest.raises(WriteError, match="no space left"):
        m.setattr(atomic.os, "replace", full)
        store.save(config, result)
    assert not Store(store.root).has(config.key) and not list(store.root.rglob(".*.tmp"))
    store.save(config, result)
    assert Store(store.root).has(config.key)


# ------------------------------------------------------------------------------------- one door, one writer
def test_count_tables_are_recorded_once_per_command_and_read_back(tmp_path):
    import numpy as np

    store = Store(tmp_path / "cache")
    cmd = "dlbench count-params --model mlp --set width=8"
    store.record_counts("MLP", cmd, ["model", "params"], [{"model": "mlp", "params": np.int64(5), "x": 1}])
    store.record_counts("MLP", cmd, ["model", "params"], [{"model": "mlp", "params": 7}])  # replaces its own
    store.record_counts("CNN", "dlbench count-params --model cnn", ["model"], [{"model": "cnn"}])
    tables = Store(tmp_path / "cache").counts()
    assert sorted(t["title"] for t in tables) == ["CNN", "MLP"]
    [mlp] = [t for t in tables if t["title"] == "MLP"]
    assert mlp["command"] == cmd and mlp["columns"] == ["model", "params"]
    assert mlp["rows"] == [{"model": "mlp", "params": 7}] and mlp["created"]
    assert len(list((tmp_path / "cache" / "counts").iterdir())) == 2


def test_the_shapes_data_cache_is_written_with_the_users_umask(tmp_path):
    from dlbench.data import get_dataset

    old = os.umask(0o022)
    try:
        get_dataset("shapes").load(tmp_path / "data", {"train_size": 50, "test_size": 10})
    finally:
        os.umask(old)
    [cached] = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert cached.stat().st_mode & 0o777 == 0o644  # readable in a shared data folder (was 0600)
    assert not cached.name.startswith(".")
