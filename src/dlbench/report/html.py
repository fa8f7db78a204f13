"""Render a report's blocks as one self-contained HTML page (inline CSS, images as data URIs)."""

from __future__ import annotations

import base64
import html

from dlbench.formatting import fmt_cell
from dlbench.report.blocks import Command, Details, Heading, Image, Para, Report, Table, anchors, contents

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1240px;margin:2rem auto;
padding:0 1.2rem;color:#1f2328;line-height:1.5;background:#fff}
h1{border-bottom:2px solid #d0d7de;padding-bottom:.3rem}
h2{border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2.4rem}
h3{margin-top:1.6rem}.header{color:#57606a}
.wide{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #d0d7de;padding:.2rem .45rem;text-align:left;white-space:nowrap}
th{white-space:normal;vertical-align:bottom;min-width:3.2em}
th{background:#f6f8fa}tr:nth-child(even) td{background:#fbfcfd}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#dafbe1;font-weight:600}
figure{margin:.6rem 0 1.2rem}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#57606a;font-size:.85rem}
pre{background:#f6f8fa;padding:.6rem .8rem;border-radius:6px;overflow-x:auto;font-size:.85rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f6f8fa;padding:0 .2rem}
pre code{padding:0}.note{color:#57606a;font-size:.85rem}
nav.toc{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.5rem 1rem;font-size:.9rem}
nav.toc ul{margin:.3rem 0;padding-left:1.2rem}.sub{font-size:.85rem}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
details{margin:1rem 0;border:1px solid #d0d7de;border-radius:6px;padding:.3rem .8rem}
summary{cursor:pointer;color:#57606a}
"""


def _html_para(p: Para) -> str:
    out = []
    for style, text in p.parts:
        if style == "code":
            out.append(f"<code>{html.escape(text)}</code>")
        elif style == "bold":
            out.append(f"<strong>{html.escape(text)}</strong>")
        else:
            parts = str(text).split("`")
            if len(parts) % 2 == 0:
                out.append(html.escape(text))
            else:
                out.append(
                    "".join(
                        html.escape(s) if i % 2 == 0 else f"<code>{html.escape(s)}</code>"
                        for i, s in enumerate(parts)
                    )
                )
    return "<p>" + "".join(out) + "</p>"


def _html_table(t: Table) -> str:
    if not t.rows:
        return '<p class="note">(no rows)</p>'
    numeric = {c: _is_numeric(t.rows, c) for c in t.columns}
    # headers break after underscores (best_<wbr>val_<wbr>acc): the table fits the page instead of scrolling
    head = "".join(f"<th>{html.escape(c).replace('_', '_<wbr>')}</th>" for c in t.columns)
    body = []
    for i, row in enumerate(t.rows):
        cells = "".join(
            ('<td class="num">' if numeric[c] else "<td>") + html.escape(fmt_cell(row.get(c), c)) + "</td>"
            for c in t.columns
        )
        attr = ' class="best" title="best by validation accuracy"' if i == t.best else ""
        body.append(f"<tr{attr}>{cells}</tr>")
    note = '<p class="note">Highlighted: best by validation accuracy.</p>' if t.best is not None else ""
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    return f'<div class="wide">{table}</div>{note}'


def _is_numeric(rows, column) -> bool:
    vals = [_plain(r.get(column)) for r in rows if r.get(column) is not None]
    return bool(vals) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)


def render_html(report: Report) -> str:
    """One self-contained HTML page: inline CSS, images as base64 data URIs, every string escaped."""
    anchor = anchors(report.title, report.blocks)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        f'<p class="header">{html.escape(report.header)}</p>',
        _html_toc(report, anchor),
    ]
    out += [_html_block(b, anchor) for b in report.blocks]
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _html_toc(report: Report, anchor: dict[int, str]) -> str:
    """Contents: each section, with its subsections on the same line (a long list would bury the results)."""
    toc = contents(report)
    if not toc:
        return ""
    items = []
    for h2, subs in toc:
        inner = " &middot; ".join(_link(h, anchor) for h in subs)
        items.append(
            f"<li>{_link(h2, anchor)}" + (f'<br><span class="sub">{inner}</span>' if inner else "") + "</li>"
        )
    return f'<nav class="toc"><strong>Contents</strong><ul>{"".join(items)}</ul></nav>'


def _link(h: Heading, anchor: dict[int, str]) -> str:
    return f'<a href="#{html.escape(anchor[id(h)])}">{html.escape(h.text)}</a>'


def _html_block(b, anchor: dict[int, str]) -> str:
    if isinstance(b, Heading):
        return f'<h{b.level} id="{html.escape(anchor[id(b)])}">{html.escape(b.text)}</h{b.level}>'
    if isinstance(b, Para):
        return _html_para(b)
    if isinstance(b, Table):
        return _html_table(b)
    if isinstance(b, Image):
        data = base64.b64encode(b.png).decode("ascii")
        cap = f"<figcaption>{html.escape(b.caption)}</figcaption>" if b.caption else ""
        return f'<figure><img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}">{cap}</figure>'
    if isinstance(b, Command):
        return f"<pre><code>{html.escape(b.text)}</code></pre>"
    if isinstance(b, Details):
        inner = "\n".join(_html_block(x, anchor) for x in b.blocks)
        return f"<details><summary>{html.escape(b.summary)}</summary>\n{inner}\n</details>"
    raise TypeError(f"no HTML for {type(b).__name__}")


def _plain(value):
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value
