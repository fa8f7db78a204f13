"""Decoded copies in ``<dataset folder>/dlbench-decoded/``: reused while the sources are unchanged, never trusted
when damaged, never written in a read-only folder or through a symlink, safe with concurrent loaders."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.test_data import _fake_cifar10, _fake_mnist, _write_idx

from dlbench.data import checksums, cifar, decoded, file_checks, get_dataset
from dlbench.data import torchvision_sets as tvs
from dlbench.errors import DatasetError

NPYS = sorted(f"{k}.npy" for k in decoded.SPLIT_ARRAYS)


def _load(data_dir: Path, name: str = "fashion-mnist", verify: bool = False):
    return tvs.load_set(name, data_dir, download=False, verify=verify)


def _same(a, b) -> bool:
    return all(torch.equal(getattr(a, k), getattr(b, k)) for k in decoded.SPLIT_ARRAYS)


def _count_decodes(monkeypatch) -> list[Path]:
    """Record every idx file decoded from its source."""
    calls: list[Path] = []
    real = tvs._read_idx

    def counting(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(tvs, "_read_idx", counting)
    return calls


def _tree(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def fake(tmp_path) -> Path:
    """A data folder holding a small fake Fashion-MNIST in the real idx/gzip format."""
    _fake_mnist(tmp_path / "fashion-mnist")
    return tmp_path


def test_the_second_load_reads_the_copy_not_the_gz_files(fake, monkeypatch):
    first = _load(fake)
    where = fake / "fashion-mnist" / decoded.DIRNAME
    assert sorted(p.name for p in where.iterdir()) == sorted([*NPYS, decoded.STAMP])

    def no_decode(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(tvs, "_read_idx", no_decode)
    second = _load(fake)
    assert _same(first, second)
    assert second.train_x.shape == (12, 1, 28, 28) and second.train_y.dtype == torch.int64
    second.train_x += 1  # owned and writable: nothing shared with the file
    assert torch.equal(_load(fake).train_x, first.train_x)


def test_the_stamp_records_sources_and_arrays(fake, monkeypatch):
    folder = fake / "mnist"
    shutil.move(fake / "fashion-mnist", folder)
    md5s = [(name, file_checks._md5(folder / name)) for name in tvs.MNIST_FILES]
    monkeypatch.setattr(checksums.MNISTFiles, "resources", md5s)
    get_dataset("mnist").load(fake, download=False)
    stamp = json.loads((folder / decoded.DIRNAME / decoded.STAMP).read_text())
    first = stamp["sources"][0]
    st = (folder / "train-images-idx3-ubyte.gz").stat()
    assert first == {
        "name": "train-images-idx3-ubyte.gz",
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "md5": md5s[0][1],
    }
    assert [s["md5"] for s in stamp["sources"]] == [m for _, m in md5s]
    images = stamp["arrays"]["train_x"]
    assert (images["shape"], images["dtype"]) == ([12, 28, 28], "|u1")
    assert images["size"] == (folder / decoded.DIRNAME / "train_x.npy").stat().st_size

    def no_rehash(path):
        raise AssertionError(f"re-hashed {path}")

    monkeypatch.setattr(file_checks, "_VERIFIED", set())  # as in a new process
    monkeypatch.setattr(file_checks, "_md5", no_rehash)  # the verified copy needs no md5
    assert len(get_dataset("mnist").load(fake, download=False).train_x) == 12


def test_an_unverified_copy_is_not_trusted_by_a_verified_load(fake):
    _load(fake, verify=False)  # fake files: their md5 is not torchvision's
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz"):
        get_dataset("fashion-mnist").load(fake, download=False)


@pytest.mark.parametrize("change", ["touched", "replaced"])
def test_a_changed_source_is_decoded_again(fake, monkeypatch, change):
    before = _load(fake).test_y
    calls = _count_decodes(monkeypatch)
    labels = fake / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz"
    if change == "touched":  # same bytes, new mtime
        st = labels.stat()
        os.utime(labels, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        expected = before
    else:  # a new download: other labels, another size
        _write_idx(labels, np.arange(7) % 10)
        expected = torch.arange(7) % 10
    assert torch.equal(_load(fake).test_y, expected)
    assert len(calls) == 4  # decoded once after the change, then read from the rewritten copy
    assert torch.equal(_load(fake).test_y, expected) and len(calls) == 4


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "truncated npy": lambda w: (w / "train_x.npy").write_bytes((w / "train_x.npy").read_bytes()[:200]),
    "flipped byte in npy": lambda w: _flip_last_byte(w / "train_x.npy"),
    "npy of another shape": lambda w: np.save(w / "test_y.npy", np.zeros(6, np.uint8)),
    "pickled npy": lambda w: np.save(w / "test_y.npy", np.array([{}] * 5, dtype=object), allow_pickle=True),
    "stamp not json": lambda w: (w / decoded.STAMP).write_text('{"format": 1, "sour'),
    "stamp a list": lambda w: (w / decoded.STAMP).write_text("[]"),
    "stamp of another format": lambda w: (w / decoded.STAMP).write_text(
        (w / decoded.STAMP).read_text().replace('"format": 1', '"format": 99')
    ),
    "stamp missing": lambda w: (w / decoded.STAMP).unlink(),
    "npy missing": lambda w: (w / "test_x.npy").unlink(),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_copy_is_ignored_and_rewritten(fake, monkeypatch, damage):
    good = _load(fake)
    where = fake / "fashion-mnist" / decoded.DIRNAME
    DAMAGE[damage](where)
    calls = _count_decodes(monkeypatch)
    assert _same(_load(fake), good) and len(calls) == 4  # decoded from the sources
    assert _same(_load(fake), good) and len(calls) == 4  # the rewritten copy is good again
    assert sorted(p.name for p in where.iterdir()) == sorted([*NPYS, decoded.STAMP])


def test_a_read_only_folder_still_loads_and_writes_nothing(fake, monkeypatch, caplog, recwarn):
    folder = fake / "fashion-mnist"
    before = _tree(fake)
    folder.chmod(0o555)  # as root too: a folder nobody may write is left alone
    try:
        calls = _count_decodes(monkeypatch)
        with caplog.at_level(logging.DEBUG, logger=decoded.__name__):
            first, second = _load(fake), _load(fake)
    finally:
        folder.chmod(0o755)
    assert _same(first, second) and len(calls) == 8  # decoded both times
    assert _tree(fake) == before
    assert not recwarn.list and len(caplog.records) == 1  # one debug note, no warning
    assert caplog.records[0].levelno == logging.DEBUG and "read-only" in caplog.text


def test_a_read_only_mount_still_loads_and_writes_nothing(fake, monkeypatch):
    from tests.test_cache_integrity import _read_only_mount

    mounted = fake / "mounted"
    (mounted / "fashion-mnist").mkdir(parents=True)
    with _read_only_mount(fake / "fashion-mnist", mounted / "fashion-mnist"):
        calls = _count_decodes(monkeypatch)
        first, second = _load(mounted), _load(mounted)
    assert _same(first, second) and len(calls) == 8
    assert not (fake / "fashion-mnist" / decoded.DIRNAME).exists()


@pytest.mark.parametrize("where", ["the folder", "an array", "the stamp"])
def test_a_symlink_at_a_decoded_name_is_left_untouched(fake, monkeypatch, where):
    outside = fake / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("a user's file")
    folder = fake / "fashion-mnist"
    copy = folder / decoded.DIRNAME
    if where == "the folder":
        copy.symlink_to(outside, target_is_directory=True)
        link = copy
    else:
        copy.mkdir()
        link = copy / ("test_y.npy" if where == "an array" else decoded.STAMP)
        link.symlink_to(outside / "keep.txt")
    before = _tree(outside)
    calls = _count_decodes(monkeypatch)
    first, second = _load(fake), _load(fake)
    assert _same(first, second) and len(calls) == 8  # never read through the link: decoded both times
    assert link.is_symlink() and _tree(outside) == before
    assert (outside / "keep.txt").read_text() == "a user's file"
    assert [p.name for p in copy.iterdir()] == ["keep.txt" if where == "the folder" else link.name]


@pytest.mark.parametrize("layout", ["extracted", "archive"])
def test_cifar_reads_its_copy_and_not_the_pickles(tmp_path, monkeypatch, layout):
    batches = tmp_path / ("cifar10" if layout == "extracted" else "src") / "cifar-10-batches-py"
    _fake_cifar10(batches)
    if layout == "archive":
        (tmp_path / "cifar10").mkdir()
        with tarfile.open(tmp_path / "cifar10" / "cifar-10-python.tar.gz", "w:gz") as tar:
            tar.add(batches, arcname="cifar-10-batches-py")
    first = _load(tmp_path, "cifar10")
    assert (tmp_path / "cifar10" / decoded.DIRNAME / decoded.STAMP).is_file()

    def no_unpickle(raw, where):
        raise AssertionError(f"unpickled {where} again")

    monkeypatch.setattr(cifar, "_unpickle", no_unpickle)
    second = _load(tmp_path, "cifar10")
    assert _same(first, second) and second.train_x.shape == (20, 3, 32, 32)
    assert second.train_y.dtype == torch.int64


CONCURRENT = r"""
import sys
from pathlib import Path
import numpy as np
from dlbench.data import decoded

