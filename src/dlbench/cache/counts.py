"""Recorded parameter-count tables: `count-params` records each table it prints, `report` reads them back.

One JSON file per command under ``<cache>/counts/``, named by a hash of the command line, so recording the same
command again replaces its table::

    {"title": ..., "command": ..., "columns": [...], "rows": [{column: value}, ...], "created": ISO time}

The report never rebuilds a model to count it: it shows what was recorded, with the command that made it.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from dlbench.atomic import write_text


def counts_file(folder: Path, command: str) -> Path:
    return Path(folder) / f"{hashlib.sha256(command.encode()).hexdigest()[:16]}.json"


def write_counts(folder: Path, title: str, command: str, columns: list[str], rows: list[dict]) -> Path:
    """Write one recorded table (JSON; values that JSON lacks, such as numpy numbers, as plain Python)."""
    record = {
        "title": title,
        "command": command,
        "columns": list(columns),
        "rows": [{c: row.get(c) for c in columns} for row in rows],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return write_text(counts_file(folder, command), json.dumps(record, indent=1, default=_plain))


def parse_counts(text: str) -> dict:
    """One recorded table; raises ValueError unless it has the fields :func:`write_counts` writes."""
    record = json.loads(text)
    if (
        not isinstance(record, dict)
        or not {"title", "command", "columns", "rows", "created"} <= record.keys()
    ):
        raise ValueError("not a recorded count table")
    if not isinstance(record["columns"], list) or not isinstance(record["rows"], list):
        raise ValueError("columns and rows must be lists")
    return record


def _plain(value):
    return value.item() if hasattr(value, "item") else str(value)
