"""Device resolution, synchronised timing and peak memory."""

from __future__ import annotations

import os
import platform
import time

import torch

from dlbench import __version__


def resolve_device(device: str, kind: str) -> torch.device:
    if device == "auto":
        return torch.device(kind)
    return torch.device(device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


class Timer:
    """Wall-clock seconds with the device synchronised at both ends (GPU work is asynchronous)."""

    def __init__(self, device: torch.device):
        self.device = device

    def __enter__(self):
        synchronize(self.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        synchronize(self.device)
        self.seconds = time.perf_counter() - self.start


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak-memory measurement for this run (CUDA allocator stats; Linux: the process's VmHWM)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    elif device.type == "cpu":
        try:  # Linux >= 4.0: writing 5 resets the resident-set high-water mark, so each run measures its own
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this run in MiB: CUDA, allocated by tensors; CPU, the process's peak resident set since
    :func:`reset_peak_memory`. NaN where a per-run figure is not available (a CPU outside Linux): the process's
    lifetime high-water mark would only grow from trial to trial within a sweep and mislead."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if device.type != "cpu" or not _hwm_resettable():
        return float("nan")
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB -> MiB
    except OSError:
        pass
    return float("nan")


def _hwm_resettable() -> bool:
    return os.path.exists("/proc/self/clear_refs") and os.access("/proc/self/clear_refs", os.W_OK)


def environment(device: torch.device) -> dict[str, str]:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = (
            f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
        )
    return {
        "device_name": name,
        "torch_version": torch.__version__,
        "dlbench_version": __version__,
        "python_version": platform.python_version(),
    }


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError | MemoryError):
        return True
    return isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc)
