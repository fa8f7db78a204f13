"""Rich progress on stderr, driven by the engine's callback events (start, step, epoch, end)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dlbench.cli._output import err


class TrainProgress:
    """Two bars: epochs, and batches of the current epoch, with the last loss and images/s."""

    def __init__(self, label: str = "training", sweep_task: bool = False):
        self.label = label
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self.sweep = self.progress.add_task("sweep", total=1, info="", visible=sweep_task)
        self.epochs = None
        self.batches = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def set_sweep(self, done: int, total: int, info: str) -> None:
        self.progress.update(self.sweep, completed=done, total=total, info=info)

    def callback(self, event: str, **d) -> None:
        p = self.progress
        if event == "start":
            for task in (self.epochs, self.batches):
                if task is not None:
                    p.remove_task(task)
            info = "resumed from checkpoint" if d.get("resumed") else ""
            self.epochs = p.add_task(
                f"{self.label} epochs", total=d["epochs"], completed=d["start_epoch"], info=info
            )
            self.batches = p.add_task("  batches", total=d["steps_per_epoch"], info="")
        elif event == "step" and self.batches is not None:
            p.update(self.batches, completed=d["step"], info=f"loss {d['loss']:.4f}")
        elif event == "epoch" and self.epochs is not None:
            val = "" if d["val_acc"] != d["val_acc"] else f"  val acc {d['val_acc']:.4f}"
            p.update(
                self.epochs,
                advance=1,
                info=f"loss {d['train_loss']:.4f}{val}  {d['images_per_sec']:,.0f} img/s",
            )
            p.update(self.batches, completed=0)
        elif event == "end":
            for task in (self.epochs, self.batches):
                if task is not None:
                    p.remove_task(task)
            self.epochs = self.batches = None
