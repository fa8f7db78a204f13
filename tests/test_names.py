"""Different things get different names: sweeps, their files, and the figures of the look-inside commands.

A sweep's default name is made from its axes, model and dataset; a second sweep of the same axes with other
fixed values takes ``<name>-<hash>`` (never the first one's place), a name given with ``--name`` that holds
another study is refused in one line (``--replace`` replaces it), and the file of a study is a one-to-one
encoding of its exact name, at most 120 bytes.
"""

from __future__ import annotations

import json

import pytest

from dlbench.cache import Store
from dlbench.paths import safe_name

TINY = ["--dataset", "shapes", "--dataset-opt", "train_size=60", "--dataset-opt", "test_size=20"]
LR = ["sweep", "lr", "0.1,0.01", "--model", "mlp", "--epochs", "1", *TINY, "--no-figures"]


@pytest.mark.parametrize(
    "names",
    [
        ("a/b", "a?b", "a_b", "a:b"),
        ("LR", "lr"),  # a case-insensitive file system would merge these
        ("x" * 200, "x" * 201),
        ("中" * 200, "中" * 199 + "文"),
        (".hidden", "hidden", "..", ""),
    ],
)
def test_file_names_are_one_to_one_and_fit_in_a_file_name(names):
    files = [safe_name(n) for n in names]
    assert len(set(files)) == len(names)
    for f in files:
        assert 0 < len(f.encode()) <= 120 and "/" not in f and not f.startswith(".") and f not in (".", "..")
    assert safe_name("lr-mlp-shapes") == "lr-mlp-shapes"  # plain names stay readable


def test_two_studies_whose_names_differ_only_in_unsafe_characters(tmp_path):
    store = Store(tmp_path / "cache")
    for name in ("a/b", "a?b"):
        store.save_sweep({"name": name, "model": "mlp", "dataset": "shapes", "axes": [], "trials": []})
    assert sorted(d["name"] for d in store.sweeps()) == ["a/b", "a?b"]
    assert store.get_sweep("a?b")["name"] == "a?b" and store.get_sweep("a/b")["name"] == "a/b"


def test_a_name_saved_before_the_encoding_is_still_found(tmp_path):
    store = Store(tmp_path / "cache")
    (store.root / "sweeps").mkdir(parents=True)
    (store.root / "sweeps" / "a_b.json").write_text(json.dumps({"name": "a/b", "axes": []}))
    assert store.get_sweep("a/b")["name"] == "a/b"
    store.save_sweep({"name": "a/b", "axes": [], "new": True})  # saved again: one study of that name
    assert store.sweeps() == [{"name": "a/b", "axes": [], "new": True}] and store.get_sweep("a/b")["new"]


def _sweep_names(cache) -> dict[str, int]:
    return {d["name"]: len(d["trials"]) for d in Store(cache).sweeps()}


def test_same_axes_other_fixed_values_are_two_studies_in_the_report(cli, tmp_path):
    cache = tmp_path / "cache"
    first = cli(*LR, "--set", "width=8")
    assert first.code == 0, first
    second = cli(*LR, "--set", "width=16")
    assert second.code == 0, second
    assert "'lr-mlp-shapes' is another study" in second.err and "width=8" in second.err, second.err
    names = _sweep_names(cache)
    [other] = [n for n in names if n != "lr-mlp-shapes"]
    assert other.startswith("lr-mlp-shapes-") and names == {"lr-mlp-shapes": 2, other: 2}
    # The same sweep again finds its own name and trains nothing.
    again = cli(*LR, "--set", "width=16")
    assert again.code == 0 and "2 cached, 0 trained" in again.err and f"'{other}'" in again.err, again
    assert _sweep_names(cache) == {"lr-mlp-shapes": 2, other: 2}
    # A value written another way, or a default given explicitly, is the same study: the same name.
    same = cli(*LR, "--set", "width=8.0", "--batch-size", "128")
    assert same.code == 0 and "another study" not in same.err and "2 cached" in same.err, same
    assert _sweep_names(cache) == {"lr-mlp-shapes": 2, other: 2}

    out = tmp_path / "r.md"
    res = cli("report", "--out", out)
    assert res.code == 0, res
    text = out.read_text()
    assert text.count("## Sweep ") == 2
    assert "## Sweep lr-mlp-shapes: mlp" in text and f"## Sweep {other}: mlp" in text
    for section in text.split("## Sweep ")[1:]:  # each with both of its trials
        assert "| 0.1 |" in section and "| 0.01 |" in section
    runs = Store(cache).runs()
    assert len(runs) == 4


