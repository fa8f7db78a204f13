"""What a run carries from one epoch to the next: :class:`TrainState`, whose fields are the checkpoint schema.

A checkpoint is ``TrainState.to_checkpoint()`` saved with ``torch.save``; resuming is
``TrainState.from_checkpoint(loaded, path)``, which checks the structure (every field present, the history
whole: epochs 0..epoch, each exactly once) so a resumed run neither loses nor repeats an epoch. Why a run stops
is one :class:`Stop` value, decided by :func:`after_epoch` (diverged, early stop) or by the loop's out-of-memory
handler, never by scattered flags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from dlbench.engine.checkpoint import ResumeMismatch
from dlbench.engine.result import DIVERGED, OK, OOM


class Stop(str, Enum):
    """Why training ended. ``status`` is what the run records (an early stop is a finished, ok run)."""

    OK = "ok"
    DIVERGED = "diverged"
    EARLY_STOP = "early_stop"
    OOM = "oom"

    @property
    def status(self) -> str:
        return {Stop.OK: OK, Stop.EARLY_STOP: OK, Stop.DIVERGED: DIVERGED, Stop.OOM: OOM}[self]


def _no_best() -> dict[str, Any]:
    return {"val_acc": -1.0, "epoch": -1, "state": None}


@dataclass
class TrainState:
    """The resumable state of one run after its last finished epoch (``epoch`` -1: none yet).

    ``model`` and ``optimizer`` are state dicts; while training they are filled by :meth:`capture` just before
    a checkpoint is written, the live values being in the modules themselves.
    """

    key: str
    epoch: int = -1
    model: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] = field(default_factory=dict)
    epochs: list[dict] = field(default_factory=list)  # one record per finished epoch
    steps: list[dict] = field(default_factory=list)  # subsampled per-step losses
    grads: list[dict] = field(default_factory=list)  # per epoch and layer gradient norms
    best: dict[str, Any] = field(default_factory=_no_best)  # early stopping: best val_acc, its epoch, weights
    bad_epochs: int = 0  # epochs since the best validation accuracy
    initial_val_acc: float = math.nan  # validation accuracy before the first step

    @property
    def next_epoch(self) -> int:
        return self.epoch + 1

    def capture(self, model, optimizer) -> None:
        """Point ``model``/``optimizer`` at the live state dicts (saved as they are, no copy)."""
        self.model, self.optimizer = model.state_dict(), optimizer.state_dict()

    def to_checkpoint(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_checkpoint(cls, state: Any, path: Path) -> TrainState:
        """Check a loaded checkpoint's structure and turn it into a TrainState.

        Raises:
            ResumeMismatch: not a dict, a field missing, a field of the wrong type, or a broken history.
        """

        def bad(why: str) -> ResumeMismatch:
            return ResumeMismatch(path, why)

        if not isinstance(state, dict):
            raise bad(f"a {type(state).__name__}, not a dict")
        missing = [n for n in SCHEMA if n not in state and n not in OPTIONAL_FIELDS]
        if missing:
            raise bad(f"missing {', '.join(missing)}")
        epoch, epochs = state["epoch"], state["epochs"]
        if not isinstance(epoch, int) or not isinstance(epochs, list):
            raise bad("epoch or history of the wrong type")
        seen = [e.get("epoch") if isinstance(e, dict) else None for e in epochs]
        if seen != list(range(epoch + 1)):
            raise bad(f"its history holds epochs {seen}, expected 0..{epoch}")
        for name, kind in (
            ("model", dict),
            ("optimizer", dict),
            ("best", dict),
            ("steps", list),
            ("grads", list),
        ):
            if not isinstance(state[name], kind):
                raise bad(f"its {name} is a {type(state[name]).__name__}, not a {kind.__name__}")
        if not {"val_acc", "epoch", "state"} <= state["best"].keys() or not isinstance(
            state["bad_epochs"], int
        ):
            raise bad("its early-stopping record (best, bad_epochs) is incomplete")
        return cls(**{f.name: state[f.name] for f in fields(cls) if f.name in state})


# Added after checkpoints began: older checkpoints without it still resume.
OPTIONAL_FIELDS = ("initial_val_acc",)
SCHEMA = tuple(f.name for f in fields(TrainState))


def after_epoch(state: TrainState, record: dict, *, finite: bool, patience: int, snapshot) -> Stop | None:
    """The one place that decides whether training stops after an epoch, and keeps the best weights.

    Args:
        state: Updated in place (``best``, ``bad_epochs``).
        record: The epoch's record, with ``val_acc`` (NaN without a validation split).
        finite: Whether every training loss of the epoch was finite.
        patience: Early-stopping patience in epochs (0: off; off without a validation split too).
        snapshot: Called with no argument for a CPU copy of the weights when they are the best so far.

    Returns:
        ``Stop.DIVERGED``, ``Stop.EARLY_STOP``, or None to go on.
    """
    if not finite:
        return Stop.DIVERGED
    if not patience or not math.isfinite(record["val_acc"]):
        return None
    if record["val_acc"] > state.best["val_acc"]:
        state.best, state.bad_epochs = (
            {"val_acc": record["val_acc"], "epoch": record["epoch"], "state": snapshot()},
            0,
        )
        return None
    state.bad_epochs += 1
    return Stop.EARLY_STOP if state.bad_epochs >= patience else None
