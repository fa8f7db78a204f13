"""What this machine's CPU can do natively, read from the processor's own flags, never guessed.

``--precision auto`` trains in bf16 on a CPU only where the instruction set has native bf16 arithmetic
(AVX512_BF16 or AMX-BF16): there oneDNN's bf16 matmuls run about 2.5x faster than fp32 (measured on a Zen 4
core); elsewhere bf16 is emulated and slower than fp32. ``--memory-format auto`` trains convolutional models
channels_last on an x86 CPU with AVX2 or AVX-512, where oneDNN has NHWC convolution kernels (cnn 1.45x, resnet18
1.2x in fp32 on Zen 4). Linux: the flags of ``/proc/cpuinfo``; elsewhere torch's own CPU feature queries, when
this torch has them. Torch-free on Linux.

``available_cpus`` is what the engine caps torch's CPU threads at: the process's affinity mask (taskset, Slurm's
cpusets) and a cgroup CPU quota (``docker --cpus``, Kubernetes limits), which ``os.cpu_count()`` and torch's
default ignore; more threads than the quota allows only queue for it.

``accelerator_possible`` lets ``--device auto`` resolve to the CPU without importing torch (about 2 s) where
no GPU can be reached: a run answered from the cache then never loads torch.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
NHWC_FLAGS = ("avx2", "avx512f")


@functools.cache
def cpu_flags() -> frozenset[str] | None:
    """The instruction-set flags of the first processor in ``/proc/cpuinfo``; None where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() in ("flags", "Features"):  # x86 / ARM
                    return frozenset(value.split())
    except OSError:
        pass
    return None


def _torch_says(query: str) -> bool:
    """A feature query of ``torch.cpu`` (cpuinfo underneath); False where this torch lacks it."""
    import torch

    fn = getattr(torch.cpu, query, None)
    try:
        return bool(fn()) if fn else False
    except RuntimeError:
        return False


def native_bf16() -> bool:
    """True if the CPU computes in bf16 natively (AVX512_BF16 or AMX-BF16)."""
    flags = cpu_flags()
    if flags is not None:
        return any(f in flags for f in BF16_FLAGS)
    return _torch_says("_is_avx512_bf16_supported")  # AMX CPUs have AVX512_BF16 too


def nhwc_convolutions() -> bool:
    """True if the CPU has the vector units oneDNN's channels_last convolutions are written for (AVX2+)."""
    flags = cpu_flags()
    if flags is not None:
        return any(f in flags for f in NHWC_FLAGS)
    return _torch_says("_is_avx2_supported") or _torch_says("_is_avx512_supported")


def cpu_precision() -> str:
    """What ``--precision auto`` resolves to on this CPU: bf16 where native, else fp32."""
    return "bf16" if native_bf16() else "fp32"


def accelerator_possible() -> bool:
    """False only where torch cannot see a GPU: Linux without the device nodes every GPU stack needs (NVIDIA's
    ``/dev/nvidia*``, ROCm's ``/dev/kfd``, WSL's ``/dev/dxg``). Elsewhere (macOS has MPS) ask torch."""
    if sys.platform != "linux":
        return True
    dev = Path("/dev")
    return any(dev.glob("nvidia*")) or (dev / "kfd").exists() or (dev / "dxg").exists()


CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpu_quota(root: Path = CGROUP) -> int | None:
    """CPUs a cgroup CPU quota allows this process (rounded up), or None where no quota is set or readable:
    cgroup v2 ``cpu.max`` ("200000 100000" is 2 CPUs; "max 100000" none), v1 ``cpu.cfs_quota_us`` / period."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    try:
        q, p = int(quota), int(period)
    except ValueError:  # "max": no quota
        return None
    return max(1, math.ceil(q / p)) if q > 0 and p > 0 else None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return min(cpus, quota) if quota else cpus
