"""Server-rendered SVG bar charts (no JavaScript, no chart library): accessible, with a title and a table
of the same figures beside each chart."""

from __future__ import annotations

from markupsafe import Markup, escape


def bar_chart(title: str, rows: list[tuple[str, int]], *, width: int = 560, bar_height: int = 26) -> Markup:
    """Horizontal bars, one per (label, count); an empty chart says so."""
    label_width, gap, top = 200, 8, 8
    height = top * 2 + max(1, len(rows)) * (bar_height + gap)
    most = max((count for _, count in rows), default=0) or 1
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    if not rows:
        parts.append(f'<text x="8" y="{top + bar_height - 8}" font-size="15">暂无数据</text>')
    for index, (label, count) in enumerate(rows):
        y = top + index * (bar_height + gap)
        length = int((width - label_width - 60) * count / most)
        parts.append(f'<text x="{label_width - 8}" y="{y + bar_height - 8}" font-size="14" text-anchor="end">'
                     f'{escape(label)}</text>')
        parts.append(f'<rect x="{label_width}" y="{y}" width="{max(length, 2)}" height="{bar_height}" '
                     'fill="#a4161a"/>')
        parts.append(f'<text x="{label_width + max(length, 2) + 6}" y="{y + bar_height - 8}" '
                     f'font-size="14">{count}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
