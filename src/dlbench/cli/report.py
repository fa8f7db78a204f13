"""`dlbench report`: the cache written up as Markdown (figures beside it) or one self-contained HTML file."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from dlbench.cli._options import CacheDirOpt, DataDirOpt
from dlbench.cli._output import err, out


class ReportFormat(str, Enum):
    markdown = "markdown"
    html = "html"


def report(
    out_path: Path = typer.Option(
        None,
        "--out",
        "-o",
        help="Report file: .md (figures in <stem>_files/ beside it) or .html (one file), or - for standard "
        "output (HTML with its figures; Markdown without them). Only a regular file is ever replaced. "
        "Default: report.md, or report.html with --format html.",
    ),
    fmt: ReportFormat = typer.Option(None, "--format", "-f", help="markdown | html (default: from --out)."),
    sweeps: list[str] = typer.Option(None, "--sweep", help="Only this sweep (repeatable)."),
    model: str = typer.Option(None, "--model", "-m", help="Only sweeps and figures of this model."),
    dataset: str = typer.Option(None, "--dataset", "-d", help="Only sweeps and figures on this dataset."),
    since: str = typer.Option(None, "--since", help="Only runs and figures created since this ISO date."),
    study: str = typer.Option(
        None, "--study", help="The report of a study run (`dlbench study run`): its sections, in order."
    ),
    data_dir: Path = DataDirOpt,
    cache_dir: Path = CacheDirOpt,
) -> None:
    """Write up the cached sweeps, parameter counts and figures, with the commands that reproduce them."""
    from dlbench import paths
    from dlbench.cache import Store
    from dlbench.report.collect import Selection
    from dlbench.report.write import STDOUT, report_text, write_report

    fmt_name = fmt.value if fmt else None
    target = Path(out_path) if out_path else Path("report.html" if fmt_name == "html" else "report.md")
    store = Store(paths.cache_dir(cache_dir))
    selection = Selection(sweeps or None, model, dataset, since)
    if study is not None and selection.describe():
        from dlbench.errors import UsageError

        raise UsageError(f"--study shows the whole study; drop {selection.describe()}")
    if str(target) == STDOUT:
        text, left_out = report_text(
            store, fmt_name, selection, data_dir=paths.data_dir(data_dir), study=study
        )
        sys.stdout.write(text)
        if left_out:
            err.out(
                f"note: {left_out} figures left out of Markdown on standard output; "
                "write to a .md file or use --format html to keep them",
                highlight=False,
            )
        return
    done = write_report(store, target, fmt_name, selection, data_dir=paths.data_dir(data_dir), study=study)
    figs = f", {len(done.figures)} figures in {done.figures_dir}" if done.figures_dir else ""
    n = len(done.sweeps)
    out.print(
        f"wrote {done.path} ({done.fmt}: {n} sweep{'s' * (n != 1)}, {done.runs} runs{figs})", highlight=False
    )
