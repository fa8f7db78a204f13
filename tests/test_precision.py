"""`--precision auto` and `--memory-format auto` resolve per device from the CPU's own flags, into the key."""

from __future__ import annotations

import json

import pytest

from dlbench import hardware
from dlbench.config import TrainConfig
from dlbench.resolve import reproduce_command, resolve_config

ZEN4 = frozenset({"avx2", "avx512f", "avx512_bf16"})
SAPPHIRE_RAPIDS = frozenset({"avx2", "avx512f", "amx_tile", "amx_bf16"})
SKYLAKE = frozenset({"avx2", "avx512f"})  # AVX-512 without bf16: bf16 would be emulated
OLD_X86 = frozenset({"sse4_2"})  # no AVX2: no NHWC convolution kernels
DATA = {"train_size": 64}
TINY = ["--dataset-opt", "train_size=1200", "--dataset-opt", "test_size=300"]


@pytest.fixture
def cpu(monkeypatch):
    """Simulate a processor by its /proc/cpuinfo flags."""

    def set_flags(flags: frozenset[str]) -> None:
        monkeypatch.setattr(hardware, "cpu_flags", lambda: flags)

    return set_flags


def _config(model="cnn", **options) -> TrainConfig:
    return resolve_config(model, "shapes", {}, DATA, {"epochs": 1, "device": "cpu", **options})


@pytest.mark.parametrize("flags", [ZEN4, SAPPHIRE_RAPIDS])
def test_auto_is_bf16_on_a_cpu_with_native_bf16(cpu, flags):
    cpu(flags)
    config = _config()
    assert config.options.precision == "bf16"
    assert json.loads(config.canonical_json())["options"]["precision"] == "bf16"


@pytest.mark.parametrize("flags", [SKYLAKE, OLD_X86, frozenset()])
def test_auto_is_fp32_where_bf16_would_be_emulated(cpu, flags):
    cpu(flags)
    assert _config().options.precision == "fp32"


def test_the_resolved_precision_is_part_of_the_key(cpu):
    cpu(ZEN4)
    bf16 = _config()
    cpu(SKYLAKE)
    fp32 = _config()
    assert bf16.key != fp32.key
    assert bf16.key == _config(precision="bf16").key  # auto is what it resolves to, nothing more
    assert fp32.key == _config(precision="fp32").key


def test_channels_last_for_convolutional_models_on_avx2_cpus(cpu):
    cpu(SKYLAKE)
    assert _config("cnn").options.memory_format == "channels_last"
    assert _config("mlp").options.memory_format == "contiguous"
    cpu(OLD_X86)
    assert _config("cnn").options.memory_format == "contiguous"


def test_the_resolved_memory_format_is_part_of_the_key(cpu):
    cpu(SKYLAKE)
    nhwc, nchw = _config("cnn"), _config("cnn", memory_format="contiguous")
    assert nhwc.key != nchw.key
    assert json.loads(nhwc.canonical_json())["options"]["memory_format"] == "channels_last"


def test_fp32_contiguous_cpu_runs_keep_the_keys_they_had_before_the_options(cpu):
    """Keys printed by dlbench before memory_format existed (and auto meant fp32 on every CPU)."""
    cpu(OLD_X86)
    assert _config("mlp").key == "0de73629e1f74e20"
    assert _config("cnn").key == "12c5e7622e8a05ff"
    cpu(ZEN4)
    assert _config("cnn", precision="fp32", memory_format="contiguous").key == "12c5e7622e8a05ff"


def test_recorded_configs_read_back_to_the_same_key(cpu):
    cpu(ZEN4)
    for config in (_config("cnn"), _config("mlp"), _config("cnn", memory_format="contiguous")):
        assert TrainConfig.from_json(config.canonical_json()).key == config.key
    # A CUDA run recorded before the option: the engine chose its format then (and "auto" still does).
    old = json.loads(_config("cnn").canonical_json())
    old["device_kind"] = "cuda"
    del old["options"]["memory_format"]
    back = TrainConfig.from_json(json.dumps(old))
    assert back.options.memory_format == "auto"
    assert back.canonical_json() == json.dumps(old, sort_keys=True, separators=(",", ":"))


def test_reproduce_command_names_only_what_auto_would_not_choose(cpu):
    cpu(ZEN4)
    assert "--precision" not in reproduce_command(_config())
    assert "--memory-format" not in reproduce_command(_config())
    line = reproduce_command(_config(precision="fp32", memory_format="contiguous"))
    assert "--precision fp32" in line and "--memory-format contiguous" in line


def test_train_reports_and_uses_the_resolved_precision(cpu, cli, one_torch_thread):
    cpu(ZEN4)
    res = cli("train", "--model", "cnn", "--dataset", "shapes", *TINY, "--epochs", "1", "--format", "json")
    assert res.code == 0, res
    rec = json.loads(res.out)
    assert (rec["precision"], rec["memory_format"]) == ("bf16", "channels_last")
    again = cli(
        "train", "--model", "cnn", "--dataset", "shapes", *TINY, "--epochs", "1", "--precision", "fp32"
    )
    assert again.code == 0, again
    assert "fp32, channels_last" in again.err + again.out
    assert "trained now" in again.err + again.out  # another run than the bf16 one
