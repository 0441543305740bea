"""``sanji report``: read a period's rows from the escalation database, compute the figures (analysis.py), write
them as CSV files and one HTML page with charts (inline SVG: it opens anywhere, offline, with no script)."""

from __future__ import annotations

import csv
import html
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from services.escalation.adapters.orm import EscalationAction, EscalationItem, FailureReport
from services.escalation.analysis import (
    DIMENSIONS,
    NONE_KEY,
    UNCLASSIFIED,
    ActionRow,
    Figures,
    ItemRow,
    Rate,
    ReportRow,
    compute_figures,
)
from services.escalation.settings import EscalationConfigError, causes_file, load_causes
from shared.catalogue import Catalogue, CatalogueError, load_catalogue
from shared.config import Settings
from shared.db import create_db_engine
from shared.workdays import SHANGHAI


class ReportError(Exception):
    """A problem the user can act on (bad dates, unreadable database or catalogue)."""


CLASS_LABELS = {"simple": "简单类（当场解决）", "complex": "复杂类（部门5个工作日内出具意见）",
                "special": "特殊类（明确办理时限）", UNCLASSIFIED: "未分类"}
LEVEL_LABELS = {"community": "社区", "street": "街道", "district": "区", NONE_KEY: "—"}
ESCALATION_LABELS = {
    "escalation_ordered:internal_loop_expired": "内部循环超时上提",
    "escalation_ordered:whistle_unacknowledged": "吹哨未报到上提",
    "item_escalated": "实际上提（层级变更）",
    "deadline_warning": "督办预警",
    "supervision_promised_breach": "超承诺时限督办",
    "supervision_legal_breach": "超法定时限督办",
    "whistle_called": "吹哨",
    "whistle_acknowledged": "报到",
    "whistle_escalated": "吹哨未报到升级",
    "report_overdue": "办不成事超时",
}
LOOP_LABELS = {"resolved_in_loop": "社区内解决", "escalated": "上提街道", "returned": "退单",
               "closed_unresolved": "未解决办结", "resolved_late": "超时后解决"}
DIMENSION_TITLES = {"class": "按类别", "cause": "按原因", "matter": "按事项", "department": "按部门",
                    "unit": "按首问单位", "level": "按层级"}


@dataclass(frozen=True)
class Labels:
    catalogue: Catalogue
    causes: dict

    def of(self, dimension: str, key: str) -> str:
        if dimension == "class":
            return CLASS_LABELS.get(key, key)
        if dimension == "level":
            return LEVEL_LABELS.get(key, key)
        if key in (NONE_KEY, UNCLASSIFIED):
            return "未分类" if key == UNCLASSIFIED else "—"
        if dimension == "cause":
            return self.causes[key].name if key in self.causes else key
        if dimension == "matter":
            return self.catalogue.matters[key].name if key in self.catalogue.matters else key
        if dimension == "department":
            return self.catalogue.departments[key].name if key in self.catalogue.departments else key
        if dimension in ("unit", "community"):
            return self.catalogue.units[key].name if key in self.catalogue.units else key
        return key


def parse_day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportError(f"{name} must be a date like 2026-11-30, not {text!r}") from None


def load_rows(session: Session, catalogue: Catalogue, date_from: date,
              date_to: date) -> tuple[list[ReportRow], list[ItemRow], list[ActionRow]]:
    """The rows that can count for the period (compute_figures applies the exact rules)."""
    start = datetime.combine(date_from, time(0), tzinfo=SHANGHAI)
    end = datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=SHANGHAI)
    reports = [
        ReportRow(filed_at=r.filed_at, report_class=r.report_class, cause_code=r.cause_code,
                  matter_code=r.matter_code, department_code=r.department_code, unit_code=r.unit_code,
                  level=r.level or (str(catalogue.units[r.unit_code].level) if r.unit_code in catalogue.units
                                    else None),
                  overdue=r.overdue_at is not None, reopen_count=r.reopen_count)
        for r in session.scalars(select(FailureReport).where(FailureReport.filed_at >= start,
                                                             FailureReport.filed_at < end))]
    items = [
        ItemRow(community_code=i.community_code, promised_deadline=i.promised_deadline,
                promised_breached=i.promised_breached_at is not None, loop_outcome=i.loop_outcome,
                loop_ended_at=i.loop_ended_at)
        for i in session.scalars(select(EscalationItem).where(or_(
            (EscalationItem.promised_deadline >= start) & (EscalationItem.promised_deadline < end),
            (EscalationItem.loop_ended_at >= start) & (EscalationItem.loop_ended_at < end))))]
    actions = [
        ActionRow(kind=a.kind, at=a.at, level=a.level, reason=json.loads(a.details).get("reason"))
        for a in session.scalars(select(EscalationAction).where(EscalationAction.at >= start,
                                                                EscalationAction.at < end))]
    return reports, items, actions


