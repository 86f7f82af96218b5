"""The report as a workbook a DPO can hand over: one sheet per section (the record of
processing one row per activity), headers bold and frozen, columns sized to their text."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from projections.report.sections import sections, title

MAX_WIDTH = 60


def to_xlsx(doc: dict[str, Any]) -> bytes:
    wb = Workbook()
    wb.remove(wb.active)
    for s in sections(doc):
        ws = wb.create_sheet(s.sheet[:31])
        ws.append(s.headers)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in s.rows:
            ws.append([_number(c) for c in row])
        ws.freeze_panes = "A2"
        for i, h in enumerate(s.headers):
            width = max([len(h)] + [len(str(r[i])) for r in s.rows if i < len(r)])
            ws.column_dimensions[ws.cell(1, i + 1).column_letter].width = min(MAX_WIDTH,
                                                                               width + 2)
        for row in ws.iter_rows(min_row=2):
            for cell in row:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
        for extra in s.extra:
            ws.append([])
            ws.append([extra])
    wb.properties.title = title(doc)
    wb.properties.creator = "auditledger"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _number(text: str) -> Any:
    """Counts as numbers (a spreadsheet sums them); everything else as written."""
    return int(text) if text.isdigit() and len(text) < 16 else text
