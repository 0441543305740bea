"""Reading the text of the PDFs the console prints (ReportLab output), without a PDF library."""

from __future__ import annotations

import base64
import re
import zlib


def pdf_text(pdf: bytes) -> str:
    """The text shown by a ReportLab PDF: its content streams' literal strings, decoded by the font in use
    (UCS-2 big-endian for the CID font STSong-Light, Latin-1 for the standard fonts)."""
    cid_objects = set(re.findall(rb"(\d+) 0 obj\s*<<[^>]*?/BaseFont /STSong-Light", pdf, re.S))
    cid_fonts = {name for name, number in re.findall(rb"/(F\d+) (\d+) 0 R", pdf) if number in cid_objects}
    shown, font = [], None
    for raw in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        data = raw.strip()
        if data.endswith(b"~>"):  # ReportLab's default: ASCII85, then Flate
            data = base64.a85decode(data[:-2].replace(b"\n", b""))
        try:
            content = zlib.decompress(data)
        except zlib.error:
            content = data
        for token in re.finditer(rb"/(F\d+) [\d.]+ Tf|\((.*?)(?<!\\)\) Tj", content, re.S):
            if token.group(1):
                font = token.group(1)
                continue
            literal = re.sub(rb"\\([0-7]{1,3}|.)", lambda m: bytes([int(m.group(1), 8)])
                             if m.group(1)[:1].isdigit() else {b"n": b"\n", b"r": b"\r", b"t": b"\t"}.get(
                                 m.group(1), m.group(1)), token.group(2))
            shown.append(literal.decode("utf-16-be") if font in cid_fonts else literal.decode("latin-1"))
    return "".join(shown)
