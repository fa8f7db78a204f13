"""`dlbench report --study NAME`: the report of a study run, whose sections follow the study's own, in order.

Each section opens with its heading (the study's question) and text, then what its step produced, as recorded
by `dlbench study run`: a sweep's block (:func:`~dlbench.report.sections.sweeps.sweep_section`, as in the
general report, one heading level down), a recorded count table
(:func:`~dlbench.report.sections.params.params_section`) or recorded figures
(:func:`~dlbench.report.sections.figures.figures_section`). Recorded results only: nothing is trained or built.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from dlbench.report.blocks import Command, FileNames, Heading, P, Report
from dlbench.report.collect import Chosen, parsed_figure, recorded_figures, row_dicts, with_job_failures
from dlbench.report.sections.environment import environment_section
from dlbench.report.sections.figures import figures_section
from dlbench.report.sections.params import params_section
from dlbench.report.sections.sweeps import start_figures, sweep_section
from dlbench.sweep.study import Study


def build_study_report(store, name: str, data_dir: Path | None = None) -> Report:
    """The report of study run ``name`` (see the module's docstring).

    Raises:
        UnknownNameError: No study of that name was run with this cache.
    """
    record = store.get_study_run(name)
    runs_df = store.runs()
    runs = row_dicts(runs_df)
    wanted = {s.get("sweep") for s in record["sections"]} - {None}
    studies = {d["name"]: Study.from_dict(d) for d in store.sweeps() if d.get("name") in wanted}
    figures = {str(f["path"]): f for f in recorded_figures(store)}
    counts = {str(c["command"]): c for c in store.counts()}
    names, loaded = FileNames(), {}
    blocks: list = [P(str(record["text"]))] if record.get("text") else []
    if record.get("command"):
        blocks.append(Command(str(record["command"])))
    shown_runs: list[str] = []
    shown_figures = 0
    chosen = _chosen(store, record, studies, runs_df)
    started, close = start_figures(store, list(chosen.values()), runs)  # drawn in workers meanwhile
    drawn = dict(zip(chosen, started, strict=True))
    for i, section in enumerate(record["sections"], start=1):
        blocks.append(Heading(2, f"{i}. {section['heading']}"))
        if section.get("text"):
            blocks.append(P(str(section["text"])))
        if section.get("sweep"):
            sweep = chosen.get(section["sweep"])
            if sweep is None:
                blocks.append(
                    P(
                        f"The sweep {section['sweep']} has no finished trial in this cache; run the study again."
                    )
                )
                continue
            section_blocks = sweep_section(
                store, sweep, runs, names, data_dir, loaded, drawn[section["sweep"]]
            )
            blocks += _one_level_down(section_blocks)
            shown_runs += [k for k in sweep.summary.trials["key"] if k not in shown_runs]
        elif section.get("count"):
            blocks += _count_blocks(counts.get(str(section["count"].get("command"))))
        if section.get("figures"):
            found = [parsed_figure(figures[p]) for p in section["figures"] if p in figures]
            shown_figures += len(found)
            blocks += figures_section(found, names)[2:] if found else [P(_GONE)]
        if section.get("run") and section["run"] in runs and section["run"] not in shown_runs:
            shown_runs.append(section["run"])
    close()  # every figure was taken; an error above leaves the workers to exit with this process
    if shown_runs:
        blocks += environment_section([runs[k] for k in shown_runs], 0)
    report = Report(str(record["title"]), _header(record, len(shown_runs), shown_figures), blocks)
    report.stats = {"sweeps": sorted(wanted), "runs": len(shown_runs), "figures": shown_figures}
    return report


def _chosen(store, record: dict, studies: dict[str, Study], runs_df) -> dict[str, Chosen]:
    """{sweep name: its study, summary and table} for the record's sweeps that have a finished trial."""
    chosen = {}
    for section in record["sections"]:
        study = studies.get(section.get("sweep"))
        if study is None or study.name in chosen:
            continue
        summary = study.summary(runs_df)
        if len(summary.trials):
            chosen[study.name] = Chosen(study, summary, with_job_failures(store, study, runs_df))
    return chosen


_GONE = "The figure this section recorded is no longer in the cache's figure index; run the study again."


def _count_blocks(count: dict | None) -> list:
    """The recorded count table without the general report's heading and introduction."""
    if count is None:
        return [P("The count table this section recorded is no longer in the cache; run the study again.")]
    return params_section([], {}, [count])[2:]


def _one_level_down(blocks: list) -> list:
    """A block list made for the top of the report, nested under a study section's heading."""
    return [replace(b, level=b.level + 1) if isinstance(b, Heading) else b for b in blocks]


def _header(record: dict, runs: int, figures: int) -> str:
    n = len(record["sections"])
    scale = " at the --quick scale" if record.get("quick") else ""
    return (
        f"Study {record['name']}{scale} ({record.get('source', '')}): {n} section{'s' * (n != 1)}, "
        f"{runs} run{'s' * (runs != 1)}, {figures} recorded figure{'s' * (figures != 1)}"
    )
