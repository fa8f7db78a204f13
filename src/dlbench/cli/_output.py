"""All rendering: rich tables for people, CSV/JSON/Markdown for programs. Results go to stdout,
progress and diagnostics to stderr."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from collections.abc import Sequence
from enum import Enum

from rich.console import Console
from rich.table import Table

from dlbench.formatting import fmt_cell, markdown_table

# When piped (CI logs, files), rich would assume 80 columns and squeeze the tables: give them room.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


def _plain(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy / pandas scalars
        return value.item()
    return value


def render_rows(
    rows: Sequence[dict],
    columns: Sequence[str] | None = None,
    fmt: Format | str = Format.table,
    title: str | None = None,
    highlight: int | None = None,
) -> None:
    """Print ``rows`` (dicts) in the chosen format; ``highlight`` marks one row index (the best)."""
    fmt = Format(fmt)
    columns = list(columns or (rows[0].keys() if rows else []))
    if fmt is Format.json:
        sys.stdout.write(json.dumps([{c: _plain(r.get(c)) for c in columns} for r in rows], indent=2) + "\n")
    elif fmt is Format.csv:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow(
                [
                    "/".join(map(str, v)) if isinstance(v, tuple | list) else v
                    for v in (_plain(r.get(c)) for c in columns)
                ]
            )
        sys.stdout.write(buf.getvalue())
    elif fmt is Format.markdown:
        sys.stdout.write(markdown_table(rows, columns) + "\n")
    else:
        table = Table(title=title, title_justify="left", header_style="bold")
        for c in columns:
            table.add_column(c, justify="right" if _numeric(rows, c) else "left")
        for i, r in enumerate(rows):
            table.add_row(
                *[fmt_cell(r.get(c), c) for c in columns], style="bold green" if i == highlight else None
            )
        out.print(table)


def print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=_plain) + "\n")


def _numeric(rows, column) -> bool:
    vals = [r.get(column) for r in rows if r.get(column) is not None]
    return bool(vals) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)
