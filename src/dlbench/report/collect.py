"""What a report shows, read from the cache through :class:`~dlbench.cache.Store` only: runs rows, studies,
recorded figures and recorded count-params tables, narrowed by the user's filters.

Nothing here trains, builds a model or draws: the sections turn what is collected into blocks.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from dlbench.errors import UnknownNameError, UsageError
from dlbench.sweep.study import Study, Summary


@dataclass
class Selection:
    """The report's filters: sweep names, model, dataset, and ``since`` (ISO date: results created from then)."""

    sweeps: list[str] | None = None
    model: str | None = None
    dataset: str | None = None
    since: str | None = None

    def describe(self) -> str:
        parts = [f"--sweep {s}" for s in self.sweeps or []]
        parts += [f"--model {self.model}"] if self.model else []
        parts += [f"--dataset {self.dataset}"] if self.dataset else []
        parts += [f"--since {self.since}"] if self.since else []
        return " ".join(parts)


@dataclass
class Chosen:
    """One study in the report, with the summary of its trials that are in the report.

    ``table`` is the summary the Results table shows: with the trials whose Slurm job ended without storing
    a run (their status, reason and log; not runs of the cache, so no figure draws them), else ``summary``.
    """

    study: Study
    summary: Summary
    table: Summary | None = None


@dataclass
class Collected:
    """Everything one report shows.

    Attributes:
        root: The cache folder.
        studies: The studies shown, by name, each with at least one trial in ``runs``.
        runs: {run key: runs row (NaN read as None)} of the runs created since ``--since`` (all otherwise).
        figures: Recorded figures shown (``meta`` parsed), by kind, time and path.
        counts: Recorded count-params tables shown: {title, command, columns, rows, created}, oldest first.
        outside: How many runs in the cache belong to no study.
    """

    root: Path
    studies: list[Chosen] = field(default_factory=list)
    runs: dict[str, dict] = field(default_factory=dict)
    figures: list[dict] = field(default_factory=list)
    counts: list[dict] = field(default_factory=list)
    outside: int = 0

    def in_scope(self) -> list[str]:
        """Run keys of the studies' trials in the report, each once, in order."""
        return list(dict.fromkeys(k for c in self.studies for k in c.summary.trials["key"]))


def collect(store, selection: Selection | None = None) -> Collected:
    """Read the cache and pick what the report shows.

    Raises:
        UsageError: The cache is empty, or nothing in it matches the filters.
        UnknownNameError: A ``--sweep`` name the cache does not hold.
    """
    sel = selection or Selection()
    since = since_stamp(sel.since)
    runs = store.runs()
    figures = recorded_figures(store)
    counts = recorded_counts(store)
    if runs.empty and not figures and not counts:
        raise UsageError(f"no results in the cache at {store.root}; run `dlbench sweep ...` first")
    studies = [Study.from_dict(d) for d in store.sweeps()]
    by_name = {s.name: s for s in studies}
    for name in sel.sweeps or []:
        if name not in by_name:
            raise UnknownNameError("sweep", name, list(by_name), hint="see the names `dlbench sweep` printed")
    recent = runs if since is None or runs.empty else runs[runs["created"] >= since]
    chosen = []
    for name in sorted(by_name):
        study = by_name[name]
        if _wanted(study, sel):
            summary = study.summary(recent)
            if len(summary.trials):
                chosen.append(Chosen(study, summary, with_job_failures(store, study, recent)))
    shown = _select_figures(figures, sel, since, {c.study.model for c in chosen})
    shown_counts = [] if sel.sweeps else [c for c in counts if since is None or str(c["created"]) >= since]
    if not chosen and not shown and not shown_counts:
        if sel.describe():
            raise UsageError(
                f"nothing in the cache at {store.root} matches {sel.describe()}; see `dlbench runs`"
            )
        raise UsageError(f"no finished sweep in the cache at {store.root}; run `dlbench sweep ...` first")
    in_studies = {k for s in studies for k in s.keys}
    return Collected(
        store.root,
        chosen,
        row_dicts(recent),
        shown,
        shown_counts,
        outside=len(set(runs["key"]) - in_studies) if len(runs) else 0,
    )


def with_job_failures(store, study: Study, runs: pd.DataFrame) -> Summary | None:
    """The study's summary with the failed rows of its Slurm jobs (None when no job of it failed)."""
    from dlbench.sweep.slurm_jobs import recorded_failures

    failed = recorded_failures(store.jobs(study.name), set(runs["key"]) if len(runs) else set())
    return study.summary(pd.concat([runs, pd.DataFrame(failed)], ignore_index=True)) if failed else None


def recorded_figures(store) -> list[dict]:
    """The figure index's rows (kernel and equivariance figures), as dicts."""
    return store.figures().to_dict("records")


def recorded_counts(store) -> list[dict]:
    """Tables recorded by `dlbench count-params`, oldest first."""
    return store.counts()


def since_stamp(since: str | None) -> str | None:
    """``--since`` as the cache's ``created`` format, or a one-line UsageError."""
    if not since:
        return None
    try:
        return datetime.fromisoformat(since.strip()).strftime("%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise UsageError(
            f"--since must be an ISO date such as 2025-01-31 or 2025-01-31T14:00, got '{since}'"
        ) from None


def _wanted(study: Study, sel: Selection) -> bool:
    return (
        (not sel.sweeps or study.name in sel.sweeps)
        and (not sel.model or study.model == sel.model)
        and (not sel.dataset or study.dataset == sel.dataset)
    )


def _plain(value):
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def row_dicts(df: pd.DataFrame) -> dict[str, dict]:
    """{run key: runs row as a dict, NaN read as None}."""
    return {r["key"]: {k: _plain(v) for k, v in r.items()} for r in df.to_dict("records")} if len(df) else {}


def parsed_figure(figure: dict) -> dict:
    """A figure index entry with its ``meta`` JSON parsed (an unreadable one as empty)."""
    try:
        meta = json.loads(figure.get("meta") or "{}")
    except ValueError:
        meta = {}
    return {**figure, "meta": meta}


def _select_figures(figures: list[dict], sel: Selection, since: str | None, study_models: set) -> list[dict]:
    """Figures created since ``since``, of the selected model (of the selected sweeps' models with --sweep)."""
    out = []
    models = {sel.model} if sel.model else (study_models if sel.sweeps else None)
    for f in map(parsed_figure, figures):
        meta = f["meta"]
        if since and str(f.get("created", "")) < since:
            continue
        if models is not None and meta.get("model") not in models:
            continue
        if sel.dataset and meta.get("dataset") not in (None, sel.dataset):
            continue
        out.append(f)
    return sorted(out, key=lambda f: (str(f["kind"]), str(f["created"]), str(f["path"])))
