"""Transfer learning: what each finetune mode trains, starting from a cached run, offline weights, the sweep axis.

Every test starts from a locally saved state dict or a cached run: nothing is downloaded. Images stay tiny
(``--input-size 32`` overrides the 224 pixels the torchvision weights expect) so the suite runs in seconds.
"""

from __future__ import annotations

import json
from urllib.error import URLError

import pytest
import torch

from dlbench.cache import Store
from dlbench.data import ArrayDataset
from dlbench.data._registry import DatasetInfo
from dlbench.engine import train
from dlbench.engine.device_data import DeviceData
from dlbench.models import create_model, get_model_spec
from dlbench.models.anatomy import anatomy
from dlbench.resolve import resolve_config

TINY = {"train_size": 96, "test_size": 32}
TINY_FLAGS = ["--dataset-opt", "train_size=96", "--dataset-opt", "test_size=32"]
N = 10  # classes of `shapes`
FAST = {"epochs": 1, "batch_size": 32, "optimizer": "sgd", "lr": 0.05, "input_size": 32}


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory):
    """A tv:resnet18 state dict with random weights and an ImageNet-sized (1000-class) head, saved to disk."""
    torch.manual_seed(123)
    model = create_model("tv:resnet18", (3, 224, 224), 1000)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pt"
    torch.save(model.state_dict(), path)
    return path, {k: v.clone() for k, v in model.state_dict().items()}


def _changed(before: dict, after: dict) -> set[str]:
    """Module names (key minus the last part) with any tensor that differs after training."""
    out = set()
    for k, v in after.items():
        if k not in before or before[k].shape != v.shape or not torch.equal(before[k], v):
            out.add(k.rsplit(".", 1)[0])
    return out


@pytest.mark.parametrize("finetune", ["linear-probe", "last-2", "full"])
def test_finetune_trains_exactly_its_part(resnet_weights, finetune, tmp_path):
    path, saved = resnet_weights
    config = resolve_config(
        "tv:resnet18", "shapes", {}, TINY, {**FAST, "weights": str(path), "finetune": finetune}
    )
    assert config.options.init == "pretrained"  # --weights implies it
    result = train(config, data_dir=tmp_path)
    assert result.status == "ok"
    after = result.state_dict
    assert after["fc.weight"].shape[0] == N  # the 1000-class head was replaced for the 10 shapes
    changed = _changed(saved, after)
    head = {"fc"}
    last2 = {k.rsplit(".", 1)[0] for k in after if k.startswith(("layer4.0.", "layer4.1."))}
    if finetune == "linear-probe":
        assert changed == head  # BN statistics of the frozen body included
        assert result.summary["trainable"] == 512 * N + N
    elif finetune == "last-2":
        assert changed == head | last2
    else:
        assert changed == {k.rsplit(".", 1)[0] for k in after}
        assert result.summary["trainable"] == result.summary["params"]
    assert result.summary["trainable"] < result.summary["params"] or finetune == "full"


def test_resnet_blocks_are_its_basic_blocks():
    model = create_model("tv:resnet18", (3, 32, 32), 6)
    parts = anatomy(model, get_model_spec("tv:resnet18"))
    assert parts.blocks == tuple(f"layer{i}.{j}" for i in range(1, 5) for j in range(2))
    assert (parts.head, parts.first_layer) == ("fc", "conv1")
    cnn = create_model("cnn", (3, 32, 32), 6, {"channels": (8, 16), "head_width": 32})
    names = list(anatomy(cnn, get_model_spec("cnn")).blocks)
    assert names == [
        "conv1",
        "bn1",
        "conv2",
        "bn2",
        "fc1",
    ]  # top-level children with parameters, head excluded


