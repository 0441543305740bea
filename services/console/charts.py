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


RATE_COLOURS = ("#0b5cad", "#1e6b33", "#a4161a")  # 3:1 or better against white, and told apart by name too


def rate_chart(title: str, groups: list[tuple[str, list[tuple[str, float | None]]]], *, width: int = 480) -> Markup:
    """Grouped horizontal bars of rates (0..1): per group (a unit) a heading line, then one named bar per
    series (响应率, 办结率, 满意率) with its percentage written beside it; a rate without data says so."""
    label_width, row, gap, top = 90, 22, 4, 8
    rows = sum(1 + len(series) for _, series in groups)
    height = top * 2 + max(1, rows) * (row + gap) + max(0, len(groups) - 1) * 10
    track = width - label_width - 70
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    if not groups:
        parts.append(f'<text x="8" y="{top + row - 6}" font-size="15">暂无数据</text>')
    y = top
    for group, series in groups:
        parts.append(f'<text x="8" y="{y + row - 6}" font-size="15" font-weight="700">{escape(group)}</text>')
        y += row + gap
        for index, (name, value) in enumerate(series):
            colour = RATE_COLOURS[index % len(RATE_COLOURS)]
            parts.append(f'<text x="{label_width - 8}" y="{y + row - 6}" font-size="14" text-anchor="end">'
                         f'{escape(name)}</text>')
            parts.append(f'<rect x="{label_width}" y="{y}" width="{track}" height="{row}" fill="#eef1f4"/>')
            if value is None:
                parts.append(f'<text x="{label_width + 6}" y="{y + row - 6}" font-size="14">无数据</text>')
            else:
                length = max(int(track * max(0.0, min(1.0, value))), 2)
                parts.append(f'<rect x="{label_width}" y="{y}" width="{length}" height="{row}" fill="{colour}"/>')
                parts.append(f'<text x="{label_width + track + 6}" y="{y + row - 6}" font-size="14">'
                             f'{round(value * 100)}%</text>')
            y += row + gap
        y += 10
    parts.append("</svg>")
    return Markup("".join(parts))
