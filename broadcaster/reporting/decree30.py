"""The parts of a DOCX that Decree 30/2020/NĐ-CP fixes (docs/domain.md §1.3): the A4 page and its margins,
Times New Roman, the header block (agency, number, national title and motto, place and date), the title, and
the "Nơi nhận:" block. What the report says is ``docx_writer``'s job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from docx.document import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.table import CT_Tbl
from docx.section import Section
from docx.shared import Cm, Mm, Pt
from docx.table import _Cell
from docx.text.paragraph import Paragraph

from broadcaster.reporting.model import ReportHeader

__all__ = [
    "BODY_PT",
    "FONT",
    "LEFT_WIDTH",
    "NATIONAL_MOTTO",
    "NATIONAL_TITLE",
    "RIGHT_WIDTH",
    "date_line",
    "header_block",
    "number_line",
    "paragraph",
    "recipients_block",
    "set_up_page",
    "title_block",
]

FONT = "Times New Roman"
BODY_PT = 13
NATIONAL_TITLE = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
NATIONAL_MOTTO = "Độc lập - Tự do - Hạnh phúc"
TYPE_CODE = "BC"  # Báo cáo (App. III §I)

# A4 with the smaller margins of each range (top/bottom 20-25, left 30-35, right 15-20 mm): 165 mm of text.
PAGE = (Mm(210), Mm(297))
MARGINS = {"top": Mm(20), "bottom": Mm(20), "left": Mm(30), "right": Mm(15)}
LEFT_WIDTH = Cm(7.0)  # the agency column of the header block
RIGHT_WIDTH = Cm(9.5)  # the national title's column: it fits on one line in bold 12 pt


def set_up_page(document: Document) -> None:
    """A4 portrait, the decree's margins, Times New Roman 13 pt for every script (Word reads ``eastAsia`` and
    ``cs`` too), 6 pt between paragraphs, page numbers from page 2."""
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = PAGE
    section.top_margin, section.bottom_margin = MARGINS["top"], MARGINS["bottom"]
    section.left_margin, section.right_margin = MARGINS["left"], MARGINS["right"]
    normal = document.styles["Normal"]
    normal.font.name = FONT
    normal.font.size = Pt(BODY_PT)
    fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
    for script in ("w:eastAsia", "w:cs"):
        fonts.set(qn(script), FONT)
    normal.paragraph_format.space_after = Pt(6)
    normal.paragraph_format.space_before = Pt(0)
    _page_numbers(section)


def _page_numbers(section: Section) -> None:
    """The page number centred in the top margin, 13 pt, from page 2 on (page 1 has its own empty header)."""
    section.different_first_page_header_footer = True
    para = section.header.paragraphs[0]
    para.alignment = WD_ALIGN_PARAGRAPH.CENTER
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    run = OxmlElement("w:r")
    properties = OxmlElement("w:rPr")
    size = OxmlElement("w:sz")
    size.set(qn("w:val"), str(2 * BODY_PT))  # half-points
    properties.append(size)
    text = OxmlElement("w:t")
    text.text = "2"  # shown until the reader's application updates the field
    run.extend([properties, text])
    field.append(run)
    para._p.append(field)


def paragraph(
    container: Document | _Cell,
    text: str,
    *,
    size: float = BODY_PT,
    bold: bool = False,
    italic: bool = False,
    underline: bool = False,
    centre: bool = True,
) -> Paragraph:
    """One paragraph of one run, centred unless said otherwise."""
    para = container.add_paragraph()
    if centre:
        para.alignment = WD_ALIGN_PARAGRAPH.CENTER
    para.paragraph_format.space_after = Pt(0)
    run = para.add_run(text)
    run.font.name = FONT
    run.font.size = Pt(size)
    run.bold, run.italic, run.underline = bold, italic, underline
    return para


def _rule(container: Document | _Cell, width: int, fraction: float) -> Paragraph:
    """A centred solid line ``fraction`` of ``width`` long: an empty paragraph's bottom border, indented."""
    para = container.add_paragraph()
    indent = int(width * (1 - fraction) / 2)
    para.paragraph_format.left_indent = indent
    para.paragraph_format.right_indent = indent
    para.paragraph_format.space_after = Pt(0)
    para.paragraph_format.line_spacing = Pt(2)
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in {"w:val": "single", "w:sz": "6", "w:space": "1", "w:color": "000000"}.items():
        bottom.set(qn(key), value)
    borders.append(bottom)
    para._p.get_or_add_pPr().append(borders)
    return para


