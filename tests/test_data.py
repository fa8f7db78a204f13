"""Dataset layer: procedural shapes, torchvision-backed sets (real and fake files), imagefolder, registry."""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import tarfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch.nn as nn

from dlbench.data import checksums, file_checks, get_dataset, list_datasets, shapes_render
from dlbench.data import shapes as shapes_mod
from dlbench.data import torchvision_sets as tvs
from dlbench.errors import DatasetError, InvalidSettingError, UnknownNameError, UsageError

SHARED = Path(os.environ.get("DLBENCH_TEST_DATA") or Path(__file__).parents[1].parent / "shared/data")
SMALL = {"train_size": 200, "test_size": 50, "image_size": 16, "seed": 3}


# -------------------- registry
def test_registry_lists_the_builtin_sets():
    names = {s.name for s in list_datasets()}
    assert {"shapes", "mnist", "fashion-mnist", "cifar10", "cifar100"} <= names


def test_unknown_dataset_suggests_close_name():
    with pytest.raises(UnknownNameError, match="fashion-mnist"):
        get_dataset("fashion_mnist")


def test_unknown_option_is_rejected(tmp_path):
    with pytest.raises(InvalidSettingError, match="bogus"):
        get_dataset("shapes").load(tmp_path, {"bogus": 1})
    with pytest.raises(InvalidSettingError):
        get_dataset("cifar10").info(None, {"image_size": 32})  # cifar takes no options


def test_bad_option_value_is_rejected(tmp_path):
    with pytest.raises(UsageError):
        get_dataset("shapes").info(None, {"image_size": "big"})
    with pytest.raises(InvalidSettingError):
        get_dataset("shapes").info(None, {"image_size": 2})


def test_static_info_needs_no_files():
    assert get_dataset("fashion-mnist").info().input_shape == (1, 28, 28)
    c100 = get_dataset("cifar100").info()
    assert (c100.input_shape, c100.num_classes, c100.train_size, len(c100.classes)) == (
        (3, 32, 32),
        100,
        50000,
        100,
    )
    info = get_dataset("shapes").info(None, {"image_size": "24", "train-size": "100"})
    assert info.input_shape == (3, 24, 24) and info.train_size == 100 and len(info.classes) == 10


# -------------------- shapes
def test_shapes_shapes_dtypes_and_classes(tmp_path):
    ds = get_dataset("shapes").load(tmp_path, SMALL)
    assert ds.train_x.shape == (200, 3, 16, 16) and ds.test_x.shape == (50, 3, 16, 16)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert ds.train_y.min() >= 0 and ds.train_y.max() < 10
    assert set(ds.train_y.tolist()) == set(range(10))
    assert torch.bincount(ds.train_y, minlength=10).tolist() == [20] * 10  # balanced
    assert ds.info.input_shape == (3, 16, 16) and ds.info.num_classes == 10
    assert not torch.equal(ds.train_x[:50], ds.test_x)  # different derived seeds


def test_shapes_deterministic(tmp_path):
    a = get_dataset("shapes").load(tmp_path / "a", SMALL)
    b = get_dataset("shapes").load(tmp_path / "b", SMALL)
    c = get_dataset("shapes").load(tmp_path / "c", {**SMALL, "seed": 4})
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, c.train_x)


def test_shapes_second_load_hits_file_cache(tmp_path, monkeypatch):
    first = get_dataset("shapes").load(tmp_path, SMALL)
    path = shapes_mod.cache_file(tmp_path, **SMALL)
    assert path.exists() and path.parent == tmp_path / "shapes"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left behind

    def boom(*args, **kwargs):
        raise AssertionError("regenerated instead of reading the cache")

    monkeypatch.setattr(shapes_render, "generate", boom)
    second = get_dataset("shapes").load(tmp_path, SMALL)
    assert torch.equal(first.train_x, second.train_x)


def test_shapes_corrupt_cache_is_regenerated(tmp_path):
    first = get_dataset("shapes").load(tmp_path, SMALL)
    shapes_mod.cache_file(tmp_path, **SMALL).write_bytes(b"garbage")
    again = get_dataset("shapes").load(tmp_path, SMALL)
    assert torch.equal(first.train_x, again.train_x)


