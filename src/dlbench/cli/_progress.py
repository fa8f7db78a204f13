"""Progress on stderr, driven by the engine's callback events (start, step, epoch, end).

On a terminal: rich bars (sweep, epochs, batches) with elapsed time and an estimate of the time left. Anywhere
else (a CI log, ``nohup``, a file): one plain line per epoch and per trial, so a log shows where a long run is
instead of staying silent for minutes.
"""

from __future__ import annotations

import math
import time

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from dlbench.cli._output import err


def _epoch_info(d: dict) -> str:
    val = "" if not math.isfinite(d["val_acc"]) else f", val acc {d['val_acc']:.4f}"
    return f"loss {d['train_loss']:.4f}{val}, {d['images_per_sec']:,.0f} img/s, {d['seconds']:.1f} s"


def _loss_info(loss) -> str:
    """The last loss shown beside the batch bar: None between syncs keeps the bar moving without it; a fused
    group reports one loss per trial (shown as their mean over the finite ones)."""
    if loss is None:
        return ""
    values = [v for v in (loss if isinstance(loss, list) else [loss]) if math.isfinite(v)]
    return f"loss {sum(values) / len(values):.4f}" if values else "loss nan"


class TrainProgress:
    """Bars (sweep, epochs, batches of the current epoch) on a terminal; plain lines elsewhere."""

    def __init__(self, label: str = "training", sweep_task: bool = False, plain: bool | None = None):
        self.label = label
        self.plain = (not err.is_terminal) if plain is None else plain
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=err,
            transient=True,
            disable=self.plain,
        )
        self.sweep = self.progress.add_task("sweep", total=1, info="", visible=sweep_task)
        self.epochs = None
        self.batches = None
        self.total_epochs = 0
        self.started = time.monotonic()

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def set_sweep(self, done: int, total: int, info: str) -> None:
        """The sweep's own line: ``done`` of ``total`` trials finished; ``info`` names the current one."""
        self.progress.update(self.sweep, completed=done, total=total, info=info)
        if self.plain:
            eta = ""
            if 0 < done < total:
                left = (time.monotonic() - self.started) / done * (total - done)
                eta = f" (about {left:,.0f} s left)"
            err.print(f"{info}{eta}", markup=False, highlight=False)

    def callback(self, event: str, **d) -> None:
        if self.plain:
            self._plain_line(event, d)
        else:
            self._bars(event, d)

    def _plain_line(self, event: str, d: dict) -> None:
        if event == "start":
            self.total_epochs = d["epochs"]
            resumed = f", resumed after epoch {d['start_epoch']}" if d.get("resumed") else ""
            err.print(
                f"{self.label}: {_count(d['epochs'], 'epoch')} of {_count(d['steps_per_epoch'], 'step')}{resumed}",
                markup=False,
                highlight=False,
            )
        elif event == "epoch":
            err.print(
                f"{self.label}: epoch {d['epoch'] + 1}/{self.total_epochs}: {_epoch_info(d)}",
                markup=False,
                highlight=False,
            )

    def _bars(self, event: str, d: dict) -> None:
        p = self.progress
        if event == "start":
            self._remove_run_tasks()
            info = "resumed from checkpoint" if d.get("resumed") else ""
            self.epochs = p.add_task(
                f"{self.label} epochs", total=d["epochs"], completed=d["start_epoch"], info=info
            )
            self.batches = p.add_task("  batches", total=d["steps_per_epoch"], info="")
        elif event == "step" and self.batches is not None:
            p.update(self.batches, completed=d["step"], info=_loss_info(d.get("loss")))
        elif event == "epoch" and self.epochs is not None:
            p.update(self.epochs, advance=1, info=_epoch_info(d))
            p.update(self.batches, completed=0)
        elif event == "end":
            self._remove_run_tasks()

    def _remove_run_tasks(self) -> None:
        for task in (self.epochs, self.batches):
            if task is not None:
                self.progress.remove_task(task)
        self.epochs = self.batches = None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"