def _no_borders(table_element: CT_Tbl) -> None:
    tbl_pr = table_element.tblPr
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "nil")
        borders.append(element)
    tbl_pr.append(borders)


def _two_columns(document: Document, rows: int) -> list[tuple[_Cell, _Cell]]:
    """A borderless two-column table (the decree's usual frame), its cells' default paragraph removed."""
    table = document.add_table(rows=rows, cols=2)
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    table.autofit = False
    _no_borders(table._tbl)
    table.columns[0].width, table.columns[1].width = LEFT_WIDTH, RIGHT_WIDTH
    cells = []
    for row in table.rows:
        left, right = row.cells
        left.width, right.width = LEFT_WIDTH, RIGHT_WIDTH
        for cell in (left, right):
            cell._tc.remove(cell.paragraphs[0]._p)
        cells.append((left, right))
    return cells


def number_line(number: str, agency_code: str) -> str:
    """``Số: 05/BC-SKHCN``: numbers under 10 padded with 0; a blank number leaves room for the clerk."""
    number = number.strip()
    if number.isdigit():
        number = f"{int(number):02d}"
    return f"Số: {number or ' ' * 6}/{TYPE_CODE}-{agency_code.upper()}"


def date_line(place: str, day: date) -> str:
    """``Đà Nẵng, ngày 05 tháng 01 năm 2026``: days under 10 and months 1 and 2 padded with 0, the other
    months not (the decree's rule)."""
    month = f"{day.month:02d}" if day.month <= 2 else str(day.month)
    return f"{place}, ngày {day.day:02d} tháng {month} năm {day.year}"


def header_block(document: Document, header: ReportHeader) -> None:
    """Row 1: the superior body and the agency (left), the national title and motto (right). Row 2: the
    number (left), the place and date (right)."""
    (agency, nation), (number, place) = _two_columns(document, 2)
    paragraph(agency, header.superior_name.upper(), size=13)
    paragraph(agency, header.agency_name.upper(), size=13, bold=True)
    _rule(agency, LEFT_WIDTH, 0.4)
    paragraph(nation, NATIONAL_TITLE, size=12, bold=True)
    paragraph(nation, NATIONAL_MOTTO, size=13, bold=True, underline=True)
    paragraph(number, number_line(header.document_number, header.agency_code), size=13)
    paragraph(place, date_line(header.place, header.issued_on), size=13, italic=True)


def title_block(document: Document, subject: str, period_text: str) -> None:
    """``BÁO CÁO``, the summary (trích yếu) with a short line under it, and the period reported on."""
    title = paragraph(document, "BÁO CÁO", size=14, bold=True)
    title.paragraph_format.space_before = Pt(18)
    paragraph(document, subject, size=14, bold=True)
    _rule(document, LEFT_WIDTH + RIGHT_WIDTH, 0.3).paragraph_format.space_after = Pt(6)
    paragraph(document, period_text, italic=True).paragraph_format.space_after = Pt(12)


def recipients_block(document: Document, recipients: Sequence[str], signer: str) -> None:
    """ "Nơi nhận:" (bold italic 12) and its list (11, "- …;", last "- Lưu: VT.") on the left, the signer's
    title on the right with room for the signature."""
    document.add_paragraph()
    ((left, right),) = _two_columns(document, 1)
    paragraph(left, "Nơi nhận:", size=12, bold=True, italic=True, centre=False)
    lines = [f"- {name};" for name in recipients] + ["- Lưu: VT."]
    for line in lines:
        paragraph(left, line, size=11, centre=False)
    paragraph(right, signer, size=13, bold=True)
