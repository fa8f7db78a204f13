"""Atomic checkpoint files, loaded with ``weights_only=True`` (no arbitrary code from a pickle)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from dlbench.errors import CacheError


def save_atomic(obj, path: Path) -> None:
    """Write to a temporary name in the same folder, fsync, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path, map_location="cpu"):
    """Load a checkpoint safely; a damaged file raises CacheError naming it and the fix."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CacheError(
            f"checkpoint {path} cannot be loaded safely ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); "
            "delete it to start that run over"
        ) from exc
