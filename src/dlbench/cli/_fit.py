"""Fit a table into the terminal without cutting a value: wrap text, break headers, drop columns, in that order.

rich left alone squeezes every column and cuts what does not fit (``0.40…``, a key of 4 characters). Here the
widths are decided first: a number and a column the caller keeps are never narrower than their widest cell;
other text columns wrap between words; headers break after their underscores (``best_`` / ``val_acc``); when even that is
too wide, whole columns are left out (the caller's ``drop_order`` first, then from the right, never a kept
column) and named in one line under the table. Kept columns wider than the terminal are printed whole anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len


@dataclass
class Column:
    """One column's cells as shown, and whether they must stay whole."""

    name: str
    cells: list[str]
    whole: bool  # numbers and kept columns: never narrower than the widest cell (others wrap between words)

    def header_parts(self) -> list[str]:
        """The header's pieces, each ending at an underscore: where it may break."""
        parts = self.name.split("_")
        return [p + "_" for p in parts[:-1]] + [parts[-1]]

    def min_width(self) -> int:
        header = max(cell_len(p) for p in self.header_parts())
        if self.whole:
            return max(header, *(cell_len(c) for c in self.cells), 1)
        # Text wraps at spaces but a word is never broken: a path or a date that does not fit is left out instead.
        return max(header, *(cell_len(w) for c in self.cells for w in c.split()), 1)

    def full_width(self) -> int:
        return max([cell_len(self.name), *(cell_len(c) for c in self.cells)])


@dataclass
class Fit:
    """The columns to show (indices, in order), the width of each, and the names left out."""

    shown: list[int]
    widths: list[int]
    dropped: list[str]

    @property
    def total(self) -> int:
        return table_width(self.widths)


def table_width(widths: Sequence[int]) -> int:
    """Width of a rich table with the default box: one space of padding each side, a rule between columns."""
    return sum(widths) + 3 * len(widths) + 1


def fit(columns: Sequence[Column], width: int, keep: Sequence[str], drop_order: Sequence[str]) -> Fit:
    """Choose the columns and their widths so the table fits ``width`` characters, dropping as little as it can."""
    shown = list(range(len(columns)))
    droppable = [c for c in drop_order if c not in keep]
    droppable += [c.name for c in reversed(columns) if c.name not in keep and c.name not in droppable]
    index = {c.name: i for i, c in enumerate(columns)}
    dropped: list[str] = []
    minimum = [c.min_width() for c in columns]
    while table_width([minimum[i] for i in shown]) > width and droppable:
        name = droppable.pop(0)
        if name in index and index[name] in shown:
            shown.remove(index[name])
            dropped.append(name)
    widths = [minimum[i] for i in shown]
    full = [columns[i].full_width() for i in shown]
    spare = width - table_width(widths)
    # The room left widens the columns closest to their full width first: as many headers and cells as
    # possible read on one line.
    for j in sorted(range(len(widths)), key=lambda j: full[j] - widths[j]):
        grow = max(0, min(spare, full[j] - widths[j]))
        widths[j] += grow
        spare -= grow
    return Fit(shown, widths, dropped)


def header_text(column: Column, width: int) -> str:
    """The header in lines of at most ``width`` characters, broken only after an underscore."""
    lines = [""]
    for part in column.header_parts():
        if lines[-1] and cell_len(lines[-1] + part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)
