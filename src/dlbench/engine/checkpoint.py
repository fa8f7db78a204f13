"""Checkpoint files: written through the one atomic writer, loaded with ``weights_only=True`` (no code runs).

A checkpoint that loads safely must still fit the run it resumes: :func:`load_resume` checks its structure
and then, before any training step, that its tensors fit the model and the optimizer and that its epoch is
within the config's ``--epochs``; anything else raises :class:`ResumeMismatch` with a one-line reason, so the
caller can move the file aside and start the run over instead of failing on every rerun.

Test hook: ``DLBENCH_FAULT=checkpoint-write[@N]`` kills this process (SIGKILL) halfway through writing its N-th
checkpoint temp file (default the first); ``save_atomic(..., fault="cache-write")`` counts as a cache write.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from dlbench.atomic import write_atomic
from dlbench.errors import CacheError

if TYPE_CHECKING:
    from dlbench.engine.state import TrainState


class CheckpointError(CacheError):
    """A checkpoint cannot be loaded safely (truncated, garbage, or a pickle that is not plain weights)."""

    def __init__(self, message: str, path: Path):
        super().__init__(message)
        self.path = Path(path)


class ResumeMismatch(CheckpointError):
    """A checkpoint loads safely but does not fit the run (shapes, keys, optimizer state, epochs, history)."""

    def __init__(self, path: Path, reason: str):
        super().__init__(
            f"checkpoint {path} does not fit this run ({reason}); delete it to start the run over", path
        )
        self.reason = reason


def save_atomic(obj, path: Path, *, fault: str = "checkpoint-write") -> None:
    """``torch.save(obj)`` to ``path`` atomically: a crash never leaves half a file."""
    write_atomic(path, lambda f: torch.save(obj, f), fault=fault)


def load(path: Path, map_location="cpu"):
    """Load a checkpoint safely; a damaged file raises CheckpointError (a CacheError) naming it and the fix."""
    try:
        with warnings.catch_warnings():  # a foreign file's pickle protocol is not worth a two-line warning
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded safely ({type(exc).__name__}: {first}); "
            "delete it to start that run over",
            path,
        ) from exc


def check_resume_state(path: Path) -> dict:
    """Load a resume checkpoint and check its structure; raise CheckpointError if it cannot be resumed from.

    Besides loading safely, the history must be whole: epochs 0..epoch, each exactly once, so a resumed run
    neither loses nor repeats an epoch. (Whether it fits a model is checked by :func:`load_resume`.)
    """
    from dlbench.engine.state import TrainState

    return TrainState.from_checkpoint(load(path), path).to_checkpoint()


def load_resume(path: Path | None, key: str, epochs: int, model, optimizer) -> TrainState | None:
    """The state to resume ``key`` from, loaded into ``model`` and ``optimizer``; None to start afresh.

    A missing file, or the checkpoint of another config, means a fresh start (never resume another run).

    Raises:
        CheckpointError: the file cannot be loaded safely.
        ResumeMismatch: it loads but does not fit (see the module docstring); nothing was trained yet.
    """
    from dlbench.engine.state import TrainState

    if not path or not Path(path).exists():
        return None
    raw = load(path)
    if not isinstance(raw, dict) or raw.get("key") != key:
        return None
    state = TrainState.from_checkpoint(raw, path)
    if state.epoch >= epochs:
        raise ResumeMismatch(path, f"its epoch {state.epoch + 1} is past --epochs {epochs}")
    _check_weights(path, state.model, model, "weights")
    if state.best.get("state") is not None:
        _check_weights(path, state.best["state"], model, "best weights")
    _check_optimizer(path, state.optimizer, optimizer)
    try:
        model.load_state_dict(state.model)
        optimizer.load_state_dict(state.optimizer)
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:120]
        raise ResumeMismatch(path, f"{type(exc).__name__}: {first}") from None
    return state


def _check_weights(path: Path, saved, model, what: str) -> None:
    own = model.state_dict()
    if not isinstance(saved, dict):
        raise ResumeMismatch(path, f"its {what} are a {type(saved).__name__}, not a state dict")
    missing = [k for k in own if k not in saved]
    unexpected = [k for k in saved if k not in own]
    if missing or unexpected:
        some = (missing or unexpected)[:3]
        raise ResumeMismatch(
            path,
            f"its {what} have {len(missing)} missing and {len(unexpected)} unexpected keys ({', '.join(some)})",
        )
    for k, v in saved.items():
        if not torch.is_tensor(v) or v.shape != own[k].shape:
            shape = tuple(v.shape) if torch.is_tensor(v) else type(v).__name__
            raise ResumeMismatch(path, f"its {what}' {k} is {shape}, the model's is {tuple(own[k].shape)}")


def _check_optimizer(path: Path, saved, optimizer) -> None:
    """Same parameter groups and, per parameter, state tensors of the parameter's shape."""
    fresh = optimizer.state_dict()
    if not isinstance(saved, dict) or not isinstance(saved.get("param_groups"), list):
        raise ResumeMismatch(path, "it has no optimizer state")
    if not isinstance(saved.get("state"), dict):
        raise ResumeMismatch(path, "its optimizer state has no per-parameter state")
    sizes = [len(g.get("params", ())) if isinstance(g, dict) else -1 for g in saved["param_groups"]]
    if sizes != [len(g["params"]) for g in fresh["param_groups"]]:
        raise ResumeMismatch(path, "its optimizer holds other parameters than this model trains")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for idx, entry in saved["state"].items():
        if not isinstance(idx, int) or not 0 <= idx < len(params) or not isinstance(entry, dict):
            raise ResumeMismatch(path, f"its optimizer state names parameter {idx!r}, which this model lacks")
        for name, v in entry.items():
            if torch.is_tensor(v) and v.ndim and v.shape != params[idx].shape:
                raise ResumeMismatch(
                    path,
                    f"its optimizer's {name} of parameter {idx} is {tuple(v.shape)}, "
                    f"the parameter is {tuple(params[idx].shape)}",
                )
