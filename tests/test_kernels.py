"""visualize-kernels: layer choice, the Mixer token-mixing view, trained vs untrained, the figure index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import pytest
import torch
from typer.testing import CliRunner

from dlbench.analysis import kernels as K
from dlbench.cache import Store
from dlbench.cli._app import app
from dlbench.models import create_model

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [
    "--dataset",
    "shapes",
    "--dataset-opt",
    "train_size=64",
    "--dataset-opt",
    "test_size=16",
    "--dataset-opt",
    "image_size=16",
]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBENCH_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("DLBENCH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def invoke(*args):
    res = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def test_mixer_token_mixing_units_on_the_patch_grid():
    with torch.device("meta"):
        net = create_model("mlpmixer", (3, 32, 32), 10)
    net = net.to_empty(device="cpu")
    choice = K.select_layer(net, "mlpmixer", (3, 32, 32), "first")
    assert choice.name == "blocks.0.mlp_tokens.fc1" and choice.kind == "token-mixing"
    assert choice.images.shape == (128, 1, 8, 8)  # embed 256 * 0.5 hidden units, 32/4 x 32/4 patch grid


@pytest.mark.parametrize("name,last", [("cnn", "conv3"), ("resnet18", "layers.3.1.conv2")])
def test_layer_last_and_unknown(name, last):
    net = create_model(name, (3, 32, 32), 10)
    assert K.select_layer(net, name, (3, 32, 32), "last").name == last
    with pytest.raises(Exception, match="conv layers: conv1"):
        K.select_layer(net, name, (3, 32, 32), "nope")


def test_mlp_first_linear_as_input_images():
    net = create_model("mlp", (1, 28, 28), 10)
    choice = K.select_layer(net, "mlp", (1, 28, 28), "first")
    assert choice.kind == "linear" and choice.images.shape == (256, 1, 28, 28)


def test_norms_and_channels():
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64).numpy()
    tiles, lo, hi, *_ = K.display_values(w, "layer", "mean")
    assert tiles.shape == (4, 1, 3, 3) and lo == pytest.approx(tiles.min())
    rgb, *_ = K.display_values(w, "kernel", "rgb")
    assert rgb.shape == (4, 1, 3, 3, 3) and rgb.min() >= 0 and rgb.max() <= 1
    z, lo, hi, *_ = K.display_values(w, "standard", "each")
    assert z.shape == (4, 3, 3, 3) and lo == -hi


def test_untrained_and_trained_cnn_and_resnet18(env):
    cache = env / "cache"
    common = ["--model", "cnn", *SHAPES, "--set", "depth=2", "--set", "width=8"]
    invoke("train", *common, "--epochs", "1", "--batch-size", "32")
    before = json.loads(
        invoke("visualize-kernels", *common, "--untrained", "--format", "json", "--save-array").stdout
    )
    after = json.loads(
        invoke(
            "visualize-kernels",
            *common,
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--format",
            "json",
            "--save-array",
            "--channels",
            "mean",
        ).stdout
    )
    assert after["run"] and before["run"] is None
    assert before["weight_shape"] == after["weight_shape"] == [8, 3, 3, 3]
    w0 = __import__("numpy").load(before["array"])
    w1 = __import__("numpy").load(after["array"])
    assert w0.shape == w1.shape and abs(w0 - w1).max() > 0  # training moved the kernels
    img = mpimg.imread(after["path"])
    assert img.ndim == 3 and img.shape[0] > 100
    maps = json.loads(
        invoke(
            "visualize-kernels", "--run", after["run"], "--feature-maps", "--sample", "2", "--format", "json"
        ).stdout
    )
    assert maps["kind"] == "feature-maps" and Path(maps["path"]).exists()
    res = invoke("visualize-kernels", "--model", "resnet18", "--untrained", *SHAPES, "--layer", "last")
    path = Path(res.stdout.strip().splitlines()[-1])
    assert path.exists() and path.parent == cache / "figures"
    figs = Store(cache).figures()
    assert set(figs["kind"]) == {"kernels", "feature-maps"} and len(figs) == 4
    assert all(c.startswith("dlbench visualize-kernels") for c in figs["command"])


def test_out_outside_cache_is_recorded(env):
    out = env / "elsewhere" / "k.png"
    invoke("visualize-kernels", "--model", "cnn", "--untrained", *SHAPES, "--out", str(out))
    figs = Store(env / "cache").figures()
    assert out.exists() and figs["path"].tolist() == [str(out.resolve())]
    Store(env / "cache").record_figure("kernels", out, "again", "dlbench x", {"a": 1})  # same path: replaced
    assert len(Store(env / "cache").figures()) == 1


def test_bad_inputs_are_one_line_errors(env):
    penv = {
        "DLBENCH_HOME": str(env / "cache"),
        "DLBENCH_DATA_DIR": str(env / "data"),
        "PYTHONPATH": str(ROOT / "src"),
        "PATH": "/usr/bin:/bin",
    }
    for args in (
        ["--model", "cnn", "--untrained", *SHAPES, "--layer", "nope"],
        ["--model", "cnn", *SHAPES],  # not trained: suggests dlbench train
        ["--model", "mlp", "--untrained", *SHAPES, "--norm", "bogus", "--set", "width=4"],
    ):
        p = subprocess.run(
            [sys.executable, "-m", "dlbench", "visualize-kernels", *args],
            capture_output=True,
            text=True,
            env=penv,
            timeout=120,
        )
        assert p.returncode == 2, p.stderr
        assert (
            p.stderr.startswith("error:") and len(p.stderr.splitlines()) == 1 and "Traceback" not in p.stderr
        )
        if args[-1] == "image_size=16":
            assert "dlbench train --model cnn" in p.stderr


def test_input_size_run_loads_as_trained_and_predicts_its_stored_predictions(env):
    """Training fed 24x24 images (bilinear from 16x16): the rebuilt model must be built and fed the same way."""
    from dlbench.cache import Store
    from dlbench.data import get_dataset

    common = ["--model", "cnn", *SHAPES, "--set", "depth=2", "--set", "width=8", "--set", "head_width=16"]
    run = json.loads(
        invoke(
            "train", *common, "--input-size", "24", "--epochs", "1", "--batch-size", "32", "--format", "json"
        ).stdout
    )
    store = Store(env / "cache")
    loaded = K.load_run(store, run["key"], env / "data")
    assert loaded.input_shape == (3, 16, 16) and loaded.model_input_shape == (3, 24, 24)
    data = get_dataset("shapes").load(env / "data", loaded.dataset_options)
    with torch.no_grad():
        pred = loaded.model(loaded.to_input(data.test_x)).argmax(1)
    stored = store.table("predictions", [run["key"]]).sort_values("index")
    assert pred.tolist() == stored["pred"].tolist()
    maps = K.visualize_feature_maps(loaded, env / "maps.png", data.test_x[0])
    assert maps.image_shape == (24, 24) and maps.path.exists()  # conv1 (padding same) sees 24x24 input
    kernels = K.visualize(loaded, env / "k.png")
    assert kernels.layer == "conv1" and kernels.weight_shape == (8, 3, 3, 3)


def test_layers_come_from_the_declared_anatomy():
    from dlbench.models import anatomy, get_model_spec

    net = create_model("mlpmixer", (3, 32, 32), 10, {"num_blocks": 2, "embed_dim": 16})
    parts = anatomy(net, get_model_spec("mlpmixer"))
    assert parts.token_mixing == ("blocks.0.mlp_tokens.fc1", "blocks.1.mlp_tokens.fc1")
    assert (parts.first_layer, parts.head, parts.blocks) == ("stem", "head", ("blocks.0", "blocks.1"))
    second = K.select_layer(net, "mlpmixer", (3, 32, 32), "blocks.1.mlp_tokens.fc1")
    assert second.kind == "token-mixing" and second.images.shape == (8, 1, 8, 8)
    vgg = create_model("vgg16", (3, 32, 32), 10, {"head": "cifar"})
    assert anatomy(vgg, get_model_spec("vgg16")).head == "classifier"
    assert K.select_layer(vgg, "vgg", (3, 32, 32)).name == "features.0"