def _train_eval(model: nn.Module, data, epochs: int) -> float:
    (xtr, ytr), (xte, yte) = data
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), 64):
            b = perm[i : i + 64]
            loss = nn.functional.cross_entropy(model(xtr[b]), ytr[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return (model(xte).argmax(1) == yte).float().mean().item()


def test_shapes_is_learnable_cnn_beats_mlp(tmp_path):
    ds = get_dataset("shapes").load(tmp_path, {"train_size": 3000, "test_size": 1000, "seed": 1})
    mean = torch.tensor(ds.info.mean).view(1, 3, 1, 1)
    std = torch.tensor(ds.info.std).view(1, 3, 1, 1)
    data = [
        ((x.float() / 255 - mean) / std, y) for x, y in ((ds.train_x, ds.train_y), (ds.test_x, ds.test_y))
    ]
    torch.manual_seed(0)
    cnn = nn.Sequential(  # ~14.7k parameters
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 5), nn.ReLU(), nn.Linear(5, 10))  # ~15.4k
    acc_cnn = _train_eval(cnn, data, epochs=5)
    acc_mlp = _train_eval(mlp, data, epochs=5)
    assert acc_cnn > 0.6, acc_cnn  # chance is 0.1; observed ~0.86
    assert acc_cnn > acc_mlp + 0.25, (acc_cnn, acc_mlp)  # observed MLP ~0.17


# -------------------- real files
@pytest.mark.skipif(
    not (SHARED / "fashion-mnist").is_dir(), reason="shared Fashion-MNIST files not available"
)
def test_fashion_mnist_from_shared_real_files():
    spec = get_dataset("fashion-mnist")
    assert spec.present(SHARED)
    ds = spec.load(SHARED, download=False)
    assert ds.train_x.shape == (60000, 1, 28, 28) and ds.test_x.shape == (10000, 1, 28, 28)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert ds.train_y.tolist()[:5] == [9, 0, 0, 3, 0]
    assert torch.bincount(ds.test_y).tolist() == [1000] * 10
    assert ds.info == spec.info()


# -------------------- fake files
def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = struct.pack(">I", 0x0800 | arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def _fake_mnist(folder: Path, n_train: int = 12, n_test: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in arrays.items():
        _write_idx(folder / name, arr)
    return arrays


def test_fake_fashion_mnist_files_decode(tmp_path):
    arrays = _fake_mnist(tmp_path / "fashion-mnist")
    assert get_dataset("fashion-mnist").present(tmp_path)
    ds = tvs.load_set("fashion-mnist", tmp_path, download=False, verify=False)
    assert ds.train_x.shape == (12, 1, 28, 28) and ds.test_x.shape == (5, 1, 28, 28)
    assert ds.train_x.dtype == torch.uint8 and ds.test_y.dtype == torch.int64
    assert np.array_equal(ds.train_x[:, 0].numpy(), arrays["train-images-idx3-ubyte.gz"])
    assert np.array_equal(ds.test_y.numpy(), arrays["t10k-labels-idx1-ubyte.gz"])
    assert (ds.info.train_size, ds.info.test_size) == (12, 5)


def test_fake_files_with_their_md5_pass_verification_once(tmp_path, monkeypatch):
    folder = tmp_path / "mnist"
    _fake_mnist(folder)
    md5s = [(name, file_checks._md5(folder / name)) for name in tvs.MNIST_FILES]
    monkeypatch.setattr(checksums.MNISTFiles, "resources", md5s)
    ds = get_dataset("mnist").load(tmp_path, download=False)
    assert len(ds.train_x) == 12

    def no_rehash(path):
        raise AssertionError(f"re-hashed {path}")

    monkeypatch.setattr(file_checks, "_md5", no_rehash)  # second load in the same process: no hashing
    assert len(get_dataset("mnist").load(tmp_path, download=False).test_x) == 5


def test_corrupt_file_names_the_file(tmp_path):
    folder = tmp_path / "fashion-mnist"
    _fake_mnist(folder)  # right names, wrong content: md5 differs from torchvision's
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz") as err:
        get_dataset("fashion-mnist").load(tmp_path, download=False)
    assert str(folder) in str(err.value) and "delete" in str(err.value)


def test_undecodable_file_is_a_dataset_error(tmp_path):
    folder = tmp_path / "fashion-mnist"
    _fake_mnist(folder)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz"):
        tvs.load_set("fashion-mnist", tmp_path, download=False, verify=False)


def _no_network(*args, **kwargs):
    raise URLError("network is unreachable (test)")


@pytest.mark.parametrize("download", [True, False])
def test_missing_mnist_files_name_folder_and_files(tmp_path, monkeypatch, download):
    import torchvision.datasets.mnist as tv_mnist

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", _no_network)
    with pytest.raises(DatasetError) as err:
        get_dataset("fashion-mnist").load(tmp_path, download=download)
    msg = str(err.value)
    assert str(tmp_path / "fashion-mnist") in msg
    assert all(name in msg for name in tvs.MNIST_FILES)


def test_missing_cifar_files_name_folder_and_archive(tmp_path, monkeypatch):
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "download_and_extract_archive", _no_network)
    assert not get_dataset("cifar10").present(tmp_path)
    with pytest.raises(DatasetError) as err:
        get_dataset("cifar10").load(tmp_path, download=True)
    assert str(tmp_path / "cifar10") in str(err.value) and "cifar-10-python.tar.gz" in str(err.value)


def _fake_cifar10(base: Path, per_batch: int = 4) -> None:
    rng = np.random.default_rng(1)
    base.mkdir(parents=True)
    for i, (name, _) in enumerate(tvs.CIFAR10InFolder.train_list + tvs.CIFAR10InFolder.test_list):
        batch = {
            "batch_label": name,
            "labels": [(i + j) % 10 for j in range(per_batch)],
            "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
        }
        (base / name).write_bytes(pickle.dumps(batch))
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": list(tvs.CIFAR10_CLASSES)}))


def test_fake_cifar10_batches_decode(tmp_path):
    base = tmp_path / "cifar10" / "cifar-10-batches-py"
    _fake_cifar10(base)
    assert get_dataset("cifar10").present(tmp_path)
    ds = tvs.load_set("cifar10", tmp_path, download=False, verify=False)
    assert ds.train_x.shape == (20, 3, 32, 32) and ds.test_x.shape == (4, 3, 32, 32)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    first = pickle.loads((base / "data_batch_1").read_bytes())
    assert np.array_equal(ds.train_x[0].numpy().reshape(-1), first["data"][0])  # R plane, then G, then B
    assert ds.train_y[:4].tolist() == first["labels"]


def test_fake_cifar10_read_from_archive_without_extracting(tmp_path):
    src = tmp_path / "src" / "cifar-10-batches-py"
    _fake_cifar10(src)
    folder = tmp_path / "data" / "cifar10"
    folder.mkdir(parents=True)
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src, arcname="cifar-10-batches-py")
    ds = tvs.load_set("cifar10", tmp_path / "data", download=False, verify=False)
    assert ds.train_x.shape == (20, 3, 32, 32) and len(ds.test_y) == 4
    # nothing extracted: beside the archive only the decoded copy (dlbench.data.decoded)
    assert sorted(p.name for p in folder.iterdir()) == ["cifar-10-python.tar.gz", "dlbench-decoded"]
    with pytest.raises(DatasetError, match="cifar-10-python.tar.gz"):  # fake archive: md5 mismatch
        get_dataset("cifar10").load(tmp_path / "data", download=False)


# -------------------- imagefolder
def _write_pngs(root: Path, classes=("cat", "dog", "eel"), per_class: int = 5) -> None:
    from PIL import Image

    rng = np.random.default_rng(2)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            size = (20 + i, 12 + 2 * i)  # odd sizes: everything is resized
            if i % 2:
                img = Image.fromarray(rng.integers(0, 256, size[::-1], dtype=np.uint8), mode="L")
            else:
                img = Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8), mode="RGB")
            img.save(root / c / f"{i}.png")


