"""`sweep --executor slurm` on the command line: the ``--slurm-*`` flags, the live view of a study's trials, and
what Ctrl-C does to the jobs (ask on a terminal; ``--on-interrupt`` decides elsewhere)."""

from __future__ import annotations

import functools
import inspect
import sys
import time
from enum import Enum

import typer
from rich.live import Live
from rich.table import Table

from dlbench.cli._output import err

PANEL = "Slurm (--executor slurm; defaults from the [slurm] section of the config file)"
FLAGS = {
    "partition": (str, "Partition (queue) of the jobs."),
    "time": (
        str,
        "Time limit per job (a trial or a fused group): minutes (90), H:MM:SS or D-HH:MM:SS [default: 60].",
    ),
    "gpus": (int, "GPUs per job [default: 0]."),
    "cpus": (int, "CPUs per job [default: 2]."),
    "mem": (str, "Memory per job: GB (8) or with a unit (8G, 512M) [default: 8]."),
    "account": (str, "Account to charge."),
    "qos": (str, "Quality of service."),
    "constraint": (str, "Node features the jobs need (--constraint)."),
    "sbatch": (list[str], "Extra #SBATCH line KEY=VALUE or KEY (repeatable)."),
    "setup": (list[str], "Shell line run before each trial, e.g. 'module load cuda' (repeatable)."),
    "array_parallelism": (int, "Submit one job array running at most N trials at once."),
}


class OnInterrupt(str, Enum):
    ask = "ask"
    cancel = "cancel"
    leave = "leave"


def with_slurm_options(fn):
    """Add the ``--slurm-*`` flags to ``fn``'s signature; ``fn`` receives the given ones as ``slurm_flags``."""
    sig = inspect.signature(fn, eval_str=True)
    own = [p for p in sig.parameters.values() if p.name != "slurm_flags"]
    extra = [
        inspect.Parameter(
            f"slurm_{name}",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                None,
                f"--slurm-{name.replace('_', '-')}",
                help=text,
                show_default=False,
                rich_help_panel=PANEL,
            ),
            annotation=kind | None,
        )
        for name, (kind, text) in FLAGS.items()
    ]

    @functools.wraps(fn)
    def wrapper(**kwargs):
        flags = {name: kwargs.pop(f"slurm_{name}") for name in FLAGS}
        return fn(**kwargs, slurm_flags={k: v for k, v in flags.items() if v not in (None, [])})

    wrapper.__signature__ = sig.replace(parameters=own + extra)
    wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
    del wrapper.__wrapped__
    return wrapper


STYLE = {
    "pending": "dim",
    "queued": "yellow",
    "running": "cyan",
    "cached": "green",
    "done": "green",
    "failed": "red",
}
SHOWN_ROWS = 20  # a long study shows its unfinished trials first, then a count of the others


class StudyView:
    """Every trial of a study with its state, live: a table redrawn in place on a terminal, one line per change
    elsewhere (a CI log, ``nohup``)."""

    def __init__(self, name: str, total: int, plain: bool | None = None):
        self.name, self.total = name, total
        self.plain = (not err.is_terminal) if plain is None else plain
        self.states: dict[int, tuple[str, object]] = {}
        self.started = time.monotonic()
        self.live = None
        if not self.plain:  # redrawn from the states at each refresh, so the elapsed time moves on too
            self.live = Live(get_renderable=self._table, console=err, refresh_per_second=2, transient=True)

    def __enter__(self):
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.live.__exit__(*exc)

    def change(self, k: int, label: str, state, counts) -> None:
        self.states[k] = (label, state)
        if not self.live:
            detail = f" ({state.detail})" if state.detail else ""
            err.print(
                f"trial {k + 1}/{self.total} {label}: {state.state}{detail}", markup=False, highlight=False
            )

    def _table(self) -> Table:
        elapsed = time.monotonic() - self.started
        table = Table(title=f"sweep {self.name}: {self._tally()}  ({elapsed:,.0f} s)", title_justify="left")
        for column in ("trial", "values", "state", "where / why"):
            table.add_column(column, overflow="fold")
        order = sorted(self.states, key=lambda k: (self.states[k][1].state in ("cached", "done"), k))
        for k in order[:SHOWN_ROWS]:
            label, state = self.states[k]
            style = STYLE.get(state.state, "")
            table.add_row(str(k + 1), label, f"[{style}]{state.state}[/]", state.detail[:160], style=None)
        if len(order) > SHOWN_ROWS:
            table.caption = f"... and {len(order) - SHOWN_ROWS} more"
        return table

    def _tally(self) -> str:
        counted: dict[str, int] = {}
        for _, state in self.states.values():
            counted[state.state] = counted.get(state.state, 0) + 1
        return ", ".join(f"{n} {s}" for s, n in counted.items()) or "starting"


