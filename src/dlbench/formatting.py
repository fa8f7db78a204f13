"""How values read in tables, shared by the CLI's tables and the report (neither imports the other)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def fmt_cell(value, column: str = "") -> str:
    """Integers with thousands separators, accuracies to 4 decimals, other floats to 4 significant digits."""
    if value is None:
        return "-"
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy / pandas scalars
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if "acc" in column:
            return f"{value:.4f}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}"
    if isinstance(value, tuple | list):
        return "/".join(str(v) for v in value)
    return str(value)


def markdown_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        cells = [fmt_cell(row.get(c), c).replace("|", "\\|") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
