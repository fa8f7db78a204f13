"""Render a report's blocks as Markdown; images link to a folder beside the report."""

from __future__ import annotations

import html

from dlbench.formatting import fmt_cell
from dlbench.report.blocks import Command, Details, Heading, Image, Para, Report, Table, anchors, contents

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
    lines += _md_toc(report)
    for b in report.blocks:
        lines += _md_block(b, figures_link)
    return "\n".join(lines).rstrip("\n") + "\n"


def _md_toc(report: Report) -> list[str]:
    """Contents: links to GitHub's heading anchors, each section with its subsections on the next line."""
    anchor = anchors(report.title, report.blocks)
    toc = contents(report)
    if not toc:
        return []
    lines = ["**Contents**", ""]
    for h2, subs in toc:
        lines.append(f"- [{md_escape(h2.text)}](#{anchor[id(h2)]})")
        if subs:
            lines[-1] += "  "  # a line break, then the subsections indented under the item
            lines.append("  " + " · ".join(f"[{md_escape(h.text)}](#{anchor[id(h)]})" for h in subs))
    return lines + [""]


def _md_block(b, figures_link: str | None) -> list[str]:
    if isinstance(b, Heading):
        return [f"{'#' * b.level} {md_escape(b.text)}", ""]
    if isinstance(b, Para):
        return [_md_para(b), ""]
    if isinstance(b, Table):
        return [_md_table(b), ""]
    if isinstance(b, Image):
        if figures_link is None:
            lines = [f"*(figure {md_escape(b.name)} left out on standard output: {md_escape(b.alt)})*"]
        else:
            lines = [f"![{md_escape(b.alt)}]({figures_link}/{b.name})"]
        return lines + ([f"*{md_escape(b.caption)}*"] if b.caption else []) + [""]
    if isinstance(b, Command):
        fence = "`" * max(3, max((len(s) for s in _backtick_runs(b.text)), default=0) + 1)
        return [f"{fence}sh", b.text, fence, ""]
    if isinstance(b, Details):  # GitHub renders Markdown inside <details> when blank lines surround it
        inner = [line for x in b.blocks for line in _md_block(x, figures_link)]
        return ["<details>", f"<summary>{html.escape(b.summary)}</summary>", "", *inner, "</details>", ""]
    raise TypeError(f"no Markdown for {type(b).__name__}")


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
