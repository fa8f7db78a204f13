"""The look-inside commands as library calls (model source, figure names, reproduce commands, the figure index)
and the one ``Output`` that renders every command's result."""

from __future__ import annotations

import csv
import io
import json
import shlex

import pytest

from dlbench.analysis.equivariance_views import Measurement, RandomLayer, measure_equivariance
from dlbench.analysis.kernel_views import (
    KernelView,
    figure_name,
    kernel_command,
    model_tag,
    visualize_kernels,
)
from dlbench.analysis.model_source import ModelSource, default_dataset, load_model, source_args
from dlbench.analysis.recorded_figures import figures
from dlbench.cache import Store
from dlbench.commandline import CommandLine
from dlbench.errors import RunNotFoundError, UsageError

SHAPES_OPTS = {"train_size": "64", "test_size": "16"}
HOSTILE = "x;touch pwned $(id) 'q\""  # a folder name a shell would run if pasted unquoted


def _untrained(**kw) -> ModelSource:
    args = dict(model="cnn", dataset="shapes", settings={"depth": "2", "width": "8"}, untrained=True, seed=3)
    return ModelSource(**{**args, "dataset_options": SHAPES_OPTS, **kw})


def test_default_dataset_maps_imagenet_shaped_models_to_shapes():
    assert default_dataset("mlp") == "fashion-mnist" and default_dataset("tv:resnet18") == "shapes"


def test_untrained_source_loads_and_names_itself(tmp_path):
    loaded = load_model(Store(tmp_path / "cache"), _untrained(), tmp_path / "data")
    assert loaded.key is None and loaded.seed == 3 and loaded.dataset == "shapes"
    args = shlex.split(source_args(CommandLine("x"), loaded, _untrained(), untrained_flag=True).text)
    assert args == [
        "dlbench", "x", "--untrained", "--model", "cnn", "--dataset", "shapes", "--set", "depth=2",
        "--set", "width=8", "--dataset-opt", "test_size=16", "--dataset-opt", "train_size=64", "--seed", "3",
    ]  # fmt: skip
    other = load_model(Store(tmp_path / "cache"), _untrained(settings={"width": "4"}), tmp_path / "data")
    assert model_tag(loaded).startswith("cnn-untrained-seed3-") and model_tag(loaded) != model_tag(other)
    name = figure_name(loaded, KernelView(layer="conv1", norm="kernel", channels="mean"))
    assert name == f"kernels-{model_tag(loaded)}-conv1-kernel-mean.png"
    maps = figure_name(loaded, KernelView(feature_maps=True, sample=4))
    assert maps == f"feature-maps-{model_tag(loaded)}-first-sample4.png"


def test_trained_lookup_without_a_run_says_how_to_train_it(tmp_path):
    source = _untrained(untrained=False, train_options={"epochs": 1})
    with pytest.raises(RunNotFoundError, match="train it first: `dlbench train --model cnn --dataset shapes"):
        load_model(Store(tmp_path / "cache"), source, tmp_path / "data")


def test_kernel_command_quotes_every_path(tmp_path):
    loaded = load_model(Store(tmp_path / "cache"), _untrained(), tmp_path / "data")
    out = tmp_path / HOSTILE / "k.png"
    view = KernelView(feature_maps=True, image=tmp_path / HOSTILE / "cat 1.png", save_array=True)
    args = shlex.split(kernel_command(loaded, _untrained(), view, out, tmp_path / HOSTILE, None))
    assert args[args.index("--out") + 1] == str(out)
    assert args[args.index("--image") + 1] == str(tmp_path / HOSTILE / "cat 1.png")
    assert args[args.index("--cache-dir") + 1] == str(tmp_path / HOSTILE)
    assert "--sample" not in args and "--data-dir" not in args and "--save-array" in args


def test_visualize_kernels_draws_records_and_reproduces(tmp_path):
    out = tmp_path / HOSTILE / "k.png"
    result = visualize_kernels(_untrained(), KernelView(max_units=4), out=out, cache_dir=tmp_path / "cache")
    assert out.exists() and result.figure.path == out and result.figure.meta["shown"] == 4
    figs = figures(Store(tmp_path / "cache"))
    assert figs["path"].tolist() == [str(out)] and figs["command"][0] == result.figure.command
    args = shlex.split(result.figure.command)
    assert args[:3] == ["dlbench", "visualize-kernels", "--untrained"] and args[
        args.index("--out") + 1
    ] == str(out)
    assert args[args.index("--max-units") + 1] == "4"
    assert result.as_dict()["weight_shape"] == [8, 3, 3, 3] and "8 units" in result.summary
    with pytest.raises(UsageError, match="must name a .png"):
        visualize_kernels(_untrained(), KernelView(), out=tmp_path / "k.jpg", cache_dir=tmp_path / "cache")


