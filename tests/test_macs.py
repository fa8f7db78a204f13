"""MACs are torch's FLOP counter's total halved, the same whether counted on zeros on the CPU or on the meta
device, and a small count leaves ``torch._dynamo`` unimported."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlbench.models import get_model_spec, macs
from dlbench.models.counting import build_meta, count_macs

CASES = [
    ("mlp", (1, 28, 28), {}),
    ("mlp", (3, 32, 32), {"depth": 6, "width": 300}),
    ("cnn", (1, 28, 28), {}),
    ("cnn", (3, 64, 64), {"kernel_size": 5, "padding": "valid"}),
    ("cnn", (3, 32, 32), {"depth": 5}),
    ("resnet18", (3, 32, 32), {}),
    ("resnet18", (1, 28, 28), {}),
    ("mlpmixer", (3, 32, 32), {}),
    ("mlpmixer", (1, 28, 28), {}),
]


@pytest.mark.parametrize(("name", "shape", "settings"), CASES)
def test_the_cpu_count_is_torchs_flop_counter_on_meta_and_the_model_stays_on_meta(name, shape, settings):
    spec = get_model_spec(name)
    net = build_meta(spec, shape, 10, spec.resolve(settings)).eval()
    before = list(net.named_parameters()) + list(net.named_buffers())
    flops = macs._on_cpu(net, shape)
    after = list(net.named_parameters()) + list(net.named_buffers())
    assert flops == macs._on_meta(net, shape) > 0
    assert len(after) == len(before) and all(a is b for (_, a), (_, b) in zip(after, before, strict=True))
    assert all(t.is_meta for _, t in after)


def test_resnet18_on_cifar_shape_has_its_known_macs():
    net = build_meta(get_model_spec("resnet18"), (3, 32, 32), 10)
    assert macs._on_cpu(net.eval(), (3, 32, 32)) // 2 == count_macs(net, (3, 32, 32)) == 555_422_720


class _Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(8, 24)

    def forward(self, x):
        q, k, v = self.qkv(x.flatten(2).transpose(1, 2)).chunk(3, dim=-1)
        return F.scaled_dot_product_attention(q, k, v)


def test_a_count_too_large_or_with_attention_runs_on_meta(monkeypatch):
    monkeypatch.setattr(macs, "_dynamo_loaded", lambda: False)
    on_meta = []
    real = macs._on_meta
    monkeypatch.setattr(macs, "_on_meta", lambda m, s: on_meta.append(s) or real(m, s))
    with torch.device("meta"):
        attention = _Attention()
    assert macs.forward_flops(attention, (8, 4, 4)) == real(attention, (8, 4, 4)) > 0 and len(on_meta) == 1
    net = build_meta(get_model_spec("cnn"), (1, 28, 28), 10)
    expected = real(net, (1, 28, 28))
    assert macs.forward_flops(net, (1, 28, 28)) == expected and len(on_meta) == 1  # on the CPU
    monkeypatch.setattr(macs, "CPU_MACS", 1000)
    assert macs.forward_flops(net, (1, 28, 28)) == expected and len(on_meta) == 2
    assert all(t.is_meta for t in net.parameters())


def test_counting_a_registry_model_leaves_dynamo_unimported():
    code = (
        "import sys; from dlbench.analysis.params import count; c = count('resnet18'); "
        "print(c.macs, 'torch._dynamo' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["555422720", "False"]
