"""`count-params` and `solve-depth` as library calls: the tables, and the quoted command of a count table."""

from __future__ import annotations

import shlex

import pytest

from dlbench.analysis.count_tables import count_table, solve_table
from dlbench.errors import InvalidSettingError, UsageError


def test_count_table_grid_and_its_command():
    t = count_table("mlp", None, {"depth": ["1", "2"], "width": ["64"]}, bias=False)
    assert t.columns == ["depth", "width", "params", "trainable", "macs"] and t.title.startswith(
        "mlp on fashion"
    )
    assert [r["params"] for r in t.rows] == [784 * 64 + 64 * 10, 784 * 64 + 64 * 64 + 64 * 10]
    assert shlex.split(t.command) == [
        "dlbench", "count-params", "mlp", "--set", "depth=1,2", "--set", "width=64", "--no-bias"
    ]  # fmt: skip
    assert not t.layers


def test_count_table_layers_and_a_quoted_dataset(tmp_path):
    folder = tmp_path / "x;touch pwned"
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
    from PIL import Image

    for i, cls in enumerate(("a", "b")):
        Image.new("RGB", (8, 8), (i * 200, 0, 0)).save(folder / cls / "0.png")
    t = count_table("mlp", f"imagefolder:{folder}", {}, {"image_size": "8"}, depth=1, data_dir=tmp_path)
    assert t.rows[0]["params"] == sum(r["params"] for r in t.layers) and t.layers[-1]["output"] == "2"
    args = shlex.split(t.command)
    assert (
        args[args.index("--dataset") + 1] == f"imagefolder:{folder}"
        and args[args.index("--depth") + 1] == "1"
    )
    with pytest.raises(UsageError, match="one value per setting"):
        count_table("mlp", None, {"width": ["8", "16"]}, depth=1)


def test_solve_table_against_a_target_model():
    t = solve_table(
        "mlp", "depth", target_model="mlp", target_settings={"width": "512"}, settings={"width": "128"}
    )
    assert t.rows[t.best]["best"] == "<- best" and t.as_dict()["value"] == 35
    assert t.summary.startswith("mlp on fashion-mnist: depth = 35 gives 663,178 parameters")
    with pytest.raises(UsageError, match="exactly one"):
        solve_table("mlp", "depth")
    with pytest.raises(InvalidSettingError, match="integer"):
        solve_table("mlp", "activation", target=1000)


def test_macs_too_small_an_input_says_the_smallest_that_works_and_input_size_counts_there():
    small = count_table("tv:inception_v3", "cifar10")
    assert small.rows[0]["macs"] is None and small.rows[0]["params"] > 0
    assert len(small.notes) == 1
    assert "has no MACs at 3x32x32" in small.notes[0] and "too small" in small.notes[0]
    assert "smallest square input that works is 75x75" in small.notes[0]
    at = count_table("tv:inception_v3", "cifar10", input_size=299)
    assert at.title == "tv:inception_v3 on cifar10 (3x299x299, 10 classes)" and not at.notes
    assert at.rows[0]["macs"] == 5_711_188_576 and at.rows[0]["params"] == small.rows[0]["params"]
    assert shlex.split(at.command)[2:] == ["tv:inception_v3", "--dataset", "cifar10", "--input-size", "299"]
    assert count_table("tv:inception_v3", "cifar10", input_size=75).rows[0]["macs"] > 0
    assert count_table("tv:inception_v3", "cifar10", input_size=74).rows[0]["macs"] is None


def test_smallest_side_is_found_by_trying_sizes_without_a_declared_one():
    from dlbench.analysis.params import build_meta, macs_or_error, smallest_side
    from dlbench.models import get_model_spec

    spec = get_model_spec("cnn")  # no torchvision metadata: doubling then bisecting
    settings = spec.resolve({"depth": 4, "padding": "valid"})
    side = smallest_side(spec, 1, 10, settings, failed=4)
    assert side is not None and side > 4

    def works(n):
        try:
            return macs_or_error(build_meta(spec, (1, n, n), 10, settings), (1, n, n))[0] is not None
        except Exception:
            return False

    assert works(side) and not works(side - 1)


def test_count_params_cli_names_why_macs_are_missing(cli):
    res = cli("count-params", "tv:inception_v3", "--dataset", "cifar10")
    assert res.code == 0, res
    assert res.out.splitlines()[-2].endswith("│ -    │")  # the row, its macs cell `-`
    assert "smallest square input that works is 75x75" in res.err and "--input-size 75" in res.err
    res = cli("count-params", "tv:inception_v3", "--dataset", "cifar10", "--input-size", "299", "-f", "json")
    assert res.code == 0 and res.err == "", res
    import json

    assert json.loads(res.out)[0]["macs"] == 5_711_188_576