def test_fine_tuning_from_a_cached_run_starts_at_its_accuracy(cli, tmp_path):
    small = ["--set", "channels=8/16", "--set", "head_width=32"]
    args = [
        "--model",
        "cnn",
        "--dataset",
        "shapes",
        *small,
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--optimizer",
        "adam",
        "--lr",
        "0.003",
    ]
    tiny = ["--dataset-opt", "train_size=600", "--dataset-opt", "test_size=100"]
    first = cli("train", *args, *tiny, "--format", "json")
    assert first.code == 0, first
    source = json.loads(first.out)
    again = cli(
        "train", *args, *tiny, "--from-run", source["key"][:8], "--finetune", "last-1", "--format", "json"
    )
    assert again.code == 0, again
    run = json.loads(again.out)
    store = Store(tmp_path / "cache")
    row = store.get(run["key"])
    assert row["initial_val_acc"] == pytest.approx(source["final_val_acc"], abs=1e-12)
    assert 0 < row["trainable"] < row["params"]
    config = store.config(run["key"])
    assert config.options.from_run == source["key"] and config.options.finetune == "last-1"
    assert "--from-run" in row["command"] and "weights" not in row["command"]
    wrong = cli("train", "--model", "mlp", "--dataset", "shapes", *tiny, "--from-run", source["key"])
    assert wrong.code == 2 and "same model" in wrong.err


def test_offline_pretrained_names_the_file_and_folder(cli, monkeypatch, tmp_path):
    import torchvision.models._api as tv_api

    def offline(url, *a, **k):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", offline)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    res = cli(
        "train",
        "--model",
        "tv:resnet18",
        "--dataset",
        "shapes",
        *TINY_FLAGS,
        "--init",
        "pretrained",
        "--epochs",
        "1",
    )
    assert res.code == 1
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot download the pretrained weights of tv:resnet18"
    )
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in lines[0]


def test_transfer_sweep_axis_with_a_grid(cli, resnet_weights, tmp_path):
    path, _ = resnet_weights
    res = cli(
        "sweep",
        "transfer",
        "scratch,linear-probe,last-2",
        "--model",
        "tv:resnet18",
        "--dataset",
        "shapes",
        *TINY_FLAGS,
        "--grid",
        "lr=0.01",
        "--weights",
        str(path),
        "--input-size",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--no-figures",
        "--name",
        "tl",
        "--format",
        "json",
    )
    assert res.code == 0, res
    store = Store(tmp_path / "cache")
    definition = store.get_sweep("tl")
    assert [t["values"]["transfer"] for t in definition["trials"]] == ["scratch", "linear-probe", "last-2"]
    rows = [store.get(t["key"]) for t in definition["trials"]]
    trainable = [r["trainable"] for r in rows]
    assert trainable[0] == rows[0]["params"] > trainable[2] > trainable[1] == 512 * N + N
    configs = [store.config(t["key"]) for t in definition["trials"]]
    assert configs[0].options.weights == "" and configs[1].options.weights == str(path.resolve())
    assert [(c.options.init, c.options.finetune) for c in configs] == [
        ("scratch", "full"),
        ("pretrained", "linear-probe"),
        ("pretrained", "last-2"),
    ]


def test_transfer_axis_defaults_to_scratch_linear_probe_fine_tune(resnet_weights):
    from dlbench.sweep.grid import plan_sweep

    path, _ = resnet_weights
    plan = plan_sweep(
        "tv:resnet18",
        "shapes",
        [("transfer", None), ("lr", ["1e-3", "1e-2"])],
        settings={},
        dataset_options=TINY,
        options={"weights": str(path)},
    )
    assert plan.axes[0].values == ["scratch", "linear-probe", "fine-tune"] and len(plan.trials) == 6
    assert len({t.config.key for t in plan.trials}) == 6


