"""The supervisor of 迈皋桥街道 sees, in the browser, a 物业管理投诉 that climbed from the community to the
street: the 吹哨 calls to 住建 and 民政 with their acknowledgement status and time left, and, once its promised
deadline has passed, the item among the breaches. The report page draws its charts as SVG."""

from __future__ import annotations

from tests.support.browser import axe_check, fits_width, login, screenshot
from tests.support.cases import MAIGAOQIAO_STREET
from tests.support.routing_harness import at


def test_a_supervisor_sees_an_overdue_item_and_a_whistle_call(sanji, page, portrait_page):
    item_id = sanji.submit_complaint()
    # The sweep below acts on the escalation service's deadline rows: wait until it has armed this item's.
    sanji.wait_until(lambda: _deadlines_of(sanji, item_id), what="the escalation service following the item")
    sanji.clock._at = at(2026, 12, 3, 17, 31)  # the community's internal loop has run out
    sanji.sweep()
    sanji.wait_until(lambda: len(sanji.store.catalogue.units) and _calls(sanji) == 2, what="two calls at the street")
    sanji.add_user("lidu", "李督", MAIGAOQIAO_STREET, ["supervisor"])

    sanji.clock._at = at(2026, 12, 3, 17, 45)
    login(page, sanji.console, "lidu")
    assert page.url.endswith("/supervisor")
    calls = page.get_by_role("region", name="吹哨报到")
    rows = calls.get_by_role("row").filter(has_text="物业管理投诉")
    assert rows.count() == 2
    text = calls.inner_text()
    assert "住房和城乡建设" in text or "住建" in text
    assert "待报到" in text and "剩余 16 分钟" in text
    axe_check(page)
    screenshot(page, "supervisor-desk-1280x800")

    # Past the promised deadline (10 working days), the item is a breach on the desk.
    sanji.clock._at = at(2026, 12, 16, 10, 0)
    page.reload()
    assert "/login" in page.url and "登录已过期" in page.locator("main").inner_text()  # days later: signed out
    login(page, sanji.console, "lidu")
    breaches = page.get_by_role("region", name="已超期（督办）")
    assert breaches.get_by_role("row").filter(has_text="物业管理投诉").count() == 1
    assert "已超时" in page.get_by_role("region", name="吹哨报到").inner_text()
    axe_check(page)

    page.get_by_role("link", name="分析报告").click()
    assert page.locator("svg.chart").count() == 4
    assert "吹哨报到 · 按层级与状态" in page.locator("main").inner_text()
    axe_check(page)
    assert fits_width(page)
    screenshot(page, "supervisor-report-1280x800")

    # The desk and the report on a portrait screen (1080x1920): they fit without scrolling sideways.
    login(portrait_page, sanji.console, "lidu")
    assert portrait_page.get_by_role("region", name="已超期（督办）").get_by_role("row").filter(
        has_text="物业管理投诉").count() == 1
    assert fits_width(portrait_page)
    axe_check(portrait_page)
    screenshot(portrait_page, "supervisor-desk-breach-1080x1920")
    portrait_page.get_by_role("link", name="分析报告").click()
    assert portrait_page.locator("svg.chart").count() == 4
    assert fits_width(portrait_page)
    axe_check(portrait_page)
    screenshot(portrait_page, "supervisor-report-1080x1920")
    assert item_id


def _deadlines_of(sanji, item_id: str) -> int:
    from tests.support.escalation_harness import query

    return len(query(sanji.database_url, "SELECT kind FROM escalation_deadlines WHERE subject_id = :item",
                     item=item_id))


def _calls(sanji) -> int:
    from tests.support.escalation_harness import query

    return len(query(sanji.database_url, "SELECT call_id FROM escalation_whistle_calls"))
