"""Model registry: counts equal to the seeds' and torchvision's documented figures, builds, clear errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlbench.analysis.params import build_meta, count, count_parameters, layer_summary
from dlbench.errors import InvalidSettingError, UnknownNameError
from dlbench.models import create_model, get_model_spec, list_models
from dlbench.settings import coerce, parse_assignments

CIFAR = {"input_shape": (3, 32, 32), "num_classes": 10}
FMNIST = {"input_shape": (1, 28, 28), "num_classes": 10}


@pytest.mark.parametrize(
    "patch,params",
    [(2, 2_376_458), (4, 2_188_298), (8, 2_175_818), (16, 2_310_938), (32, 2_897_678)],
)
def test_mlpmixer_matches_seed_patch_size_table(patch, params):
    assert count("mlpmixer", {"patch_size": patch}, **CIFAR).params == params


def test_cifar_resnet18_count():
    assert count("resnet18", **CIFAR).params == 11_173_962


def test_seed_mlp_784_256_256_10():
    assert count("mlp", {"depth": 2, "width": 256}, **FMNIST).params == 269_322
    assert count("mlp", {"depth": 2, "width": 256}, **FMNIST, bias=False).params == 268_800


@pytest.mark.parametrize(
    "name,params",
    [
        ("tv:resnet18", 11_689_512),
        ("tv:resnet50", 25_557_032),
        ("tv:vgg16", 138_357_544),
        ("tv:vgg16_bn", 138_365_992),
        ("tv:mobilenet_v2", 3_504_872),
    ],
)
def test_torchvision_documented_counts(name, params):
    assert count(name, input_shape=(3, 224, 224), num_classes=1000).params == params


def test_vgg16_registry_is_torchvision_build():
    assert count("vgg16", input_shape=(3, 224, 224), num_classes=1000).params == 138_357_544
    small = count("vgg16", {"head": "cifar"}, **CIFAR).params
    assert small == 14_714_688 + 512 * 10 + 10  # conv features + one linear layer


def test_meta_counting_allocates_nothing():
    model = build_meta(get_model_spec("tv:vgg16"), (3, 224, 224), 1000)
    assert all(p.device.type == "meta" for p in model.parameters())


def test_shared_weights_counted_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(8, 8)
            self.b = self.a  # the same module twice

        def forward(self, x):
            return self.b(self.a(x))

    assert count_parameters(Tied())[0] == 8 * 8 + 8


def test_macs_of_mlp_are_its_weights():
    # One multiply-accumulate per weight for a plain MLP (biases are additions).
    assert count("mlp", **FMNIST).macs == 268_800


def test_layer_summary_has_shapes_and_params():
    spec = get_model_spec("mlp")
    rows = layer_summary(build_meta(spec, (1, 28, 28), 10), (1, 28, 28), depth=1)
    by_name = {r.name: r for r in rows}
    assert by_name["fc1"].params == 784 * 256 + 256
    assert by_name["head"].output_shape == (10,)


OWN_MODELS = [s.name for s in list_models(torchvision=False)]


@pytest.mark.parametrize("name", OWN_MODELS + ["tv:resnet18", "tv:mobilenet_v3_small"])
def test_every_model_builds_and_runs_forward(name):
    spec = get_model_spec(name)
    shape = (1, 28, 28) if spec.default_dataset == "fashion-mnist" else (3, 32, 32)
    model = create_model(name, shape, 7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, *shape))
    assert out.shape == (2, 7)


@pytest.mark.parametrize(
    "name,settings,needle",
    [
        ("mlpmixer", {"patch_size": 5}, "patch_size 5 does not divide image size 32x32"),
        ("mlp", {"depth": 0}, "depth must be at least 1"),
        ("mlp", {"activation": "relux"}, "unknown activation 'relux'"),
        ("mlp", {"wdth": 3}, "valid settings: activation, batchnorm, bias, depth, dropout, width"),
        ("cnn", {"kernel_size": 40, "padding": "valid"}, "leaves no pixels"),
        ("vgg16", {"head": "tiny"}, "head must be one of"),
    ],
)
def test_invalid_settings_say_what_is_wrong(name, settings, needle):
    with pytest.raises((InvalidSettingError, UnknownNameError), match=needle):
        create_model(name, (3, 32, 32), 10, settings)


def test_unknown_model_lists_close_names():
    with pytest.raises(UnknownNameError, match="did you mean 'resnet18'"):
        get_model_spec("resnet19")
    with pytest.raises(UnknownNameError, match="resnet50"):
        get_model_spec("tv:resnet5O")


def test_settings_syntax_lists_and_alternatives():
    assert parse_assignments(["patch-size=2,4", "channels=16/32"]) == {
        "patch_size": ["2", "4"],
        "channels": ["16/32"],
    }
    assert coerce("channels", "16/32/45", ()) == (16, 32, 45)
    spec = get_model_spec("cnn")
    assert spec.resolve({"channels": "16/32/45"})["channels"] == (16, 32, 45)
    assert spec.resolve({"batchnorm": "off"})["batchnorm"] is False


def test_cnn_stage_channels_from_depth_width_growth():
    model = create_model("cnn", (1, 28, 28), 10, {"depth": 2, "width": 8, "growth": 2})
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16]


@pytest.mark.parametrize(
    "name",
    [s.name for s in list_models(torchvision=False)]
    + ["tv:resnet18", "tv:mobilenet_v3_small", "tv:googlenet"],
)
def test_every_model_declares_its_anatomy(name):
    """The declared head gives the class scores, the first layer is a weighted layer, blocks exclude the head."""
    from dlbench.models import anatomy

    spec = get_model_spec(name)
    shape = (3, 64, 64) if name.startswith("tv:") else (3, 32, 32)
    model = build_meta(spec, shape, 7)
    parts = anatomy(model, spec)
    head = model.get_submodule(parts.head)
    assert (getattr(head, "out_features", None) or head.out_channels) == 7
    assert isinstance(model.get_submodule(parts.first_layer), nn.Linear | nn.Conv2d)
    assert parts.blocks and all(not parts.head.startswith(b + ".") and b != parts.head for b in parts.blocks)
    for b in parts.blocks + parts.token_mixing + parts.aux_heads:
        model.get_submodule(b)  # every declared name exists
    assert bool(parts.token_mixing) == (spec.family == "mlpmixer")