def test_imagefolder_dataset_with_transfer(cli, resnet_weights, tmp_path):
    from PIL import Image

    path, _ = resnet_weights
    root = tmp_path / "pets"
    g = torch.Generator().manual_seed(0)
    for c, cls in enumerate(["cat", "dog"]):
        (root / cls).mkdir(parents=True)
        for i in range(10):
            img = (torch.rand(20, 20, 3, generator=g) * 120 + 120 * c).to(torch.uint8).numpy()
            Image.fromarray(img).save(root / cls / f"{i}.png")
    res = cli(
        "train",
        "--model",
        "tv:resnet18",
        "--dataset",
        f"imagefolder:{root}",
        "--dataset-opt",
        "image_size=16",
        "--weights",
        str(path),
        "--transfer",
        "linear-probe",
        "--input-size",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--val-split",
        "0.25",
        "--format",
        "json",
    )
    assert res.code == 0, res
    rec = json.loads(res.out)
    assert rec["status"] == "ok" and rec["trainable"] == 512 * 2 + 2


def test_device_data_resizes_and_normalises_like_the_weights():
    x = torch.full((4, 1, 8, 8), 255, dtype=torch.uint8)
    y = torch.zeros(4, dtype=torch.long)
    info = DatasetInfo("grey", (1, 8, 8), 2, 4, 4, ("a", "b"), (0.5,), (0.25,))
    dd = DeviceData(
        ArrayDataset(info, x, y, x, y),
        torch.device("cpu"),
        val_split=0.0,
        train_subset=0,
        normalize=True,
        augment=False,
        channels_last=False,
        channels=3,
        size=16,
        mean=(0.5, 0.25, 0.0),
        std=(0.5, 0.25, 1.0),
    )
    xb, _ = next(dd.train_batches(4, 0, 0))
    expected = torch.tensor([1.0, 3.0, 1.0]).view(1, 3, 1, 1)  # (1 - mean) / std per channel
    assert xb.shape == (4, 3, 16, 16) and torch.allclose(xb, expected.expand_as(xb), atol=1e-5)
    xe, _ = next(dd.eval_batches(dd.test))
    assert xe.shape == (4, 3, 16, 16) and torch.allclose(xe, expected.expand_as(xe), atol=1e-5)


def test_bad_transfer_requests_say_what_to_do(resnet_weights):
    from dlbench.errors import UsageError
    from dlbench.sweep.grid import plan_sweep

    path, _ = resnet_weights
    with pytest.raises(UsageError, match="has 8 blocks"):
        plan_sweep(
            "tv:resnet18",
            "shapes",
            [("lr", ["0.1"])],
            settings={},
            dataset_options=TINY,
            options={"weights": str(path), "finetune": "last-9"},
        )
    with pytest.raises(UsageError, match="no published pretrained weights"):
        resolve_config("cnn", "shapes", {}, TINY, {"init": "pretrained"})
    with pytest.raises(UsageError, match="means --finetune full"):
        resolve_config("tv:resnet18", "shapes", {}, TINY, {"transfer": "fine-tune", "finetune": "last-1"})
    with pytest.raises(UsageError, match="finetune must be"):
        resolve_config("tv:resnet18", "shapes", {}, TINY, {"finetune": "last-0"})


def test_default_transfer_options_keep_old_run_keys():
    config = resolve_config("cnn", "shapes", {}, TINY, {})
    options = json.loads(config.canonical_json())["options"]
    assert not {"init", "finetune", "weights", "from_run", "input_size", "transfer"} & set(options)


def test_last_k_runs_of_redefined_families_get_new_keys_and_round_trip(tmp_path):
    """resnet18/mlpmixer/vgg16 last-K now train their declared blocks: never the 0.1.0 result under the old key."""
    import hashlib
    import json

    from dlbench.config import TrainConfig

    state = tmp_path / "w.pt"
    state.write_bytes(b"resolve only checks that the file exists")
    config = resolve_config("resnet18", "shapes", {}, TINY, {"finetune": "last-2", "weights": str(state)})
    d = config.to_dict()
    assert d["blocks"] == "anatomy"
    old = dict(d)
    del old["blocks"]
    old_key = hashlib.sha256(json.dumps(old, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert config.key != old_key
    again = TrainConfig.from_json(config.canonical_json())
    assert again.key == config.key
    plain = resolve_config("resnet18", "shapes", {}, TINY, {})
    assert "blocks" not in plain.to_dict()  # every other run keeps its key
