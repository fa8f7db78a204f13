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


@dataclass
class Details:
    """A collapsed block (HTML ``<details>``; GitHub renders the same in Markdown): ``summary`` is its one
    visible line, ``blocks`` (paragraphs, tables) what opens below it."""

    summary: str
    blocks: list = field(default_factory=list)


def slug(text: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens (``Sweep lr: cnn`` ->
    ``sweep-lr-cnn``), so the Markdown table of contents links resolve where GitHub renders the file."""
    kept = "".join(c for c in text.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def anchors(title: str, blocks: list) -> dict[int, str]:
    """{id(heading block): unique anchor}; repeats get ``-1``, ``-2``, ... as on GitHub (the title is first)."""
    seen = {slug(title): 1}
    out = {}
    for b in blocks:
        if isinstance(b, Heading):
            base = slug(b.text)
            n = seen.get(base, 0)
            out[id(b)] = base if n == 0 else f"{base}-{n}"
            seen[base] = n + 1
            seen.setdefault(out[id(b)], 1)
    return out


def contents(report: Report) -> list[tuple[Heading, list[Heading]]]:
    """The table of contents: each level-2 heading with the level-3 headings under it."""
    toc: list[tuple[Heading, list[Heading]]] = []
    for b in report.blocks:
        if isinstance(b, Heading) and b.level == 2:
            toc.append((b, []))
        elif isinstance(b, Heading) and b.level == 3 and toc:
            toc[-1][1].append(b)
    return toc