folder = Path(sys.argv[1])
sources = [decoded.Source(folder / "source.bin", None)]
expected = np.frombuffer((folder / "source.bin").read_bytes(), np.uint8).reshape(-1, 1024)
for _ in range(int(sys.argv[2])):
    got = decoded.load_or_decode(folder, sources, ("x",), lambda: {"x": expected.copy()})
    assert np.array_equal(got["x"], expected), "read a copy that is not the source's"
    (folder / "dlbench-decoded" / "stamp.json").unlink(missing_ok=True)  # the next load decodes and writes again
print("ok")
"""


def test_concurrent_loaders_never_read_half_a_copy(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "source.bin").write_bytes(
        np.random.default_rng(0).integers(0, 256, 4 << 20, np.uint8).tobytes()
    )
    env = {**os.environ, "PYTHONPATH": str(Path(decoded.__file__).parents[2])}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT, str(folder), "6"], env=env, stdout=subprocess.PIPE
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=300)[0].decode().strip() for p in procs]
    assert outs == ["ok"] * 4 and all(p.returncode == 0 for p in procs)
    assert not [p.name for p in (folder / decoded.DIRNAME).iterdir() if p.name.endswith(".tmp")]


def test_real_fashion_mnist_copy_equals_the_gz_files(shared_data, tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "fashion-mnist").mkdir(parents=True)
    for name in tvs.MNIST_FILES:  # a copy: nothing is ever written in the shared folder
        shutil.copy2(shared_data / "fashion-mnist" / name, data / "fashion-mnist" / name)
    spec = get_dataset("fashion-mnist")
    from_gz = spec.load(data, download=False)
    assert (data / "fashion-mnist" / decoded.DIRNAME / decoded.STAMP).is_file()
    calls = _count_decodes(monkeypatch)
    monkeypatch.setattr(file_checks, "_VERIFIED", set())  # as in a new process
    from_copy = spec.load(data, download=False)
    assert not calls and _same(from_gz, from_copy)
    assert from_copy.train_x.shape == (60000, 1, 28, 28) and from_copy.train_y.tolist()[:5] == [9, 0, 0, 3, 0]
