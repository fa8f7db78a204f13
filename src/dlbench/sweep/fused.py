"""Which trials of a sweep train fused (``sweep --fuse auto|off|K``), and in groups of how many.

Trials fuse when their configs are equal except for *fusable* options: those that leave the architecture, the
data and the batch alone (:data:`FUSABLE`: learning rate and its schedule, momentum, Nesterov, weight decay,
label smoothing, gradient clipping, early-stopping patience and the seed). A group is at most K trials: the
cap given with ``--fuse K``, 8 on the CPU (32 on CUDA), under ``auto`` on the CPU what keeps the group's
weights within :data:`CPU_GROUP_WEIGHTS`, and what the device's free memory holds at half its size, counting per
trial its parameters, gradients, optimizer states and activations (:func:`member_bytes`).

``auto`` fuses where fusing was measured (or is expected) to be faster (:data:`AUTO`): on the CPU the mlp
family, in groups whose weights stay within :data:`CPU_GROUP_WEIGHTS` (oneDNN's grouped convolution made the
convolutional families slower, the Mixer's matrix products gained nothing, and neither did weights that no
longer fit the caches: benchmarks/fused.py); on CUDA the mlp, cnn and resnet families, where one small model
leaves the GPU mostly idle (HFTA's measurements; not measured here yet). ``--fuse K`` fuses every supported
family anywhere. Every other trial runs alone, with one line saying why.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass

from dlbench.config import TrainConfig, train_option_defaults
from dlbench.errors import UsageError

FUSABLE = (
    "lr",
    "momentum",
    "nesterov",
    "weight_decay",
    "schedule",
    "warmup_epochs",
    "step_every",
    "gamma",
    "label_smoothing",
    "grad_clip",
    "patience",
    "seed",
)
AUTO = {"cpu": ("mlp",), "cuda": ("mlp", "cnn", "resnet")}  # the others only when asked: see the docstring
SLOWER_ON_CPU = {  # why auto leaves a family alone on the CPU, as measured by benchmarks/fused.py
    "cnn": "grouped convolutions are slower there than separate runs",
    "resnet": "grouped convolutions are slower there than separate runs",
    "vgg": "grouped convolutions are slower there than separate runs",
    "mlpmixer": "its matrix products keep the CPU as busy alone as fused: no faster",
}
# Fused on the CPU, a group gains while its weights stay in the caches: a width-64 MLP (0.2 MiB of weights)
# gained up to K = 8, a width-256 one (1 MiB) up to K = 4 and little or nothing at K = 8 (benchmarks/fused.py,
# docs/benchmarks.md). Under auto, a CPU group holds at most this many bytes of weights.
CPU_GROUP_WEIGHTS = 4 * 2**20
CAP = {"cpu": 8, "cuda": 32}
MEMORY_SHARE = 0.5  # of the free memory, for the group (the rest: the data, the allocator, the evaluation)


@dataclass(frozen=True)
class Fuse:
    """``--fuse``: mode auto, off or a cap (``cap`` 0 under auto and off)."""

    mode: str
    cap: int = 0

    @property
    def off(self) -> bool:
        return self.mode == "off"

    @classmethod
    def parse(cls, text: str) -> Fuse:
        value = str(text).strip().lower()
        if value in ("auto", "off"):
            return cls(value)
        if value.isdigit() and int(value) >= 1:
            return cls("off") if int(value) == 1 else cls("cap", int(value))
        raise UsageError(f"--fuse must be auto, off or a group size K >= 1, got '{text}'")


def group_key(config: TrainConfig) -> str:
    """The config with every fusable option at its default: trials with the same key may fuse."""
    defaults = train_option_defaults()
    opts = dataclasses.replace(config.options, **{n: defaults[n] for n in FUSABLE})
    return config.replace(options=opts).canonical_json()


def why_alone(config: TrainConfig, fuse: Fuse) -> str | None:
    """Why ``config`` cannot fuse under ``fuse`` (None: it can)."""
    from dlbench.engine.fused import unsupported_layer
    from dlbench.engine.fused.families import LAYOUTS
    from dlbench.models import get_model_spec

    opts, family = config.options, get_model_spec(config.model).family
    if family not in LAYOUTS:
        *most, last = LAYOUTS
        names = ", ".join(most) + f" and {last}"
        return f"{config.model} runs alone (fused training supports the {names} families)"
    if opts.init != "scratch" or opts.finetune != "full" or opts.weights or opts.input_size:
        return f"{config.model} runs alone (transfer learning is not fused)"
    if opts.compile:
        return f"{config.model} runs alone (--compile is not fused)"
    if config.device_kind not in CAP:
        return (
            f"{config.model} runs alone (fused training runs on the CPU and CUDA, not {config.device_kind})"
        )
    meta = _meta(config)[0]
    layer = unsupported_layer(meta, family)
    if layer:
        return f"{config.model} runs alone (its {layer} cannot be fused)"
    if fuse.mode == "auto":
        return _not_by_default(config, family, weight_bytes(meta))
    return None


def weight_bytes(meta) -> int:
    return sum(p.numel() * p.element_size() for p in meta.parameters())


def _not_by_default(config: TrainConfig, family: str, weights: int) -> str | None:
    """Why ``--fuse auto`` leaves a fusable model alone on this device (None: it fuses)."""
    if config.device_kind == "cuda" and family not in AUTO["cuda"]:
        return (
            f"{config.model} runs alone on CUDA under --fuse auto (fusing the {family} family is not measured "
            "on a GPU yet); --fuse K fuses it"
        )
    if config.device_kind != "cpu":
        return None
    if family not in AUTO["cpu"]:
        return f"{config.model} runs alone on the CPU under --fuse auto ({SLOWER_ON_CPU[family]}); --fuse K fuses it"
    if CPU_GROUP_WEIGHTS // weights < 2:
        return (
            f"{config.model} runs alone on the CPU under --fuse auto (two of its {weights / 2**20:.1f} MiB of "
            f"weights exceed the {CPU_GROUP_WEIGHTS / 2**20:.0f} MiB a fused CPU group may hold); --fuse K fuses it"
        )
    return None


def _meta(config: TrainConfig):
    from dlbench.analysis.params import build_meta
    from dlbench.data import get_dataset
    from dlbench.models import get_model_spec

    info = get_dataset(config.dataset).info(None, config.dataset_options)
    spec = get_model_spec(config.model)
    return build_meta(spec, info.input_shape, info.num_classes, config.model_settings), info.input_shape


def member_bytes(config: TrainConfig) -> int:
    """One trial's share of a group's memory: weights, gradients and optimizer states, and the activations
    of one training batch (every layer's output, kept for the backward pass, and its gradient)."""
    import torch

    from dlbench.sweep.checks import optimizer_states

    meta, shape = _meta(config)
    params = sum(p.numel() * p.element_size() for p in meta.parameters())
    outputs = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: outputs.append(out.numel() * out.element_size()))
        for m in meta.modules()
        if not list(m.children())
    ]
    try:
        meta(torch.empty(config.options.batch_size, *shape, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return params * (2 + optimizer_states(config)) + 2 * sum(outputs)


def group_size(config: TrainConfig, fuse: Fuse, here: bool = True) -> int:
    """The largest group for trials like ``config``: the cap, and what the free memory holds (``here`` False:
    a group for a cluster node, whose memory this machine cannot tell)."""
    from dlbench.sweep.checks import available_memory

    cap = min(CAP[config.device_kind], fuse.cap or CAP[config.device_kind])
    if fuse.mode == "auto" and config.device_kind == "cpu":
        cap = min(cap, CPU_GROUP_WEIGHTS // weight_bytes(_meta(config)[0]))
    free, _ = available_memory(config) if here else (None, "")
    if free is None:
        return cap
    return max(1, min(cap, int(free * MEMORY_SHARE // max(1, member_bytes(config)))))


def plan_groups(
    configs: list[TrainConfig], fuse: Fuse, here: bool = True
) -> tuple[list[list[int]], list[str]]:
    """Groups (indices into ``configs``, two or more each, balanced in size) and one note per reason some
    trials run alone. ``here`` False (Slurm jobs): the group size does not ask this machine's memory."""
    if fuse.off:
        return [], []
    buckets: dict[str, list[int]] = {}
    notes: list[str] = []
    answers: dict[str, str | None] = {}  # by group key: the same answer for every trial of a group
    keys = [group_key(config) for config in configs]
    partners = Counter(keys)
    for i, (config, key) in enumerate(zip(configs, keys, strict=True)):
        if partners[key] < 2:  # differs from every other trial in what fusing cannot share: alone, no note
            continue
        if key not in answers:
            answers[key] = why_alone(config, fuse)
        why = answers[key]
        if why:
            if why not in notes:
                notes.append(why)
            continue
        buckets.setdefault(key, []).append(i)
    groups = []
    for members in buckets.values():
        n = math.ceil(len(members) / group_size(configs[members[0]], fuse, here))
        groups += [chunk for j in range(n) if len(chunk := members[j::n]) >= 2]
    return groups, notes


def describe(groups: list[list[int]]) -> str | None:
    """One line for the user: how many trials train fused, in groups of which sizes."""
    if not groups:
        return None
    sizes = sorted({len(g) for g in groups}, reverse=True)
    trials = sum(len(g) for g in groups)
    return f"fusing {trials} trials into {len(groups)} group(s) of {'/'.join(map(str, sizes))} (--fuse off: one by one)"