def test_equivariance_of_a_random_layer_is_recorded_with_its_command(tmp_path):
    target = RandomLayer(
        "conv", padding="circular", symmetric=True, dataset="shapes", dataset_options=SHAPES_OPTS
    )
    how = Measurement(transform="shift,rot90", images=8)
    out = tmp_path / HOSTILE / "e.png"
    result = measure_equivariance(
        target, how, out=out, cache_dir=tmp_path / "cache", data_dir=tmp_path / "data"
    )
    assert result.report.errors()["rot90"] < 1e-6 and out.exists()
    args = shlex.split(result.figure.command)
    assert args[args.index("--out") + 1] == str(out) and "--symmetric" in args
    assert args[args.index("--transform") + 1] == "shift,rot90" and "--stride" not in args
    assert figures(Store(tmp_path / "cache"))["command"].tolist() == [result.figure.command]
    assert result.as_dict()["figure"] == str(out)
    again = measure_equivariance(
        target, how, figure=False, cache_dir=tmp_path / "cache", data_dir=tmp_path / "data"
    )
    assert again.figure is None and again.as_dict()["errors"] == result.as_dict()["errors"]


def test_equivariance_of_a_trained_run_names_it_by_key(cli, tmp_path):
    res = cli("train", "--model", "mlp", "--dataset", "shapes", "--set", "width=8", "--epochs", "1",
              *[f"--dataset-opt={k}={v}" for k, v in SHAPES_OPTS.items()], "--format", "json")  # fmt: skip
    key = json.loads(res.out)["key"]
    source = ModelSource(run=key[:6])
    how = Measurement(transform="hflip", images=4)
    result = measure_equivariance(source, how, out=tmp_path / "e.png", cache_dir=tmp_path / "cache")
    assert result.report.rows[0].measure == "invariance"
    assert result.figure is None  # an MLP has no convolution to draw
    kernels = visualize_kernels(source, KernelView(max_units=2), cache_dir=tmp_path / "cache")
    args = shlex.split(kernels.figure.command)
    assert (
        args[2:4] == ["--run", key] and kernels.figure.meta["run"] == key
    )  # the full key, typed, not parsed


# -------------------------------------------------------------------- Output


def _output(fmt):
    from dlbench.cli._output import Output

    return Output(fmt)


def test_output_several_tables_make_one_document(capsys):
    from dlbench.cli._output import Table

    tables = [Table([{"a": 1, "b": (2, 3)}], name="first"), Table([{"c": "x"}, {"c": "y"}], name="second")]
    _output("json").tables(*tables)
    assert json.loads(capsys.readouterr().out) == {
        "first": [{"a": 1, "b": [2, 3]}],
        "second": [{"c": "x"}, {"c": "y"}],
    }
    _output("csv").tables(*tables)
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["table"], r["a"], r["b"], r["c"]) for r in rows] == [
        ("first", "1", "2/3", ""),
        ("second", "", "", "x"),
        ("second", "", "", "y"),
    ]
    _output("markdown").tables(*tables)
    text = capsys.readouterr().out
    assert text.count("### ") == 2 and "| a | b |" in text and "\n\n### second" in text


def test_output_notes_go_to_stderr_for_machine_formats(capsys):
    from dlbench.cli._output import Table

    for fmt in ("json", "csv", "markdown", "table"):
        out = _output(fmt)
        out.note("reproduce: dlbench x '[bold]y'")
        out.warning("careful")
        out.detail([{"epoch": 1}], title="Epochs")
        out.result({"k": 1}, Table([{"k": 1}]), lines=["/a/[b].png"])
        cap = capsys.readouterr()
        assert "note: careful" in cap.err and "note: careful" not in cap.out
        if fmt == "table":
            assert "reproduce: dlbench x '[bold]y'" in cap.out and "epoch" in cap.out
        else:
            assert "reproduce: dlbench x '[bold]y'" in cap.err and "epoch" not in cap.out
        if fmt == "json":
            assert json.loads(cap.out) == {"k": 1}
        else:
            assert cap.out.rstrip().endswith("/a/[b].png")  # verbatim: no rich markup eaten
