"""All rendering goes through one ``Output``: rich tables for people, CSV/JSON/Markdown for programs.

``--format`` is resolved once, when a command builds its ``Output``; commands then say *what* they show
(``table``, ``result``, ``note``, ``warning``) and never branch on the format themselves. Every machine format
prints exactly one document on stdout; lines meant for people go to stdout in table format and to stderr
otherwise, so ``dlbench ... -f json | jq`` always parses.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from rich.console import Console
from rich.table import Table as RichTable

from dlbench.cli._fit import Column, fit, header_text
from dlbench.formatting import fmt_cell, markdown_table


def _width(stream) -> int | None:
    """COLUMNS when set (even when piped); else the terminal's width, or 200 off a terminal (CI logs, files)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if stream.isatty() else 200


out = Console(soft_wrap=True, width=_width(sys.stdout))
err = Console(stderr=True, soft_wrap=True, width=_width(sys.stderr))


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"
    markdown = "markdown"


@dataclass
class Table:
    """Rows (dicts) to show, in ``columns`` order (default: the first row's keys)."""

    rows: Sequence[dict]
    columns: Sequence[str] | None = None
    title: str | None = None
    highlight: int | None = None  # a row index shown in bold green (the best)
    name: str = "rows"  # the field holding this table when several make one JSON document
    # In a narrow terminal: columns never left out (default: the first), and those left out first (then from
    # the right). No value is ever cut; `--format csv` keeps every column.
    keep: Sequence[str] | None = None
    drop_order: Sequence[str] = ()

    def column_names(self) -> list[str]:
        return list(self.columns or (self.rows[0].keys() if self.rows else []))


class Output:
    """The chosen ``--format``, resolved once; every line a command prints goes through here."""

    def __init__(self, fmt: Format | str = Format.table):
        self.format = Format(fmt)
        self._tables_shown = 0

    @property
    def for_people(self) -> bool:
        return self.format is Format.table

    def table(self, rows: Sequence[dict], columns: Sequence[str] | None = None, **kw) -> None:
        """One table as the command's result, in the chosen format (keywords: ``title``, ``highlight``)."""
        self.tables(Table(rows, columns, **kw))

    def tables(self, *tables: Table) -> None:
        """Several tables as ONE document: a JSON object with a field per table (``Table.name``), one CSV with
        a leading ``table`` column, Markdown tables under ``###`` headings; in table format, one after another."""
        if len(tables) == 1 and not self.for_people:
            self._write(_render(tables[0], self.format))
        elif self.format is Format.json:
            self._write(_dumps({t.name: [_record(t, r) for r in t.rows] for t in tables}))
        elif self.format is Format.csv:
            merged = Table([{"table": t.name, **r} for t in tables for r in t.rows], _union(tables))
            self._write(_render(merged, Format.csv))
        elif self.format is Format.markdown:
            self._write(
                "\n\n".join(
                    f"### {t.title or t.name}\n\n{_render(t, Format.markdown).rstrip()}" for t in tables
                )
            )
        else:
            for t in tables:
                if self._tables_shown:
                    out.print()
                table, dropped = _rich_table(t, out.width)
                out.print(table)
                if dropped:
                    out.print(  # wrapped at spaces: a column's name is never broken
                        f"left out to fit {out.width} columns: {', '.join(dropped)} "
                        "(--format csv shows every column)",
                        highlight=False,
                        markup=False,
                        soft_wrap=False,
                    )
                self._tables_shown += 1

    def detail(self, rows: Sequence[dict], columns: Sequence[str] | None = None, **kw) -> None:
        """A table for people only (table format): machine formats leave it out, their result carries the facts."""
        if self.for_people:
            self.tables(Table(rows, columns, **kw))

    def result(self, obj: dict, *tables: Table, lines: Sequence[str] = ()) -> None:
        """The command's result: ``obj`` as one JSON document; in the other formats ``tables`` (as one
        document) and then the plain ``lines`` (paths, printed verbatim)."""
        if self.format is Format.json:
            self._write(_dumps(obj))
            return
        if tables:
            self.tables(*tables)
        for line in lines:
            out.out(line, highlight=False)

    def note(self, text: str, *, markup: bool = False) -> None:
        """A line for people: stdout in table format, stderr otherwise. ``markup``: rich ``[bold]`` tags."""
        console = out if self.for_people else err
        if markup:
            console.print(text, highlight=False)
        else:
            console.out(text, highlight=False)  # verbatim: a path or a command must come out as it is

    def warning(self, text: str) -> None:
        """Something the user should know about the result (``note: ...``), always on stderr."""
        err.out(f"note: {text}", highlight=False)

    @staticmethod
    def _write(text: str) -> None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _render(t: Table, fmt: Format) -> str:
    columns = t.column_names()
    if fmt is Format.json:
        return _dumps([_record(t, r) for r in t.rows])
    if fmt is Format.markdown:
        return markdown_table(t.rows, columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in t.rows:
        writer.writerow(["/".join(map(str, v)) if isinstance(v, list) else v for v in _record(t, r).values()])
    return buf.getvalue()


def _rich_table(t: Table, width: int) -> tuple[RichTable, list[str]]:
    """The table fitted to ``width`` (see ``_fit``) and the names of the columns left out."""
    names = t.column_names()
    keep = list(names[:1] if t.keep is None else t.keep)
    numeric = {c: _numeric(t.rows, c) for c in names}
    columns = [
        Column(c, [fmt_cell(r.get(c), c) for r in t.rows], whole=numeric[c] or c in keep) for c in names
    ]
    chosen = fit(columns, width, keep, t.drop_order)
    table = RichTable(title=t.title, title_justify="left", header_style="bold")
    if chosen.total > width:  # kept columns alone are wider than the terminal: print them whole regardless
        table.width = chosen.total
    for i, w in zip(chosen.shown, chosen.widths, strict=True):
        c = columns[i]
        table.add_column(
            header_text(c, w), justify="right" if numeric[c.name] else "left", width=w, overflow="fold"
        )
    for row in range(len(t.rows)):
        table.add_row(
            *[columns[i].cells[row] for i in chosen.shown], style="bold green" if row == t.highlight else None
        )
    return table, chosen.dropped


def _record(t: Table, row: dict) -> dict:
    return {c: _plain(row.get(c)) for c in t.column_names()}


def _union(tables: Sequence[Table]) -> list[str]:
    columns = ["table"]
    for t in tables:
        columns += [c for c in t.column_names() if c not in columns]
    return columns


def _dumps(obj) -> str:
    return json.dumps(obj, indent=2, default=_plain)


def _plain(value):
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy / pandas scalars
        return value.item()
    return value


def _numeric(rows, column) -> bool:
    vals = [r.get(column) for r in rows if r.get(column) is not None]
    return bool(vals) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)