def test_a_given_name_that_holds_another_study_is_one_line(cli, tmp_path):
    assert cli(*LR, "--set", "width=8", "--name", "mine").code == 0
    res = cli(*LR, "--set", "width=16", "--name", "mine")
    lines = res.err.strip().splitlines()
    assert res.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), res
    assert "holds another study" in lines[0] and "--replace" in lines[0] and "width=8" in lines[0]
    assert _sweep_names(tmp_path / "cache") == {"mine": 2}
    res = cli(*LR, "--set", "width=16", "--name", "mine", "--replace")
    assert res.code == 0 and "replaces the study" in res.err, res
    [d] = Store(tmp_path / "cache").sweeps()
    assert d["fixed"]["settings"] == {"width": "16"}
    # The same study over other values is allowed, and said.
    res = cli(*LR[:2], "0.2", *LR[3:], "--set", "width=16", "--name", "mine")
    assert res.code == 0 and "was over lr=0.1,0.01" in res.err, res


def test_a_long_cjk_name_works(cli, tmp_path):
    name = "学习率" * 67  # 201 characters, 603 bytes in UTF-8
    res = cli(*LR, "--set", "width=8", "--name", name, "--figures")
    assert res.code == 0, res
    [d] = Store(tmp_path / "cache").sweeps()
    assert d["name"] == name
    assert all(len(p.name.encode()) <= 255 for p in (tmp_path / "cache").rglob("*"))
    assert Store(tmp_path / "cache").get_sweep(name)["name"] == name
    res = cli("report", "--sweep", name, "--out", tmp_path / "r.md")
    assert res.code == 0, res


def test_equivariance_on_two_datasets_gives_two_figures(cli, tmp_path, shared_data):
    """With no --dataset the images come from Fashion-MNIST when the data folder holds it, else shapes."""
    args = ["equivariance", "--images", "8", "-t", "shift", "--format", "json"]
    with_fm = cli(*args, "--data-dir", shared_data)
    without = cli(*args, "--data-dir", tmp_path / "empty-data")
    assert with_fm.code == 0 and without.code == 0, (with_fm, without)
    a, b = json.loads(with_fm.out), json.loads(without.out)
    assert (a["dataset"], b["dataset"]) == ("fashion-mnist", "shapes")
    assert a["figure"] != b["figure"] and "fashion-mnist" in a["figure"] and "shapes" in b["figure"]
    figures = Store(tmp_path / "cache").figures("equivariance")
    assert len(figures) == 2


def test_feature_maps_of_two_images_with_one_file_name_are_two_figures(tmp_path):
    from dlbench.analysis.kernel_views import _image_part

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    assert _image_part(tmp_path / "a" / "x.png") != _image_part(tmp_path / "b" / "x.png")


def test_both_executors_refuse_a_name_that_holds_another_study(tmp_path):
    from dlbench.errors import UsageError
    from dlbench.sweep.grid import plan_sweep
    from dlbench.sweep.inline import run_sweep
    from dlbench.sweep.local import run_local

    def plan(width):
        return plan_sweep(
            "mlp",
            "shapes",
            [("lr", ["0.1"])],
            settings={"width": width},
            dataset_options={"train_size": "60", "test_size": "20"},
            options={"epochs": "1"},
            name="mine",
        )

    store = Store(tmp_path / "cache")
    run_sweep(plan("8"), store, data_dir=tmp_path / "data")
    before = (store.root / "sweeps" / "mine.json").read_bytes()
    for run in (run_sweep, run_local):
        with pytest.raises(UsageError, match="holds another study"):
            run(plan("16"), store, data_dir=tmp_path / "data")
    assert (store.root / "sweeps" / "mine.json").read_bytes() == before


@pytest.mark.parametrize(
    ("optimizer", "momentum", "tensors"), [("sgd", "0", 2), ("sgd", "0.9", 3), ("adam", "0", 4)]
)
def test_memory_need_is_parameters_gradients_and_optimizer_states(monkeypatch, optimizer, momentum, tensors):
    from dlbench.analysis.params import build_meta
    from dlbench.data import get_dataset
    from dlbench.errors import UsageError
    from dlbench.models import get_model_spec
    from dlbench.resolve import resolve_config
    from dlbench.sweep import checks

    config = resolve_config(
        "mlp", "shapes", {"width": 8}, {}, {"optimizer": optimizer, "momentum": momentum, "device": "cpu"}
    )
    info = get_dataset("shapes").info()
    meta = build_meta(get_model_spec("mlp"), info.input_shape, info.num_classes, config.model_settings)
    count = sum(p.numel() for p in meta.parameters())
    need = count * 4 * tensors
    monkeypatch.setattr(checks, "_host_available", lambda: need)
    checks.check_trial(config)  # exactly enough
    monkeypatch.setattr(checks, "_host_available", lambda: need - 1)
    with pytest.raises(UsageError, match=f"{count:,} parameters"):
        checks.check_trial(config)
