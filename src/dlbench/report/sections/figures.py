"""Figures recorded by `dlbench visualize-kernels` and `dlbench equivariance`, with their commands."""

from __future__ import annotations

from pathlib import Path

from dlbench.report.blocks import Command, FileNames, Heading, Image, P, Table

PNG = b"\x89PNG\r\n\x1a\n"


def figures_section(figures: list[dict], names: FileNames) -> list:
    """Blocks for the recorded figures (``meta`` already parsed), oldest first within each kind."""
    blocks: list = [Heading(2, "Kernel and equivariance figures")]
    blocks.append(
        P("Figures recorded by `dlbench visualize-kernels` and `dlbench equivariance`, oldest first.")
    )
    for f in figures:
        blocks.append(Heading(3, f"{f['kind']}: {f['title']}"))
        path = Path(str(f["path"]))
        try:
            png = path.read_bytes()
        except OSError:
            png = None
        if png and png[:8] == PNG:
            stem = path.stem if path.stem.startswith(str(f["kind"])) else f"{f['kind']}-{path.stem}"
            blocks.append(Image(names(stem, "figure"), png, str(f["title"])))
        else:
            blocks.append(
                P(f"The figure file {path} is missing or not a PNG; the command below draws it again.")
            )
        rows = f["meta"].get("rows") if isinstance(f["meta"], dict) else None
        if f["kind"] == "equivariance" and isinstance(rows, list) and rows:
            cols = [c for c in ("transform", "measure", "error", "full_error", "margin") if c in rows[0]]
            blocks.append(Table(cols, [{c: r.get(c) for c in cols} for r in rows]))
        if f.get("command"):
            blocks.append(Command(str(f["command"])))
    return blocks
