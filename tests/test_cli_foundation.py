"""The foundation commands as a user runs them: fast help, counts, solve-depth, listings, one-line errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

SEED_TABLE = [2_376_458, 2_188_298, 2_175_818, 2_310_938, 2_897_678]


def test_help_and_version_do_not_import_torch():
    code = (
        "import sys\n"
        "from dlbench.cli import main\n"
        "for args in (['--help'], ['--version'], ['train', '--help'], ['sweep', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_version(cli):
    res = cli("--version")
    assert res.code == 0 and res.out.startswith("dlbench ")


def test_count_params_reproduces_seed_table_without_cifar_files(cli, tmp_path):
    res = cli(
        "count-params",
        "mlpmixer",
        "--dataset",
        "cifar10",
        "--set",
        "patch_size=2,4,8,16,32",
        "--format",
        "csv",
        "--data-dir",
        tmp_path / "empty",
    )
    assert res.code == 0, res
    rows = list(csv.DictReader(io.StringIO(res.out)))
    assert [int(r["patch_size"]) for r in rows] == [2, 4, 8, 16, 32]
    assert [int(r["params"]) for r in rows] == SEED_TABLE
    assert all(int(r["macs"]) > 0 for r in rows)


def test_count_params_json_and_grid(cli):
    res = cli("count-params", "mlp", "--set", "depth=1,2", "--set", "width=64,128", "--format", "json")
    rows = json.loads(res.out)
    assert len(rows) == 4 and {"depth", "width", "params", "trainable", "macs"} <= set(rows[0])
    assert rows[0]["params"] == 784 * 64 + 64 + 64 * 10 + 10


def test_count_params_layer_breakdown(cli):
    res = cli("count-params", "resnet18", "--dataset", "cifar10", "--depth", "1", "--format", "json")
    assert res.code == 0, res
    doc = json.loads(res.out)  # one JSON document: the count and the layers as fields
    assert set(doc) == {"counts", "layers"}
    totals, layers = doc["counts"], doc["layers"]
    assert totals[0]["params"] == 11_173_962
    by_name = {r["layer"]: r for r in layers}
    assert by_name["fc"]["params"] == 512 * 10 + 10 and by_name["fc"]["output"] == "10"
    assert sum(r["params"] for r in layers) == 11_173_962  # the top-level layers add up to the whole


def test_count_params_breakdown_is_one_document_in_every_machine_format(cli):
    args = ["count-params", "mlp", "--depth", "1", "--format"]
    rows = list(
        csv.DictReader(io.StringIO(cli(*args, "csv").out))
    )  # one CSV: a `table` column tells them apart
    assert rows[0]["table"] == "counts" and int(rows[0]["params"]) == 269_322
    layers = {r["layer"]: int(r["params"]) for r in rows[1:]}
    assert {r["table"] for r in rows[1:]} == {"layers"} and layers["head"] == 256 * 10 + 10
    markdown = cli(*args, "markdown").out
    assert markdown.count("### ") == 2 and "| layer | type | output | params |" in markdown


def test_count_tv_model_defaults_to_imagenet_shape(cli):
    res = cli("count-params", "tv:vgg16", "--format", "json")
    assert json.loads(res.out)[0]["params"] == 138_357_544


def test_solve_depth_seed_case(cli):
    res = cli(
        "solve-depth",
        "mlp",
        "--set",
        "width=64",
        "--target-model",
        "mlp",
        "--target-set",
        "width=256",
        "--dataset",
        "fashion-mnist",
        "--format",
        "json",
    )
    assert res.code == 0, res
    out = json.loads(res.out)
    assert out["target"] == 269_322 and out["value"] == 54
    assert out["params"] == 271_370 and abs(out["rel_diff"] - (271_370 - 269_322) / 269_322) < 1e-12
    for n in out["neighbours"]:  # the answer beats both sides
        assert abs(n["params"] - out["target"]) >= abs(out["params"] - out["target"])


def test_solve_depth_weights_only(cli):
    res = cli(
        "solve-depth",
        "mlp",
        "--set",
        "width=64",
        "--target",
        "268800",
        "--no-bias",
        "--dataset",
        "fashion-mnist",
        "--format",
        "json",
    )
    out = json.loads(res.out)
    assert out["value"] == 54 and out["params"] == 784 * 64 + 53 * 64 * 64 + 64 * 10


@pytest.mark.parametrize("setting", ["kernel_size", "head_width"])
def test_solve_cnn_settings_beat_neighbours(cli, setting):
    res = cli(
        "solve-depth",
        "cnn",
        "--solve",
        setting,
        "--target",
        "300000",
        "--set",
        "channels=16/32/45",
        "--set",
        "pool=none",
        "--set",
        "head=avg",
        "--dataset",
        "fashion-mnist",
        "--format",
        "json",
    )
    assert res.code == 0, res
    out = json.loads(res.out)
    assert all(abs(n["params"] - 300000) >= abs(out["params"] - 300000) for n in out["neighbours"])


def test_solve_table_output(cli):
    res = cli("solve-depth", "mlp", "--set", "width=64", "--target", "269322", "--dataset", "fashion-mnist")
    assert res.code == 0 and "depth = 54" in res.out and "<- best" in res.out


def test_models_listing(cli):
    res = cli("models", "--format", "json")
    rows = {r["name"]: r for r in json.loads(res.out)}
    assert {"mlp", "cnn", "resnet18", "mlpmixer", "vgg16", "vgg16_bn"} <= set(rows)
    assert rows["resnet18"]["params"] == 11_173_962
    assert rows["mlp"]["params"] == 269_322
    tv = json.loads(cli("models", "tv:resnet*", "--format", "json").out)
    assert any(r["name"] == "tv:resnet50" and r["params"] == 25_557_032 for r in tv)


def test_datasets_listing(cli, tmp_path):
    res = cli("datasets", "--format", "json", "--data-dir", tmp_path / "d")
    rows = {r["name"]: r for r in json.loads(res.out)}
    assert {"shapes", "mnist", "fashion-mnist", "cifar10", "cifar100"} <= set(rows)
    assert rows["cifar10"]["shape"] == "3x32x32" and rows["cifar10"]["present"] is False
    assert rows["fashion-mnist"]["folder"].endswith("fashion-mnist")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["count-params", "resnet19"], "did you mean 'resnet18'"),
        (["count-params", "mlpmixer", "--dataset", "cifar10", "--set", "patch_size=5"], "does not divide"),
        (["count-params", "mlp", "--set", "width"], "malformed setting 'width'"),
        (["count-params", "mlp", "--set", "width=64,,128"], "empty value"),
        (["count-params", "mlp", "--set", "colour=red"], "unknown setting 'colour'"),
        (["count-params", "mlp", "--dataset", "fashion_mnist"], "did you mean 'fashion-mnist'"),
        (["solve-depth", "mlp"], "exactly one of --target"),
        (["solve-depth", "mlp", "--target", "100", "--solve", "activation"], "integer setting"),
        (["count-params", "mlp", "--bogus"], "No such option"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli, args, needle):
    res = cli(*args)
    assert res.code == 2, res
    assert needle in res.err
    assert res.err.count("\n") == 1 and "Traceback" not in res.err
