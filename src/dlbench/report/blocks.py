"""The report's model, independent of the output format: headings, paragraphs, tables, images, commands.

Sections build lists of blocks; :mod:`dlbench.report.markdown` and :mod:`dlbench.report.html` render them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from dlbench.paths import safe_name


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    parts: list[tuple[str, str]]  # (style, text); style: "text" | "code" | "bold"


@dataclass
class Table:
    columns: list[str]
    rows: list[dict]
    best: int | None = None  # index of the row to mark


@dataclass
class Image:
    name: str  # file name in the figures folder (already safe)
    png: bytes
    alt: str
    caption: str = ""


@dataclass
class Command:
    text: str


@dataclass
class Report:
    title: str
    header: str
    blocks: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)  # sweeps (names), runs, figures: for the command's last line

    def images(self) -> list[Image]:
        return [b for b in self.blocks if isinstance(b, Image)]


def P(*parts) -> Para:
    """``P("text ", ("code", "x"), " more")``: plain strings are text."""
    return Para([p if isinstance(p, tuple) else ("text", p) for p in parts])


class FileNames:
    """Unique, safe file names for the figures folder (names come from user-chosen sweep names)."""

    def __init__(self):
        self.used: set[str] = set()

    def __call__(self, stem: str, what: str) -> str:
        base = safe_name(stem, 80)  # one to one: two sweep names never share a base
        name = f"{base}-{what}.png"
        if name in self.used:
            name = f"{base}-{hashlib.sha1(stem.encode()).hexdigest()[:8]}-{what}.png"
        self.used.add(name)
        return name
