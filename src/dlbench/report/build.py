"""`dlbench report`: one Markdown or HTML file that writes up the recorded results in the cache.

The report is built in steps, one module each: :mod:`~dlbench.report.collect` reads the cache (runs rows,
studies, recorded figures and count tables, through :class:`~dlbench.cache.Store` only); the modules of
:mod:`dlbench.report.sections` turn that into blocks (:mod:`~dlbench.report.blocks`: headings, paragraphs,
tables, images, commands); :mod:`~dlbench.report.markdown` and :mod:`~dlbench.report.html` render the blocks;
:mod:`~dlbench.report.write` writes the files. The report reads recorded results only: it never builds a model
and never trains.

Determinism: sweeps are ordered by name, figures by kind, time and path, and the only time in the body is the
newest ``created`` stamp among the results shown, so the same cache always gives the same bytes.

Speed: the ``runs`` rows are read once; per-epoch, per-step and gradient tables are read only for the trials
drawn (at most ``MAX_CURVES`` per sweep), predictions only for the best and worst trial.
"""

from __future__ import annotations

from pathlib import Path

from dlbench.report.blocks import FileNames, Report
from dlbench.report.collect import Collected, Selection, collect
from dlbench.report.sections.environment import environment_section
from dlbench.report.sections.figures import figures_section
from dlbench.report.sections.params import params_section
from dlbench.report.sections.sweeps import start_figures, sweep_section


def build_report(store, selection: Selection | None = None, data_dir: Path | None = None) -> Report:
    """Collect the cache's results and build the report's blocks (figures drawn to PNG bytes, nothing written).

    Args:
        store: The :class:`~dlbench.cache.Store` to read.
        selection: Filters: sweep names, model, dataset, ``since`` (ISO date; results created from then on).
        data_dir: Where datasets live, for the test images of the best-vs-worst comparison.

    Raises:
        UsageError: The cache is empty, or nothing in it matches the filters.
    """
    sel = selection or Selection()
    found = collect(store, sel)
    report = Report("dlbench report", _header(found, sel))
    in_scope = found.in_scope()
    report.stats = {
        "sweeps": [c.study.name for c in found.studies],
        "runs": len(in_scope),
        "figures": len(found.figures),
    }
    names = FileNames()
    loaded: dict = {}  # test images per dataset config, shared by the sweeps
    figures, close = start_figures(store, found.studies, found.runs)  # drawn in workers meanwhile
    try:
        for chosen, drawn in zip(found.studies, figures, strict=True):
            report.blocks += sweep_section(store, chosen, found.runs, names, data_dir, loaded, drawn)
    finally:
        close()
    if found.studies or found.counts:
        report.blocks += params_section([c.study for c in found.studies], found.runs, found.counts)
    if found.figures:
        report.blocks += figures_section(found.figures, names)
    if in_scope:
        report.blocks += environment_section([found.runs[k] for k in in_scope], found.outside)
    return report


def _header(found: Collected, sel: Selection) -> str:
    """One line: how much the report shows, up to the newest result's time (the only time in the body)."""
    in_scope = found.in_scope()
    stamps = [found.runs[k]["created"] for k in in_scope] + [str(f["created"]) for f in found.figures]
    stamps += [str(c["created"]) for c in found.counts]
    n, runs, figs = len(found.studies), len(in_scope), len(found.figures)
    text = (
        f"Results up to {max(stamps)}: {n} sweep{'s' * (n != 1)}, {runs} run{'s' * (runs != 1)}, "
        f"{figs} recorded figure{'s' * (figs != 1)}"
    )
    if found.counts:
        text += f", {len(found.counts)} count table{'s' * (len(found.counts) != 1)}"
    if sel.describe():
        text += f" (filter: {sel.describe()})"
    return text
