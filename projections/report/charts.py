"""SVG charts of the accountability report, drawn on the server from the report document
(``projections.queries.report``): no script, no font or stylesheet from the network, so a
chart shows in a browser, an evidence bundle opened offline, and the PDF alike.

Each function takes the report document and returns one ``<svg>`` element as text (UTF-8,
``xmlns`` set, so it parses as XML on its own and can be inlined in HTML). The counts of
marks are part of the contract the tests check: ``timeliness_svg`` draws one ``<rect
class="bar">`` per histogram bin, ``breach_timelines_svg`` one ``<circle class="point">``
per recorded milestone of each breach, ``consents_svg`` one ``<circle class="point">`` per
month and series.
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from ledger.clock import parse_rfc3339

WIDTH = 640
#: Breach milestones in their legal order, with the colour each is drawn in.
MILESTONES = (("detected_at", "detected", "#888888"), ("aware_at", "aware", "#d62728"),
              ("assessed_at", "assessed", "#ff7f0e"), ("notified_at", "notified", "#1f77b4"),
              ("communicated_at", "communicated", "#2ca02c"))
GIVEN_COLOUR, WITHDRAWN_COLOUR = "#2ca02c", "#d62728"
AUTHORITY_HOURS = 72


def _svg(height: int, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"'
            f' viewBox="0 0 {WIDTH} {height}" role="img" font-family="sans-serif"'
            f' font-size="11"><title>{escape(title)}</title>' + "".join(body) + "</svg>")


def _text(x: float, y: float, s: str, anchor: str = "start", **attrs: str) -> str:
    extra = "".join(f" {k.replace('_', '-')}={quoteattr(v)}" for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(s)}</text>'


def _empty(title: str, message: str) -> str:
    return _svg(60, title, [_text(WIDTH / 2, 34, message, "middle", fill="#555555")])


def timeliness_svg(report: dict[str, Any]) -> str:
    """Histogram of days to answer rights requests (``report["timeliness"]["histogram"]``),
    with the one-month mark."""
    bins = report["timeliness"]["histogram"]
    title = "Rights requests: days from receipt to answer"
    if not any(b["count"] for b in bins):
        return _empty(title, "No rights request was answered in the period.")
    left, top, plot_h, height = 40, 40, 150, 230
    plot_w = WIDTH - left - 10
    peak = max(b["count"] for b in bins)
    step = plot_w / len(bins)
    body = [_text(left, 14, title, font_weight="bold")]
    for i, b in enumerate(bins):
        h = plot_h * b["count"] / peak
        x = left + i * step
        label = f"{b['days_from']}–{b['days_to']} days: {b['count']}"
        body.append(f'<rect class="bar" x="{x + 2:.1f}" y="{top + plot_h - h:.1f}"'
                    f' width="{step - 4:.1f}" height="{h:.1f}" fill="#1f77b4">'
                    f"<title>{escape(label)}</title></rect>")
        if b["count"]:
            body.append(_text(x + step / 2, top + plot_h - h - 3, str(b["count"]), "middle"))
        body.append(_text(x + step / 2, top + plot_h + 14, f"{b['days_from']}–{b['days_to']}",
                          "middle"))
    month_x = left + step * (30 / (bins[0]["days_to"] - bins[0]["days_from"] + 1))
    body.append(f'<line x1="{month_x:.1f}" y1="{top}" x2="{month_x:.1f}"'
                f' y2="{top + plot_h}" stroke="#d62728" stroke-dasharray="4 3"/>')
    body.append(_text(month_x, top - 6, "one month", "middle", fill="#d62728"))
    body.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - 10}" y2="{top + plot_h}"'
                ' stroke="#333333"/>')
    body.append(_text(left + plot_w / 2, height - 8, "days to answer (controller's calendar)",
                      "middle"))
    return _svg(height, title, body)


def _hours(at: str, origin: str) -> float:
    return (parse_rfc3339(at) - parse_rfc3339(origin)).total_seconds() / 3600


def breach_timelines_svg(report: dict[str, Any]) -> str:
    """One line per breach: detected → aware → assessed → notified → communicated
    (``report["breach_timelines"]``), in hours from awareness, against the 72-hour
    authority deadline (Art. 33(1))."""
    rows = [b for b in report["breach_timelines"] if b.get("aware_at") or b.get("detected_at")]
    title = "Breaches: hours from awareness to each step (deadline 72 h)"
    if not rows:
        return _empty(title, "No breach in the period.")
    points = []
    for b in rows:
        origin = b.get("aware_at") or b["detected_at"]
        points.append([(key, name, colour, _hours(b[key], origin))
                       for key, name, colour in MILESTONES if b.get(key)])
    lo = min(0.0, *(h for p in points for *_, h in p))
    hi = max(AUTHORITY_HOURS + 12.0, *(h for p in points for *_, h in p))
    left, right, top, row_h = 110, 20, 40, 26
    plot_w = WIDTH - left - right
    height = top + row_h * len(rows) + 40

    def x(h: float) -> float:
        return left + plot_w * (h - lo) / (hi - lo)

    body = [_text(8, 14, title, font_weight="bold")]
    for i, (_key, name, colour) in enumerate(MILESTONES):  # legend
        lx = left + i * 100
        body.append(f'<rect x="{lx}" y="22" width="8" height="8" fill="{colour}"/>')
        body.append(_text(lx + 11, 30, name))
    for i, (b, pts) in enumerate(zip(rows, points, strict=True)):
        y = top + row_h * i + row_h / 2
        body.append(_text(left - 6, y + 4, str(b["breach_id"]), "end"))
        if pts:
            x1, x2 = x(min(p[3] for p in pts)), x(max(p[3] for p in pts))
            body.append(f'<line x1="{x1:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y:.1f}"'
                        ' stroke="#999999"/>')
        for _key, name, colour, h in pts:
            body.append(f'<circle class="point" cx="{x(h):.1f}" cy="{y:.1f}" r="5"'
                        f' fill="{colour}"><title>{escape(f"{name}: {h:+.1f} h")}</title></circle>')
    base = top + row_h * len(rows)
    body.append(f'<line x1="{x(AUTHORITY_HOURS):.1f}" y1="{top - 4}" x2="{x(AUTHORITY_HOURS):.1f}"'
                f' y2="{base}" stroke="#d62728" stroke-dasharray="4 3"/>')
    body.append(_text(x(AUTHORITY_HOURS), base + 14, "72 h", "middle", fill="#d62728"))
    body.append(_text(x(0), base + 14, "aware", "middle"))
    body.append(_text(left + plot_w / 2, height - 6, "hours after awareness", "middle"))
    return _svg(height, title, body)


def consents_svg(report: dict[str, Any]) -> str:
    """Consents given and withdrawn per month of the controller's calendar
    (``report["consent"]["over_time"]``)."""
    months = report["consent"]["over_time"]
    title = "Consents given and withdrawn per month"
    if not months:
        return _empty(title, "No consent given or withdrawn in the period.")
    left, top, plot_h, height = 40, 36, 150, 230
    plot_w = WIDTH - left - 20
    peak = max(1, *(max(m["given"], m["withdrawn"]) for m in months))
    step = plot_w / max(1, len(months) - 1) if len(months) > 1 else 0.0

    def at(i: int, v: int) -> tuple[float, float]:
        return (left + (i * step if len(months) > 1 else plot_w / 2),
                top + plot_h - plot_h * v / peak)

    body = [_text(left, 14, title, font_weight="bold")]
    for j, (series, colour) in enumerate((("given", GIVEN_COLOUR),
                                          ("withdrawn", WITHDRAWN_COLOUR))):
        lx = WIDTH - 200 + j * 100
        body.append(f'<rect x="{lx}" y="6" width="8" height="8" fill="{colour}"/>')
        body.append(_text(lx + 11, 14, series))
        pts = [at(i, m[series]) for i, m in enumerate(months)]
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="'
                    + " ".join(f"{px:.1f},{py:.1f}" for px, py in pts) + '"/>')
        for (px, py), m in zip(pts, months, strict=True):
            tip = escape(f"{m['month']}: {m[series]} {series}")
            body.append(f'<circle class="point" cx="{px:.1f}" cy="{py:.1f}" r="3.5"'
                        f' fill="{colour}"><title>{tip}</title></circle>')
    for i, m in enumerate(months):
        px, _ = at(i, 0)
        body.append(_text(px, top + plot_h + 14, m["month"], "middle"))
    body.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{WIDTH - 20}" y2="{top + plot_h}"'
                ' stroke="#333333"/>')
    body.append(_text(left - 4, top + 4, str(peak), "end"))
    body.append(_text(left - 4, top + plot_h, "0", "end"))
    return _svg(height, title, body)
