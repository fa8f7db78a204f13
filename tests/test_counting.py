"""Counting answers: solve-depth finds the true optimum over the feasible range (also where the count does not
grow), and --no-bias follows its definition."""

from __future__ import annotations

import json

import pytest
from torch import nn

from dlbench.analysis.params import build_meta, count_parameters
from dlbench.analysis.solve import solve
from dlbench.errors import InvalidSettingError
from dlbench.models import _registry, get_model_spec

FMNIST = ((1, 28, 28), 10)


@pytest.fixture
def vshaped_model():
    """A test-only model whose count falls, then rises again: 2 * (1 + |v - 5|) parameters."""

    def vshape(input_shape, num_classes, *, v: int = 1):
        if v > 12:
            raise InvalidSettingError(f"v {v} is too large for this input")
        return nn.Linear(1, 1 + abs(v - 5))

    from dlbench.models.anatomy import Anatomy

    _registry.register_model(
        "test-vshape", family="test", description="V-shaped count", anatomy=lambda m: Anatomy("", "", ())
    )(vshape)
    yield "test-vshape"
    _registry._MODELS.pop("test-vshape")


def test_cnn_depth_is_not_monotone_and_the_exact_depth_wins():
    # depth 1-4 on Fashion-MNIST: 804,586 / 421,738 / 241,770 / 422,506; depth 5 pools the image to nothing
    sol = solve("cnn", "depth", 421_738, *FMNIST)
    assert (sol.value, sol.params, sol.rel_diff) == (2, 421_738, 0.0)
    assert sol.searched == (1, 4) and sol.exhaustive and sol.ties == []
    assert [c.params for c in sol.below + sol.above] == [804_586, 241_770, 422_506]
    assert "every depth from 1 to 4" in sol.describe()


def test_kernel_size_with_valid_padding_searches_its_whole_feasible_range():
    settings = {"padding": "valid", "pool": "none"}
    sol = solve("cnn", "kernel_size", 300_000, *FMNIST, settings)
    assert sol.exhaustive
    first, last = sol.searched
    spec = get_model_spec("cnn")
    counts = {
        k: count_parameters(build_meta(spec, *FMNIST, {**settings, "kernel_size": k}))[0]
        for k in range(first, last + 1)
    }
    with pytest.raises(InvalidSettingError):
        build_meta(spec, *FMNIST, {**settings, "kernel_size": last + 1})
    best = min(counts, key=lambda k: (abs(counts[k] - 300_000), k))
    assert sol.value == best and sol.params == counts[best]


def test_ties_are_reported_and_the_smallest_value_is_chosen(vshaped_model):
    sol = solve(vshaped_model, "v", 2 * (1 + 2), (1, 1, 1), 2)  # v = 3 and v = 7 both give 6 parameters
    assert sol.value == 3 and sol.ties == [7] and sol.params == 6
    assert sol.searched == (1, 12) and sol.exhaustive
    assert "7 tie with it" in sol.describe()


def test_growing_counts_are_bisected_and_say_so():
    sol = solve("mlp", "depth", 269_322, *FMNIST, {"width": 64})
    assert (sol.value, sol.params) == (54, 271_370)
    assert not sol.exhaustive and sol.evaluations < 40
    assert "assumed" in sol.describe()


def test_cli_reports_the_range_searched(cli):
    res = cli("solve-depth", "cnn", "--dataset", "fashion-mnist", "--target", "421738", "--format", "json")
    assert res.code == 0, res
    out = json.loads(res.out)
    assert out["value"] == 2 and out["params"] == 421_738
    assert out["searched"] == [1, 4] and out["exhaustive"] is True and out["ties"] == []
    table = cli("solve-depth", "cnn", "--dataset", "fashion-mnist", "--target", "421738")
    assert "every depth from 1 to 4 counted" in table.out


def test_no_bias_leaves_out_every_additive_bias_and_keeps_scales():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LayerNorm(4))
    attention = nn.MultiheadAttention(8, 2, add_bias_kv=True)
    conv_w, bn_gamma, ln_gamma = 4 * 3 * 9, 4, 4
    assert count_parameters(net, bias=False) == (conv_w + bn_gamma + ln_gamma,) * 2
    assert count_parameters(net)[0] == conv_w + 4 + 2 * 4 + 2 * 4
    # in_proj_weight (3*8*8) and out_proj.weight (8*8); in_proj_bias, out_proj.bias, bias_k, bias_v are biases
    assert count_parameters(attention, bias=False)[0] == 3 * 8 * 8 + 8 * 8
    assert count_parameters(attention)[0] == 3 * 8 * 8 + 8 * 8 + 3 * 8 + 8 + 8 + 8
