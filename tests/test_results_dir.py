"""Results live in the platformdirs user *data* folder (cleaners empty cache folders); results an older dlbench
kept in the user cache folder move there on first use, in one rename, or stay in use with the command that
moves them. The platformdirs locations are redirected to tmp_path: the user's real folders are never touched."""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

import platformdirs
import pytest

from dlbench import paths
from dlbench.cache import Store
from dlbench.data import list_datasets
from dlbench.data._registry import DatasetSpec, register_dataset

TINY = ["--model", "mlp", "--set", "width=8", "--epochs", "1", "--batch-size", "64", "--format", "json"]
DATA = ["--dataset", "shapes", "--dataset-opt", "train_size=300", "--dataset-opt", "test_size=100"]


@pytest.fixture
def user_dirs(tmp_path, monkeypatch):
    """platformdirs' user cache and data folders under tmp_path; no DLBENCH_HOME; a fresh move memo."""
    cache, data = tmp_path / "home" / ".cache" / "dlbench", tmp_path / "home" / ".local" / "share" / "dlbench"
    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda app: str(tmp_path / "home" / ".cache" / app))
    monkeypatch.setattr(
        platformdirs, "user_data_dir", lambda app: str(tmp_path / "home" / ".local/share" / app)
    )
    monkeypatch.delenv("DLBENCH_HOME")
    monkeypatch.delenv("DLBENCH_DATA_DIR")
    paths.move_old_results.cache_clear()
    yield cache, data
    paths.move_old_results.cache_clear()


def _old_results(folder: Path) -> dict[str, int]:
    """A results folder as dlbench 0.1 left it, plus a file of the user's; returns each file's inode."""
    (folder / "runs").mkdir(parents=True)
    (folder / "SCHEMA").write_text('{"schema": 1}')
    (folder / "runs" / "0123456789abcdef.parquet").write_bytes(b"a run")
    (folder / "notes.txt").write_text("mine")
    return {p.relative_to(folder).as_posix(): p.stat().st_ino for p in folder.rglob("*") if p.is_file()}


def _moved_lines(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, paths.ResultsMoved)]


def test_results_default_to_the_user_data_folder_beside_the_datasets(user_dirs, tmp_path, monkeypatch):
    old, data = user_dirs
    assert paths.cache_dir() == data / "results"
    assert paths.data_dir() == data
    assert not (data / "results").exists()  # asking for the folder creates nothing
    monkeypatch.setenv("DLBENCH_HOME", str(tmp_path / "elsewhere"))
    assert paths.cache_dir() == tmp_path / "elsewhere"
    assert paths.cache_dir(tmp_path / "flag") == tmp_path / "flag"


def test_datasets_never_share_the_results_folder(user_dirs):
    _, data = user_dirs
    folders = {spec.folder(data) for spec in list_datasets()}
    assert paths.cache_dir() not in folders and all(f.name != paths.RESULTS for f in folders)
    with pytest.raises(ValueError, match="results folder"):
        register_dataset(DatasetSpec(name=paths.RESULTS, description="", info_fn=None, load_fn=None))


def test_old_results_move_in_one_rename_on_first_use_with_one_line(user_dirs):
    old, data = user_dirs
    inodes = _old_results(old)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = paths.cache_dir()
        again = paths.cache_dir()
    assert first == again == data / "results"
    lines = _moved_lines(caught)
    assert len(lines) == 1 and str(old) in lines[0] and str(data / "results") in lines[0], lines
    assert not old.exists()
    moved = {p.relative_to(first).as_posix(): p.stat().st_ino for p in first.rglob("*") if p.is_file()}
    assert moved == inodes  # the same files (a rename, not a copy), the user's notes.txt included


def test_results_that_cannot_be_renamed_stay_in_use_with_the_command_that_moves_them(user_dirs, monkeypatch):
    old, data = user_dirs
    inodes = _old_results(old)

    def cross_device(src, dst):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(paths.os, "rename", cross_device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert paths.cache_dir() == old
    (line,) = _moved_lines(caught)
    assert f"`mv {old} {data / 'results'}`" in line and "\n" not in line
    assert {p.relative_to(old).as_posix(): p.stat().st_ino for p in old.rglob("*") if p.is_file()} == inodes


def test_nothing_moves_that_dlbench_did_not_write_or_onto_existing_results(user_dirs):
    old, data = user_dirs
    old.mkdir(parents=True)
    (old / "something.bin").write_bytes(b"not ours")  # a folder of that name, but no results of dlbench
    assert paths.cache_dir() == data / "results" and (old / "something.bin").exists()

    paths.move_old_results.cache_clear()
    _old_results(old / "x")  # results, and a newer results folder already in place: neither is touched
    for name in ("SCHEMA", "runs", "notes.txt"):
        os.rename(old / "x" / name, old / name)
    (data / "results" / "runs").mkdir(parents=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert paths.cache_dir() == data / "results"
    assert not _moved_lines(caught) and (old / "runs" / "0123456789abcdef.parquet").exists()


def test_a_command_finds_the_runs_of_the_old_folder_after_the_move(
    cli, user_dirs, monkeypatch, one_torch_thread
):
    old, data = user_dirs
    monkeypatch.setenv("DLBENCH_DATA_DIR", str(data.parent / "data"))
    monkeypatch.setenv("DLBENCH_HOME", str(old))  # dlbench 0.1's default, given explicitly
    trained = cli("train", *DATA, *TINY)
    assert trained.code == 0, trained
    (key,) = Store(old).keys()
    monkeypatch.delenv("DLBENCH_HOME")

    listed = cli("runs", "--format", "csv")
    assert listed.code == 0, listed
    moved = [
        line for line in listed.err.splitlines() if line.startswith("warning: moved your dlbench results")
    ]
    assert len(moved) == 1, listed.err
    assert key in listed.out and not old.exists()
    assert Store(data / "results").has(key)  # intact after the move: sizes and hashes as recorded
    assert "warning" not in cli("runs", "--format", "csv").err  # said once; the next command says nothing
