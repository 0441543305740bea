"""The printed 受理回执 (receipt) and 一次性告知书 (one-time notice of what is still owed), as PDF, on A4 or on
80 mm receipt paper, with ReportLab.

Chinese text uses ReportLab's built-in CID font STSong-Light (Adobe-GB1). It needs no font file: the PDF names
the font, and the viewer or printer driver supplies a Song typeface (every Chinese-capable system has one; on
Debian, fonts-noto-cjk). ReportLab cannot embed the OpenType/CFF Noto CJK collections, and a TrueType CJK font
would add megabytes to the package for a document printed on the spot.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.graphics.barcode.qr import QrCodeWidget
from reportlab.graphics.shapes import Drawing
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from services.console.kiosk.receipt import Receipt

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

DOCUMENTS = {"receipt": "受理回执", "notice": "一次性告知书"}
PAPERS = ("a4", "80mm")
RECEIPT_WIDTH = 80 * mm


def _styles(paper: str) -> dict[str, ParagraphStyle]:
    size = 11 if paper == "a4" else 8.5
    base = ParagraphStyle("body", fontName=FONT, fontSize=size, leading=size * 1.5, wordWrap="CJK")
    return {
        "title": ParagraphStyle("title", parent=base, fontSize=size * 1.8, leading=size * 2.4, alignment=1),
        "subtitle": ParagraphStyle("subtitle", parent=base, alignment=1),
        "heading": ParagraphStyle("heading", parent=base, fontSize=size * 1.2, leading=size * 1.8,
                                  spaceBefore=size * 0.8, spaceAfter=size * 0.3),
        "body": base,
        "small": ParagraphStyle("small", parent=base, fontSize=size * 0.85, leading=size * 1.3),
        "cell": ParagraphStyle("cell", parent=base, fontSize=size * 0.95, leading=size * 1.35),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text), style)


def _qr(url: str, size: float) -> Drawing:
    widget = QrCodeWidget(url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(size, size, transform=[size / (x1 - x0), 0, 0, size / (y1 - y0), 0, 0])
    drawing.add(widget)
    return drawing


def _table(rows: list[list], widths: list[float], styles: dict) -> Table:
    cells = [[_p(str(value), styles["cell"]) for value in row] for row in rows]
    table = Table(cells, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E8EEF5")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
    ]))
    return table


def _receipt_flowables(receipt: Receipt, paper: str, width: float) -> list[Flowable]:
    s = _styles(paper)
    story: list[Flowable] = [
        _p(f"{receipt.community_name}", s["subtitle"]),
        _p("受理回执", s["title"]),
        _p(f"受理编号：{receipt.case_number}", s["body"]),
        _p(f"办理事项：{receipt.title}", s["body"]),
        _p(f"申请人：{receipt.applicant_line}", s["body"]),
        _p(f"受理时间：{receipt.submitted_at}", s["body"]),
        _p("各事项承办情况", s["heading"]),
    ]
    if paper == "a4":
        rows = [["事项", "承办单位", "层级", "承诺办结"]] + [
            [i.matter_name, i.unit_name, i.level_name, i.promised_deadline] for i in receipt.items]
        story.append(_table(rows, [width * 0.34, width * 0.30, width * 0.10, width * 0.26], s))
    else:
        for item in receipt.items:
            story.append(_p(f"■ {item.matter_name}", s["body"]))
            story.append(_p(f"　{item.unit_name}（{item.level_name}）　承诺办结：{item.promised_deadline}", s["small"]))
    if receipt.deferred:
        story.append(_p("容缺受理", s["heading"]))
        owed = "、".join(d.material_name for d in receipt.deferred)
        story.append(_p(f"以下材料须在期限内补齐，详见《一次性告知书》：{owed}。", s["body"]))
    story += [
        _p("查询办理进度", s["heading"]),
        _p("扫描二维码，或访问下面的网址，输入受理编号和手机号后四位：", s["small"]),
        _qr(receipt.lookup_url, 32 * mm if paper == "a4" else 28 * mm),
        _p(receipt.lookup_url, s["small"]),
    ]
    return story


def _notice_flowables(receipt: Receipt, paper: str, width: float) -> list[Flowable]:
    s = _styles(paper)
    story: list[Flowable] = [
        _p(f"{receipt.community_name}", s["subtitle"]),
        _p("一次性告知书", s["title"]),
        _p(f"受理编号：{receipt.case_number}　申请人：{receipt.applicant_line}", s["body"]),
        _p(f"您申请办理的「{receipt.title}」已于{receipt.submitted_at}受理。现将材料情况一次性告知如下。", s["body"]),
        _p("已收到的材料", s["heading"]),
    ]
    story += [_p(f"● {name}", s["body"]) for name in receipt.provided] or [
        _p("（无）", s["body"])]
    story.append(_p("须补齐的容缺材料", s["heading"]))
    if receipt.deferred:
        if paper == "a4":
            rows = [["材料", "涉及事项", "补齐期限", "逾期后果"]] + [
                [d.material_name, "、".join(d.matter_names), d.due_date, d.consequence] for d in receipt.deferred]
            story += [_table(rows, [width * 0.22, width * 0.26, width * 0.18, width * 0.34], s), Spacer(1, 2 * mm)]
        else:
            for d in receipt.deferred:
                story.append(_p(f"■ {d.material_name}：{d.due_date}前补齐", s["body"]))
                story.append(_p(f"　涉及：{'、'.join(d.matter_names)}。{d.consequence}", s["small"]))
        story += [_p("补交方式：请在期限内携带上述材料到本社区党群服务中心（或所列承办单位窗口）补交，并出示受理编号。",
                     s["body"]),
                  _p("容缺受理承诺", s["heading"]), _p(receipt.commitment or "", s["small"]),
                  _p("申请人已在自助终端上阅读并确认同意上述承诺。", s["small"])]
    else:
        story.append(_p("无。材料已一次备齐，无需再补交。", s["body"]))
    story += [Spacer(1, 3 * mm), _p(f"查询进度：{receipt.lookup_url}", s["small"])]
    return story


def render_pdf(receipt: Receipt, document: str, paper: str) -> bytes:
    """One document (``receipt`` or ``notice``) on one paper (``a4`` or ``80mm``)."""
    if document not in DOCUMENTS or paper not in PAPERS:
        raise ValueError(f"unknown document {document!r} or paper {paper!r}")
    build = _receipt_flowables if document == "receipt" else _notice_flowables
    buffer = io.BytesIO()
    title = f"{DOCUMENTS[document]} {receipt.case_number}"
    if paper == "a4":
        margin = 18 * mm
        width = A4[0] - 2 * margin
        story = build(receipt, paper, width)
        doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=margin, rightMargin=margin, topMargin=margin,
                                bottomMargin=margin, title=title, subject=receipt.case_number, author="三级联办")
    else:
        margin = 4 * mm
        width = RECEIPT_WIDTH - 2 * margin
        story = build(receipt, paper, width)
        # Continuous roll paper: one page exactly as long as the content.
        height = sum(f.wrap(width, 10_000)[1] + f.getSpaceBefore() + f.getSpaceAfter() for f in story)
        doc = SimpleDocTemplate(buffer, pagesize=(RECEIPT_WIDTH, height + 2 * margin + 12 * mm),
                                leftMargin=margin, rightMargin=margin, topMargin=margin, bottomMargin=margin,
                                title=title, subject=receipt.case_number, author="三级联办")
    doc.build(story)
    return buffer.getvalue()
