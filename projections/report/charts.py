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


def timeliness_svg(report: dict[str, Any]) -> str:
    """Histogram of days to answer rights requests (``report["timeliness"]["histogram"]``)."""
    raise NotImplementedError


def breach_timelines_svg(report: dict[str, Any]) -> str:
    """One line per breach: detected → aware → assessed → notified → communicated
    (``report["breach_timelines"]``), against the 72-hour authority deadline."""
    raise NotImplementedError


def consents_svg(report: dict[str, Any]) -> str:
    """Consents given and withdrawn per month (``report["consent"]["over_time"]``)."""
    raise NotImplementedError
