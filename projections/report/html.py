"""The report as one self-contained web page: inline CSS and SVG, no script, no URL to
fetch, so it reads the same offline inside an evidence bundle as served by the API."""

from __future__ import annotations

import html

from projections.report.sections import Section, sections, title

CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}"
    "h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:.5em 0}"
    "td,th{border:1px solid #ccc;padding:3px 7px;font-size:12px;vertical-align:top;"
    "text-align:left}th{background:#f3f3f3}p.note{color:#555;font-size:13px}"
    "pre{background:#f7f7f7;padding:.6em;font-size:12px;white-space:pre-wrap}"
    "figure{margin:.5em 0}section{overflow-x:auto}"
)


def _section(s: Section, doc: dict) -> str:
    e = html.escape
    out = [f"<section><h2>{e(s.title)}</h2>"]
    if s.note:
        out.append(f"<p class='note'>{e(s.note)}</p>")
    if s.chart is not None:
        out.append(f"<figure>{s.chart(doc)}</figure>")
    if not s.rows:
        out.append("<p>None.</p>")
    elif s.pairs:
        out.append("<table>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>"
                                       for k, v in s.rows) + "</table>")
    else:
        head = "".join(f"<th>{e(h)}</th>" for h in s.headers)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
                       for row in s.rows)
        out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out.extend(f"<pre>{e(x)}</pre>" for x in s.extra)
    out.append("</section>")
    return "".join(out)


def to_html(doc: dict) -> str:
    name = html.escape(title(doc))
    return "\n".join([
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{name}</title><style>{CSS}</style></head><body>",
        f"<h1>{name}</h1>",
        *(_section(s, doc) for s in sections(doc)),
        "</body></html>",
    ])
