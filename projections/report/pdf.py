"""The report as a PDF (fpdf2, pure Python): the same sections as the HTML page, landscape
A4, with the SVG charts drawn as vector graphics.

Text needs a Unicode font for names such as "Łódź": DejaVu Sans is used where the system
has it (Debian's fonts-dejavu-core, installed by scripts/bootstrap.sh); without it the PDF
falls back to the built-in Helvetica and writes characters outside Latin-1 as their
closest ASCII (docs/report.md).
"""

from __future__ import annotations

import io
import re
import unicodedata
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.fonts import FontFace

from projections.report.sections import Section, sections, title

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"),
             Path("/usr/local/share/fonts"), Path("/Library/Fonts"))
ASCII = {"—": "-", "–": "-", "≈": "~", "→": "->", "≤": "<=", "≥": ">=", "…": "...",
         "’": "'", "“": '"', "”": '"'}


def latin1(s: str) -> str:
    """``s`` in the built-in fonts' Latin-1: dashes and arrows as ASCII, letters without
    their accents where Latin-1 has no such letter."""
    s = "".join(ASCII.get(ch, ch) for ch in s)
    return "".join(ch if ord(ch) < 256 else
                   (unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode() or "?")
                   for ch in s)


def _font_dir() -> Path | None:
    for d in FONT_DIRS:
        if (d / "DejaVuSans.ttf").is_file() and (d / "DejaVuSans-Bold.ttf").is_file():
            return d
    return None


class _Pdf(FPDF):
    def __init__(self, heading: str) -> None:
        super().__init__(orientation="L", format="A4")
        self.heading = heading
        d = _font_dir()
        self.unicode = d is not None
        if d is not None:
            self.add_font("Body", "", str(d / "DejaVuSans.ttf"))
            self.add_font("Body", "B", str(d / "DejaVuSans-Bold.ttf"))
            self.family = "Body"
        else:
            self.family = "Helvetica"
        self.set_auto_page_break(True, margin=12)
        self.set_creator("auditledger")
        self.set_title(self.say(heading))

    def say(self, s: str) -> str:
        return s if self.unicode else latin1(s)

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font(self.family, "", 7)
        self.cell(0, 5, self.say(f"{self.heading} — page {self.page_no()}"), align="R")


CHART_WIDTH = 160  # mm


def _section(pdf: _Pdf, s: Section, doc: dict[str, Any]) -> None:
    svg = None
    if s.chart is not None:
        # fpdf2 draws SVG text in its built-in fonts, and has no use for tooltips
        svg = re.sub(r"<title>.*?</title>", "", latin1(s.chart(doc)))
    # a heading stays with its chart (or its first rows)
    need = 40 + (CHART_WIDTH * _svg_ratio(svg) if svg else 0)
    if pdf.get_y() > pdf.h - need:
        pdf.add_page()
    pdf.set_font(pdf.family, "B", 12)
    pdf.ln(3)
    pdf.multi_cell(0, 7, pdf.say(s.title), new_x="LMARGIN", new_y="NEXT")
    if s.note:
        pdf.set_font(pdf.family, "", 8)
        pdf.multi_cell(0, 4, pdf.say(s.note), new_x="LMARGIN", new_y="NEXT")
    if svg is not None:
        pdf.image(io.BytesIO(svg.encode()), x=pdf.l_margin, w=CHART_WIDTH)
        pdf.ln(2)
    pdf.set_font(pdf.family, "", 7)
    rows, cut = s.rows[:PDF_ROWS], len(s.rows) - PDF_ROWS
    if not s.rows:
        pdf.multi_cell(0, 5, "None.", new_x="LMARGIN", new_y="NEXT")
    else:
        head = FontFace(emphasis="BOLD", fill_color=(240, 240, 240))
        widths = (1, 3) if s.pairs else None
        with pdf.table(col_widths=widths, headings_style=head, line_height=3.6,
                       first_row_as_headings=True, text_align="LEFT") as table:
            for row in [s.headers, *rows]:
                r = table.row()
                for c in row:
                    r.cell(pdf.say(_fit(c)))
    if cut > 0:
        pdf.multi_cell(0, 5, pdf.say(f"… and {cut} more rows: the XLSX and JSON reports hold"
                                     " every one."), new_x="LMARGIN", new_y="NEXT")
    for x in s.extra:
        pdf.set_font("Courier", "", 7)
        pdf.multi_cell(0, 3.5, latin1(x),
                       new_x="LMARGIN", new_y="NEXT")


#: Rows per table in the PDF, which is read, not searched: a controller with thousands of
#: requests gets the first ones and a line saying how many more the XLSX and JSON hold
#: (fpdf2 lays out about 100 rows a second).
PDF_ROWS = 200
#: A table row must fit on one page: longer cell text is cut (the JSON holds it all).
MAX_CELL = 700


def _fit(c: str) -> str:
    return c if len(c) <= MAX_CELL else c[:MAX_CELL] + " … (cut: see the JSON report)"


def _svg_ratio(svg: str) -> float:
    """height / width of a chart, from the root element's attributes."""
    w = re.search(r'width="(\d+)"', svg)
    h = re.search(r'height="(\d+)"', svg)
    return int(h.group(1)) / int(w.group(1)) if w and h else 0.4


def to_pdf(doc: dict[str, Any]) -> bytes:
    pdf = _Pdf(title(doc))
    pdf.add_page()
    pdf.set_font(pdf.family, "B", 16)
    pdf.multi_cell(0, 9, pdf.say(title(doc)), new_x="LMARGIN", new_y="NEXT")
    for s in sections(doc):
        _section(pdf, s, doc)
    return bytes(pdf.output())
