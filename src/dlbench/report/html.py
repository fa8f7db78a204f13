"""Render a report's blocks as one self-contained HTML page (inline CSS, images as data URIs)."""

from __future__ import annotations

import base64
import html

from dlbench.formatting import fmt_cell
from dlbench.report.blocks import Command, Heading, Image, Para, Report, Table

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1120px;margin:2rem auto;
padding:0 1.2rem;color:#1f2328;line-height:1.5;background:#fff}
h1{border-bottom:2px solid #d0d7de;padding-bottom:.3rem}
h2{border-bottom:1px solid #d0d7de;padding-bottom:.2rem;margin-top:2.4rem}
h3{margin-top:1.6rem}.header{color:#57606a}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.9rem;display:block;overflow-x:auto}
th,td{border:1px solid #d0d7de;padding:.25rem .6rem;text-align:left;white-space:nowrap}
th{background:#f6f8fa}tr:nth-child(even) td{background:#fbfcfd}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{background:#dafbe1;font-weight:600}
figure{margin:.6rem 0 1.2rem}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption{color:#57606a;font-size:.85rem}
pre{background:#f6f8fa;padding:.6rem .8rem;border-radius:6px;overflow-x:auto;font-size:.85rem}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f6f8fa;padding:0 .2rem}
pre code{padding:0}.note{color:#57606a;font-size:.85rem}
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
    head = "".join(f"<th>{html.escape(c)}</th>" for c in t.columns)
    body = []
    for i, row in enumerate(t.rows):
        cells = "".join(
            ('<td class="num">' if numeric[c] else "<td>") + html.escape(fmt_cell(row.get(c), c)) + "</td>"
            for c in t.columns
        )
        attr = ' class="best" title="best by validation accuracy"' if i == t.best else ""
        body.append(f"<tr{attr}>{cells}</tr>")
    note = '<p class="note">Highlighted: best by validation accuracy.</p>' if t.best is not None else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{note}"


def _is_numeric(rows, column) -> bool:
    vals = [_plain(r.get(column)) for r in rows if r.get(column) is not None]
    return bool(vals) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals)


def render_html(report: Report) -> str:
    """One self-contained HTML page: inline CSS, images as base64 data URIs, every string escaped."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(report.title)}</h1>",
        f'<p class="header">{html.escape(report.header)}</p>',
    ]
    for b in report.blocks:
        if isinstance(b, Heading):
            out.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(_html_para(b))
        elif isinstance(b, Table):
            out.append(_html_table(b))
        elif isinstance(b, Image):
            data = base64.b64encode(b.png).decode("ascii")
            cap = f"<figcaption>{html.escape(b.caption)}</figcaption>" if b.caption else ""
            out.append(
                f'<figure><img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}">{cap}</figure>'
            )
        elif isinstance(b, Command):
            out.append(f"<pre><code>{html.escape(b.text)}</code></pre>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _plain(value):
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()
    return value
