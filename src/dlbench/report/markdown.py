"""Render a report's blocks as Markdown; images link to a folder beside the report."""

from __future__ import annotations

from dlbench.formatting import fmt_cell
from dlbench.report.blocks import Command, Heading, Image, Para, Report, Table

_MD_SPECIAL = "\\`*_[]<>|#&"


def md_escape(text: str) -> str:
    """Markdown-safe text: specials backslash-escaped, except intraword underscores (inert in GFM and common
    in our column names)."""
    text = str(text).replace("\n", " ")
    out = []
    for i, c in enumerate(text):
        inner = c == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
        out.append("\\" + c if c in _MD_SPECIAL and not inner else c)
    return "".join(out)


def _md_code(text: str) -> str:
    text = str(text).replace("\n", " ")
    run = max((len(s) for s in _backtick_runs(text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _backtick_runs(text: str) -> list[str]:
    runs, cur = [], ""
    for c in text:
        if c == "`":
            cur += c
        elif cur:
            runs.append(cur)
            cur = ""
    return runs + ([cur] if cur else [])


def _md_para(p: Para) -> str:
    out = []
    for style, text in p.parts:
        if style == "code":
            out.append(_md_code(text))
        elif style == "bold":
            out.append(f"**{md_escape(text)}**")
        else:
            out.append(_md_text(text))
    return "".join(out)


def _md_text(text: str) -> str:
    """Plain text with `code` spans kept as code (our own sentences use backticks for commands)."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # unbalanced: escape everything
        return md_escape(text)
    return "".join(md_escape(s) if i % 2 == 0 else _md_code(s) for i, s in enumerate(parts))


def render_markdown(report: Report, figures_link: str | None) -> str:
    """Markdown text; images link to ``figures_link/<name>`` (a relative folder), or, with None (standard
    output, no folder beside it), are named as left out."""
    lines = [f"# {md_escape(report.title)}", "", md_escape(report.header), ""]
    for b in report.blocks:
        if isinstance(b, Heading):
            lines += [f"{'#' * b.level} {md_escape(b.text)}", ""]
        elif isinstance(b, Para):
            lines += [_md_para(b), ""]
        elif isinstance(b, Table):
            lines += [_md_table(b), ""]
        elif isinstance(b, Image):
            if figures_link is None:
                lines.append(
                    f"*(figure {md_escape(b.name)} left out on standard output: {md_escape(b.alt)})*"
                )
            else:
                lines.append(f"![{md_escape(b.alt)}]({figures_link}/{b.name})")
            lines += ([f"*{md_escape(b.caption)}*"] if b.caption else []) + [""]
        elif isinstance(b, Command):
            fence = "`" * max(3, max((len(s) for s in _backtick_runs(b.text)), default=0) + 1)
            lines += [f"{fence}sh", b.text, fence, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _md_table(t: Table) -> str:
    if not t.rows:
        return "*(no rows)*"
    lines = [
        "| " + " | ".join(md_escape(c) for c in t.columns) + " |",
        "|" + "|".join("---" for _ in t.columns) + "|",
    ]
    for i, row in enumerate(t.rows):
        cells = [md_escape(fmt_cell(row.get(c), c)) for c in t.columns]
        if i == t.best:
            cells = [f"**{c}**" if c else c for c in cells]
            cells[0] = f"{cells[0]} ★"
        lines.append("| " + " | ".join(cells) + " |")
    if t.best is not None:
        lines.append("")
        lines.append("★ best by validation accuracy")
    return "\n".join(lines)
