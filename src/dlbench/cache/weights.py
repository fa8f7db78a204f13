"""A completed run's final weights: written with their size and hash, read back checked and safely.

torch is imported only here, and only when weights are written or read, so the cache answers lookups without it.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from dlbench.atomic import write_atomic
from dlbench.cache.integrity import Damage, HashingWriter, digest, entry


def write_weights(path: Path, state: dict) -> dict:
    """Write ``state`` (a state dict) atomically to ``path``; returns its {size, sha256} entry.

    Raises:
        WriteError: the disk is full or the folder not writable (torch's own error for it is replaced).
    """
    import torch

    seen: list[HashingWriter] = []

    def write(f) -> None:
        seen.append(HashingWriter(f))
        try:
            torch.save(state, seen[-1])
        except RuntimeError:
            if seen[-1].error is not None:  # a full disk, disguised by torch's zip writer
                raise seen[-1].error from None
            raise

    write_atomic(path, write, fault="cache-write")
    return entry(seen[-1].size, seen[-1].hexdigest)


def read_weights(data: bytes, expected: dict | None) -> dict:
    """The state dict in ``data``, loaded with ``weights_only=True`` after checking its recorded hash.

    Raises:
        Damage: the hash differs, the bytes are not a loadable safe pickle, or not a dict (one short phrase).
    """
    import torch

    if expected and (len(data), digest(data)) != (expected["size"], expected["sha256"]):
        raise Damage("their content hash differs from the one recorded")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise Damage(f"{type(exc).__name__}: cannot be loaded safely") from None
    if not isinstance(state, dict):
        raise Damage(f"a {type(state).__name__}, not a state dict")
    return state