def test_imagefolder_with_random_split(tmp_path):
    _write_pngs(tmp_path / "imgs")
    spec = get_dataset(f"imagefolder:{tmp_path / 'imgs'}")
    assert spec.name == f"imagefolder:{tmp_path / 'imgs'}"
    info = spec.info(None, {"image_size": 16})
    assert info.classes == ("cat", "dog", "eel") and (info.train_size, info.test_size) == (12, 3)
    ds = spec.load(tmp_path, {"image_size": 16})
    assert ds.train_x.shape == (12, 3, 16, 16) and ds.test_x.shape == (3, 3, 16, 16)
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    again = spec.load(tmp_path, {"image_size": 16})
    assert torch.equal(ds.test_x, again.test_x)  # seeded split
    other = spec.load(tmp_path, {"image_size": 16, "seed": 5})
    assert sorted(ds.train_y.tolist() + ds.test_y.tolist()) == sorted(
        other.train_y.tolist() + other.test_y.tolist()
    )


def test_imagefolder_with_train_and_test_folders(tmp_path):
    _write_pngs(tmp_path / "imgs" / "train", per_class=4)
    _write_pngs(tmp_path / "imgs" / "test", classes=("cat", "eel"), per_class=2)
    ds = get_dataset(f"imagefolder:{tmp_path / 'imgs'}").load(tmp_path)
    assert ds.train_x.shape == (12, 3, 32, 32) and ds.test_x.shape == (4, 3, 32, 32)
    assert sorted(set(ds.test_y.tolist())) == [0, 2]  # labels follow train's class order


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        get_dataset(f"imagefolder:{tmp_path / 'nope'}").info()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class folders"):
        get_dataset(f"imagefolder:{tmp_path / 'empty'}").load(tmp_path)
    with pytest.raises(InvalidSettingError):
        get_dataset(f"imagefolder:{tmp_path / 'empty'}").info(None, {"channels": 1})


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` grey pixels, with almost no data behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [12_000, 20_000], ids=["over-the-limit", "twice-the-limit"])
def test_imagefolder_refuses_a_decompression_bomb(tmp_path, side):
    _write_pngs(tmp_path / "imgs", per_class=2)
    (tmp_path / "imgs" / "cat" / "bomb.png").write_bytes(_png_declaring(side, side))
    with pytest.raises(DatasetError, match="bomb.png declares more than .* pixels"):
        get_dataset(f"imagefolder:{tmp_path / 'imgs'}").load(tmp_path)


def test_imagefolder_names_a_truncated_image(tmp_path):
    _write_pngs(tmp_path / "imgs", per_class=2)
    good = (tmp_path / "imgs" / "cat" / "0.png").read_bytes()
    (tmp_path / "imgs" / "cat" / "0.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(DatasetError, match="cannot decode image .*0.png"):
        get_dataset(f"imagefolder:{tmp_path / 'imgs'}").load(tmp_path)


def test_download_writes_into_the_dataset_folder(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv_mnist

    calls = []

    def fake_download(url, download_root, filename, md5):  # stands in for the network, same contract
        calls.append((url, download_root))
        _fake_mnist(Path(download_root) / "staging")
        os.replace(Path(download_root) / "staging" / filename, Path(download_root) / filename)

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", fake_download)
    ds = tvs.load_set("mnist", tmp_path, download=True, verify=False)
    assert len(ds.train_x) == 12 and len(calls) == 4
    assert all(Path(root) == tmp_path / "mnist" for _, root in calls)
    assert all((tmp_path / "mnist" / f).exists() for f in tvs.MNIST_FILES)
    assert not (tmp_path / "MNIST").exists()  # torchvision's own <root>/MNIST/raw layout is not used


def test_checksums_equal_torchvision_s_and_files_on_disk_load_without_it(tmp_path):
    """dlbench keeps the md5 sums itself (no 1.8 s torchvision import to load files on disk); they must not drift."""
    import subprocess
    import sys

    from torchvision import datasets as tvd

    from dlbench.data import checksums as c

    assert list(c.MNISTFiles.resources) == [(f, m) for f, m in tvd.MNIST.resources]
    assert list(c.FashionMNISTFiles.resources) == [(f, m) for f, m in tvd.FashionMNIST.resources]
    for ours, theirs in ((c.CIFAR10Files, tvd.CIFAR10), (c.CIFAR100Files, tvd.CIFAR100)):
        assert (ours.filename, ours.tgz_md5, ours.base_folder) == (
            theirs.filename,
            theirs.tgz_md5,
            theirs.base_folder,
        )
        assert [tuple(x) for x in theirs.train_list + theirs.test_list] == list(
            ours.train_list + ours.test_list
        )
    _fake_mnist(tmp_path / "fashion-mnist")
    code = (
        "import sys; from pathlib import Path; from dlbench.data import torchvision_sets as t; "
        f"d = t.load_set('fashion-mnist', Path({str(tmp_path)!r}), download=False, verify=False); "
        "print(len(d.train_x), 'torchvision' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["12", "False"]
