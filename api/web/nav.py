"""The navigation of a controller's pages: ``(slug, label)``, shown in this order under
``/c/{controller}/<slug>`` in every page's header. A module that adds a page calls
``add`` at import (docs/web.md, "Adding a page")."""

from __future__ import annotations

_PAGES: list[tuple[str, str]] = [
    ("", "Overview"),
    ("deadlines", "Deadlines"),
    ("findings", "Findings"),
    ("rights-requests", "Rights requests"),
    ("breaches", "Breaches"),
    ("ropa", "Record of processing"),
    ("consents", "Consents"),
    ("events", "Events"),
]


def add(slug: str, label: str) -> None:
    """Add a page to every controller's navigation (once; later calls are ignored)."""
    if all(s != slug for s, _ in _PAGES):
        _PAGES.append((slug, label))


def items() -> list[tuple[str, str]]:
    return list(_PAGES)
