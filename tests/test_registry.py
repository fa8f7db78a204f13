"""Every model in the registry, in the spirit of timm's test_models.py: each counts on the meta device, and each
one small enough for the CPU trains one step through the engine on a tiny batch."""

from __future__ import annotations

import math

import pytest
import torch

from dlbench.analysis.params import build_meta, count_macs, count_parameters, input_for
from dlbench.data import ArrayDataset, DatasetInfo
from dlbench.engine import train
from dlbench.models import get_model_spec, list_models
from dlbench.models.transfer import default_weights, tv_name
from dlbench.resolve import resolve_config

ALL = [s.name for s in list_models()]
HEAVY_PARAMS = 30_000_000  # larger models train one step only with `pytest -m heavy` (minutes, GBs on a CPU)


def test_the_registry_is_whole():
    assert {"mlp", "cnn", "resnet18", "mlpmixer", "vgg16", "vgg16_bn"} <= set(ALL)
    assert sum(n.startswith("tv:") for n in ALL) >= 80
    assert {"tv:regnet_y_400mf", "tv:googlenet", "tv:inception_v3", "tv:vit_b_16"} <= set(ALL)


@pytest.mark.parametrize("name", ALL)
def test_every_model_counts_at_its_native_input(name):
    spec = get_model_spec(name)
    shape, classes, _ = input_for(spec, None)
    net = build_meta(spec, shape, classes)
    total, trainable = count_parameters(net)
    assert total > 0 and trainable == total
    assert count_macs(net, shape) > 0


# torchvision's published parameter counts for the models whose builders needed care
PUBLISHED = {
    "tv:googlenet": 6_624_904,
    "tv:inception_v3": 27_161_264,
    "tv:regnet_y_400mf": 4_344_144,
    "tv:regnet_x_400mf": 5_495_976,
    "tv:regnet_y_16gf": 83_590_140,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_counts_equal_torchvision_published_figures(name):
    spec = get_model_spec(name)
    shape, classes, _ = input_for(spec, None)
    assert count_parameters(build_meta(spec, shape, classes))[0] == PUBLISHED[name]


def _small_side(name: str) -> int:
    """The smallest input side a model takes (its weights' min_size), at least 32; ViTs need their own size."""
    tv = tv_name(get_model_spec(name))
    weights = default_weights(tv) if tv else None
    if weights is None:
        return 32
    if tv.startswith("vit_"):
        return 224  # torchvision builds ViTs for one image size
    if tv == "inception_v3":
        return 299  # its auxiliary head, run in training, needs the native size
    return max(32, *weights.meta.get("min_size", (32, 32)))


def _params(name: str) -> int:
    spec = get_model_spec(name)
    shape, classes, _ = input_for(spec, None)
    return count_parameters(build_meta(spec, shape, 10))[0]


def _one_step_cases():
    for name in ALL:
        marks = [pytest.mark.heavy] if _params(name) > HEAVY_PARAMS else []
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_one_step_cases()))
def test_every_model_trains_one_step_on_a_tiny_batch(name):
    side = _small_side(name)
    channels = 1 if name in ("mlp", "cnn") else 3
    info = DatasetInfo(
        "shapes", (channels, side, side), 4, 4, 4, tuple("abcd"), (0.5,) * channels, (0.25,) * channels
    )
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (8, channels, side, side), dtype=torch.uint8, generator=gen)
    y = torch.arange(8) % 4
    data = ArrayDataset(info, x[:4], y[:4], x[4:], y[4:])
    config = resolve_config(
        name,
        "shapes",
        {},
        {},
        {"epochs": 1, "batch_size": 4, "lr": 1e-3, "val_split": 0, "device": "cpu", "precision": "fp32"},
    )
    result = train(config, data)
    assert result.status == "ok", result.message
    assert len(result.epochs) == 1 and math.isfinite(result.epochs[0]["train_loss"])
    assert len(result.predictions["pred"]) == 4
