"""The equivariance facts, asserted numerically (float64 random layers), plus the CLI and the figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dlbench.analysis import equivariance as E

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 28, 28, generator=g, dtype=torch.float64)
    return E.Images(x, "random")


def errors(layer, images, transforms="shift,rot90", **kw):
    report = E.run_random(
        layer, images, E.parse_transforms(transforms, kw.pop("shift", (3, 3))), with_figure=False, **kw
    )
    return {r.transform.split("(")[0]: r for r in report.rows}


def test_circular_conv_is_exactly_shift_equivariant(images):
    r = errors("conv", images, padding="circular")["shift"]
    assert r.error < 1e-6 and r.full_error < 1e-6


def test_zero_padded_conv_is_shift_equivariant_only_away_from_borders(images):
    r = errors("conv", images, padding="zero")["shift"]
    assert r.error < 1e-6
    assert r.full_error > 1e-3


def test_generic_conv_is_not_rotation_equivariant_symmetric_one_is(images):
    assert errors("conv", images, padding="zero")["rot90"].full_error > 0.1
    sym = errors("conv", images, padding="zero", symmetric=True)["rot90"]
    assert sym.full_error < 1e-6 and sym.error < 1e-6
    stack = errors("stack", images, padding="circular", symmetric=True)
    assert stack["rot90"].full_error < 1e-6 and stack["shift"].full_error < 1e-6


def test_max_pool_shifts_by_multiples_of_the_stride(images):
    for d in (2, 4):
        r = errors("pool", images, padding="circular", kernel_size=3, stride=2, shift=(d, d))["shift"]
        assert r.full_error < 1e-12
    odd = errors("pool", images, padding="circular", kernel_size=3, stride=2, shift=(3, 3))["shift"]
    assert odd.error is None and "multiple of 2" in odd.note


def test_mlp_measures_invariance(images):
    r = errors("mlp", images, "shift")["shift"]
    assert r.measure == "invariance" and r.error > 0.01


def test_illumination_and_unknown_transform():
    ts = E.parse_transforms("rotate:30,brightness:1.5,contrast:0.5,hflip")
    assert [t.kind for t in ts] == ["rotate", "brightness", "contrast", "hflip"]
    with pytest.raises(Exception, match="unknown transform"):
        E.parse_transforms("shfit")


def test_figure_has_four_panels_on_one_scale(images):
    report = E.run_random("conv", images, E.parse_transforms("shift,rot90"), padding="zero")
    fig = report.figure
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 4
    clims = {ax.images[0].get_clim() for ax in panels[1:]}
    assert len(clims) == 1  # features and both differences share vmin/vmax
    assert "rel. error" in panels[2].get_title() and "rel. error" in panels[3].get_title()


def test_cnn_classifier_invariance_rates(tmp_path):
    from dlbench.analysis.kernels import build_untrained

    opts = {"train_size": 8, "test_size": 32, "image_size": 16}
    loaded = build_untrained("cnn", "shapes", {"depth": 2, "width": 8}, opts, seed=0, data_dir=tmp_path)
    imgs = E.load_images(32, tmp_path, "shapes", opts)
    report = E.run_model(
        loaded, imgs, E.parse_transforms("shift,rot90,hflip,brightness:1.5", (4, 4)), per_layer_=True
    )
    for r in report.rows:
        assert r.measure == "invariance" and 0.0 <= r.agreement <= 1.0
    assert report.per_layer[0]["layer"] == "conv1" and report.per_layer[0]["shift(4,4)"] < 1e-4
    assert len([ax for ax in report.figure.axes if ax.images]) == 4


def _cli(*args, tmp_path):
    env = {
        "DLBENCH_HOME": str(tmp_path / "cache"),
        "DLBENCH_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT / "src"),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-m", "dlbench", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_cli_json_figure_recorded_and_bad_inputs(tmp_path):
    p = _cli(
        "equivariance",
        "--padding",
        "circular",
        "--symmetric",
        "--images",
        "8",
        "--dataset",
        "shapes",
        "--dataset-opt",
        "train_size=4",
        "--dataset-opt",
        "test_size=8",
        "--dataset-opt",
        "image_size=16",
        "-t",
        "shift,rot90",
        "--format",
        "json",
        tmp_path=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["errors"]["shift(3,3)"] < 1e-6 and res["errors"]["rot90"] < 1e-6
    assert Path(res["figure"]).exists()
    from dlbench.cache import Store

    figs = Store(tmp_path / "cache").figures()
    assert list(figs["kind"]) == ["equivariance"] and figs["command"][0].startswith("dlbench equivariance")
    for bad in (["--transform", "shfit"], ["--layer", "nope"], ["--padding", "reflect"]):
        p = _cli("equivariance", *bad, "--images", "4", tmp_path=tmp_path)
        assert p.returncode == 2, (bad, p.stderr)
        assert (
            p.stderr.startswith("error:") and "Traceback" not in p.stderr and len(p.stderr.splitlines()) == 1
        )


def test_rotate_turns_counter_clockwise_like_rot90_and_torchvision():
    import torchvision.transforms.functional as TF

    x = torch.rand(2, 3, 9, 9, dtype=torch.float64)
    turned = E.rotate(x, 90)
    assert torch.allclose(turned, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-12)
    assert torch.allclose(turned, TF.rotate(x, 90), atol=1e-12)
    assert torch.allclose(E.rotate(x, -90), torch.rot90(x, -1, dims=(-2, -1)), atol=1e-12)
    # A general angle agrees with torchvision's bilinear rotation away from the corners it fills with zeros.
    ours = E.rotate(x, 30)
    theirs = TF.rotate(x, 30, interpolation=TF.InterpolationMode.BILINEAR)
    centre = (slice(None), slice(None), slice(3, 6), slice(3, 6))
    assert torch.allclose(ours[centre], theirs[centre], atol=1e-6)