def write_report(settings: Settings, *, date_from: str, date_to: str, out_dir: str | Path) -> list[Path]:
    first, last = parse_day(date_from, "--from"), parse_day(date_to, "--to")
    if last < first:
        raise ReportError("--to is before --from")
    try:
        catalogue = load_catalogue(settings.catalogue_dir)
        causes = load_causes(causes_file({"SANJI_CALENDAR_OVERRIDES": str(settings.calendar_overrides),
                                          **settings.escalation}))
    except (CatalogueError, EscalationConfigError) as exc:
        raise ReportError(f"configuration refused: {exc}") from None
    engine = create_db_engine(settings.database_url)
    try:
        with Session(engine) as session:
            reports, items, actions = load_rows(session, catalogue, first, last)
    except Exception as exc:  # noqa: BLE001 - one line for the operator, not a traceback
        raise ReportError(f"cannot read the escalation database ({type(exc).__name__}): run "
                          "`sanji migrate escalation` or check SANJI_ESCALATION_DATABASE_URL") from None
    finally:
        engine.dispose()
    figures = compute_figures(reports=reports, items=items, actions=actions, date_from=first, date_to=last)
    return write_files(figures, Labels(catalogue, causes), Path(out_dir))


# ── Files ───────────────────────────────────────────────────────────────────────────────────────────


def _percent(rate: Rate) -> str:
    return "—" if rate.value is None else f"{rate.value * 100:.1f}%"


def _ratio(rate: Rate) -> str:
    return "" if rate.value is None else f"{rate.value:.4f}"


