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