def decide_on_interrupt(choice: OnInterrupt, signal_name: str) -> str:
    """cancel or leave: asked on a terminal after Ctrl-C, else the flag's answer (ask -> leave)."""
    if choice is not OnInterrupt.ask:
        return choice.value
    if signal_name != "SIGINT" or not (sys.stdin.isatty() and err.is_terminal):
        return "leave"
    import signal

    from rich.prompt import Prompt

    signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C answers "leave"
    try:
        return Prompt.ask(
            "\nCtrl-C: [bold]cancel[/] the study's Slurm jobs, or [bold]leave[/] them running?",
            choices=["cancel", "leave"],
            default="leave",
            console=err,
        )
    except (EOFError, KeyboardInterrupt):
        return "leave"
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as the other signals are while dlbench unwinds


class SlurmSetup:
    """The resolved job options of an ``--executor slurm`` sweep and the device its trials will train on."""

    def __init__(self, options, device_kind: str):
        self.options, self.device_kind = options, device_kind

    @classmethod
    def resolve(cls, flags: dict, device: str | None) -> SlurmSetup:
        """Flags over the config file; refuses a device the jobs will not have, and a missing Slurm."""
        from dlbench.errors import UsageError
        from dlbench.sweep.slurm import check_slurm
        from dlbench.sweep.slurm_options import check_options, slurm_options

        options = slurm_options(flags)
        check_options(options)
        device = device or "auto"
        if device.startswith("cuda") and not options.gpus:
            raise UsageError(f"--device {device} needs a GPU in each job: add --slurm-gpus 1")
        if device == "mps":
            raise UsageError(
                "--device mps is an Apple GPU, which Slurm nodes do not have; use auto, cpu or cuda"
            )
        kind = "cpu" if device == "cpu" or not options.gpus else "cuda"
        check_slurm(options.partition)
        return cls(options, kind)


def run_on_slurm(
    plan, store, slurm: SlurmSetup, run: dict, detach: bool, on_interrupt: OnInterrupt, fusing=None
):
    """Submit and follow the study's jobs with a live view, each fused group (``fusing``, a
    :class:`dlbench.sweep.fused.Fuse`) one job; None when ``detach`` (the jobs run on)."""
    from dlbench.cli._errors import Interrupted
    from dlbench.commandline import shell_join
    from dlbench.sweep.slurm import cancel_jobs, node_local_warnings, run_slurm

    for line in node_local_warnings({"cache folder": store.root, "data folder": run["data_dir"]}):
        err.print(f"warning: {line}", markup=False, highlight=False)
    follow = shell_join(["dlbench", "status", plan.name])
    try:
        with StudyView(plan.name, len(plan.trials)) as view:
            counts, submitted = run_slurm(
                plan,
                store,
                slurm.options,
                detach=detach,
                on_change=view.change,
                fuse=fusing,
                on_note=lambda line: err.print(line, markup=False, highlight=False),
                **run,
            )
    except Interrupted as exc:
        if decide_on_interrupt(on_interrupt, str(exc)) == "cancel":
            ids = cancel_jobs(store, plan.name)
            err.print(
                f"cancelled {len(ids)} Slurm job(s) of sweep {plan.name}", markup=False, highlight=False
            )
        else:
            err.print(f"left the jobs running; follow them with: {follow}", markup=False, highlight=False)
        raise
    if detach:
        waiting = len(plan.trials) - counts.cached
        err.print(
            f"submitted {submitted} Slurm job(s); {counts.cached} trial(s) cached, {waiting} to come. "
            f"Follow them with: {follow} (or run this sweep command again)",
            markup=False,
            highlight=False,
        )
        return None
    return counts