def write_files(figures: Figures, labels: Labels, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def write_csv(name: str, header: list[str], rows: list[list]) -> None:
        path = out / name
        # UTF-8 with a byte-order mark, so a spreadsheet opened by double-click shows the Chinese names.
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        written.append(path)

    for dimension in DIMENSIONS:
        write_csv(f"reports_by_{dimension}.csv", [dimension, "name", "reports"],
                  [[key, labels.of(dimension, key), count] for key, count in figures.by_dimension[dimension]])
    write_csv("rates.csv", ["metric", "numerator", "denominator", "rate"], [
        ["item_overdue_rate", figures.item_overdue.numerator, figures.item_overdue.denominator,
         _ratio(figures.item_overdue)],
        ["report_overdue_rate", figures.report_overdue.numerator, figures.report_overdue.denominator,
         _ratio(figures.report_overdue)],
        ["internal_loop_resolution_rate", figures.loop.numerator, figures.loop.denominator, _ratio(figures.loop)],
    ])
    write_csv("escalations.csv", ["kind", "name", "count"],
              [[kind, ESCALATION_LABELS.get(kind, kind), count] for kind, count in figures.escalations]
              + [[f"escalation_ordered_from:{level}", f"自{LEVEL_LABELS[level]}上提", count]
                 for level, count in figures.orders_by_level])
    write_csv("internal_loop_by_community.csv", ["community", "name", "resolved_in_loop", "loops_ended", "rate"],
              [[code, labels.of("community", code), rate.numerator, rate.denominator, _ratio(rate)]
               for code, rate in figures.loop_by_community])
    write_csv("summary.csv", ["metric", "value"], [
        ["period_from", figures.date_from.isoformat()], ["period_to", figures.date_to.isoformat()],
        ["reports_filed", figures.reports_total], ["reports_reopened", figures.reports_reopened],
        ["item_overdue_rate", _ratio(figures.item_overdue)], ["report_overdue_rate", _ratio(figures.report_overdue)],
        ["internal_loop_resolution_rate", _ratio(figures.loop)],
        ["escalation_orders", sum(count for _, count in figures.orders_by_level)],
    ])
    page = out / "index.html"
    page.write_text(render_html(figures, labels), encoding="utf-8")
    written.append(page)
    return written


# ── The page: tiles for the rates, bar charts for the counts, all inline SVG ───────────────────────

# Chinese labels need a CJK face: the ones supervisors' machines have, in order, then any sans-serif.
_FONTS = "'PingFang SC', 'Microsoft YaHei', 'Noto Sans CJK SC', 'Source Han Sans SC', sans-serif"
_INK, _MUTED, _ACCENT, _WARN, _GOOD = "#1f2937", "#6b7280", "#2563eb", "#dc2626", "#059669"


def _bar_chart(title: str, rows: list[tuple[str, int]], *, colour: str = _ACCENT) -> str:
    """Horizontal bars, longest first as given; the count written at the end of each bar."""
    if not rows:
        return f'<section class="chart"><h3>{html.escape(title)}</h3><p class="empty">本期无数据</p></section>'
    label_width, bar_width, row_height = 260, 340, 26
    peak = max(count for _, count in rows) or 1
    height = row_height * len(rows) + 8
    bars = []
    for index, (label, count) in enumerate(rows):
        y = index * row_height + 4
        width = max(round(bar_width * count / peak), 2 if count else 0)
        bars.append(
            f'<text x="{label_width - 8}" y="{y + 16}" text-anchor="end" fill="{_INK}">{html.escape(label)}</text>'
            f'<rect x="{label_width}" y="{y + 3}" width="{width}" height="{row_height - 8}" rx="3" fill="{colour}">'
            f'<title>{html.escape(label)}: {count}</title></rect>'
            f'<text x="{label_width + width + 6}" y="{y + 16}" fill="{_MUTED}">{count}</text>')
    svg = (f'<svg role="img" aria-label="{html.escape(title)}" width="{label_width + bar_width + 60}" '
           f'height="{height}" font-size="13" font-family="{_FONTS}">{"".join(bars)}</svg>')
    return f'<section class="chart"><h3>{html.escape(title)}</h3>{svg}</section>'


def _gauge(title: str, rate: Rate, *, good_at_most: float | None = None, good_at_least: float | None = None) -> str:
    """A tile: the rate large, a ring filled to it, green when it is where it should be, red when not."""
    value = rate.value
    share = value or 0.0
    good = (good_at_most is None or share <= good_at_most) and (good_at_least is None or share >= good_at_least)
    colour = _MUTED if value is None else (_GOOD if good else _WARN)
    radius, circumference = 36, 2 * 3.14159 * 36
    ring = (f'<svg width="96" height="96" viewBox="0 0 96 96" role="img" aria-label="{html.escape(title)}">'
            f'<circle cx="48" cy="48" r="{radius}" fill="none" stroke="#e5e7eb" stroke-width="10"/>'
            f'<circle cx="48" cy="48" r="{radius}" fill="none" stroke="{colour}" stroke-width="10" '
            f'stroke-dasharray="{circumference * share:.1f} {circumference:.1f}" transform="rotate(-90 48 48)"/>'
            f'<text x="48" y="53" text-anchor="middle" font-size="16" font-family="{_FONTS}" fill="{_INK}">'
            f'{_percent(rate)}</text></svg>')
    detail = "无数据" if value is None else f"{rate.numerator} / {rate.denominator}"
    return (f'<div class="tile">{ring}<div><div class="tile-title">{html.escape(title)}</div>'
            f'<div class="tile-detail">{detail}</div></div></div>')


def _number_tile(title: str, number: int) -> str:
    return (f'<div class="tile"><div class="big">{number}</div><div><div class="tile-title">{html.escape(title)}'
            f'</div></div></div>')


def render_html(figures: Figures, labels: Labels) -> str:
    period = f"{figures.date_from.isoformat()} 至 {figures.date_to.isoformat()}"
    tiles = "".join([
        _number_tile("办不成事反映", figures.reports_total),
        _gauge("超承诺时限率（事项）", figures.item_overdue, good_at_most=0.05),
        _gauge("办不成事超时率", figures.report_overdue, good_at_most=0.1),
        _gauge("社区内部循环解决率", figures.loop, good_at_least=0.6),
        _number_tile("上提次数", sum(count for _, count in figures.orders_by_level)),
        _number_tile("回访后重新办理", figures.reports_reopened),
    ])
    charts = [_bar_chart(f"办不成事 {DIMENSION_TITLES[d]}",
                         [(labels.of(d, key), count) for key, count in figures.by_dimension[d]])
              for d in DIMENSIONS]
    charts.append(_bar_chart("上提与督办", [(ESCALATION_LABELS.get(kind, kind), count)
                                        for kind, count in figures.escalations], colour=_WARN))
    charts.append(_bar_chart("上提 按发起层级", [(LEVEL_LABELS[level], count)
                                          for level, count in figures.orders_by_level], colour=_WARN))
    charts.append(_bar_chart("内部循环结果", [(LOOP_LABELS.get(key, key), count)
                                        for key, count in figures.loop_outcomes], colour=_GOOD))
    charts.append(_bar_chart("社区内部循环解决 按社区",
                             [(f"{labels.of('community', code)} {_percent(rate)}", rate.numerator)
                              for code, rate in figures.loop_by_community], colour=_GOOD))
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>办不成事与上提分析 {period}</title>
<style>
body {{ font-family: {_FONTS}; color: {_INK}; margin: 2rem; max-width: 1200px; }}
h1 {{ font-size: 1.5rem; margin-bottom: .2rem; }} .period {{ color: {_MUTED}; margin-bottom: 1.5rem; }}
.tiles {{ display: flex; flex-wrap: wrap; gap: 1rem; margin-bottom: 2rem; }}
.tile {{ display: flex; align-items: center; gap: .8rem; border: 1px solid #e5e7eb; border-radius: 8px;
        padding: .8rem 1rem; min-width: 220px; }}
.big {{ font-size: 2.2rem; font-weight: bold; min-width: 96px; text-align: center; }}
.tile-title {{ font-weight: bold; }} .tile-detail {{ color: {_MUTED}; }}
.charts {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 1.5rem; }}
.chart h3 {{ font-size: 1rem; margin: 0 0 .4rem; }} .empty {{ color: {_MUTED}; }}
footer {{ color: {_MUTED}; margin-top: 2rem; font-size: .85rem; }}
</style></head><body>
<h1>办不成事与上提分析</h1><div class="period">{period}（上海时间，含首尾两日）</div>
<div class="tiles">{tiles}</div>
<div class="charts">{"".join(charts)}</div>
<footer>数据来自 escalation 服务；口径见 docs/escalation.md。同目录下的 CSV 文件是同一组数字。</footer>
</body></html>
"""
