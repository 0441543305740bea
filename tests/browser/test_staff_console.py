"""A window clerk of 迈皋桥街道 works an item in the browser: signs in, sees the queue, claims, accepts,
resolves; the history names her. Bad input and refused actions are explained in Chinese and change nothing.
A clerk of another street is refused the item."""

from __future__ import annotations

import re

import requests

from tests.support.browser import DESKTOP, PORTRAIT, axe_check, fits_width, login, screenshot
from tests.support.cases import MAIGAOQIAO_STREET, MIGRANT_BUNDLE

XIAOLINGWEI_STREET = "320102009000"  # 孝陵卫街道, 玄武区


def _residence_permit(sanji) -> dict:
    receipt = sanji.submit(MIGRANT_BUNDLE)
    return {**sanji.routed_items(receipt["case_id"])["residence-permit"], "case_number": receipt["case_number"]}


def test_a_window_clerk_claims_accepts_and_resolves_an_item(sanji, page, portrait_page):
    item = _residence_permit(sanji)
    sanji.add_user("wangfang", "王芳", MAIGAOQIAO_STREET, ["window"])

    login(page, sanji.console, "wangfang")
    assert page.url.endswith("/staff/queue")
    assert page.get_by_role("heading", level=1).inner_text() == "迈皋桥街道 · 待办队列"
    row = page.get_by_role("row").filter(has_text=item["case_number"]).filter(has_text="居住证")
    assert row.count() == 1
    assert "待认领" in row.inner_text()
    axe_check(page)
    assert fits_width(page)
    screenshot(page, "staff-queue-1280x800")

    row.get_by_role("link", name=item["case_number"]).click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("居住证")
    axe_check(page)
    screenshot(page, "staff-item-1280x800")

    # A resolution without a result: said next to the field, nothing sent.
    page.get_by_text("办结", exact=True).click()
    page.get_by_role("button", name="确认办结").click()
    assert page.locator("#result-error").inner_text() == "请填写办理结果"
    assert page.get_by_label("办理结果").get_attribute("aria-invalid") == "true"
    axe_check(page)
    view = requests.get(f"{sanji.routing}/v1/items/{item['item_id']}",
                        headers={"Authorization": "Bearer dev-staff-maigaoqiao"}, timeout=5).json()
    assert view["status"] == "queued" and len(view["history"]) == 1

    # Accepting before claiming is refused by the lifecycle table, with the reason in Chinese.
    page.get_by_role("button", name="受理").click()
    assert "未执行" in page.locator("#refusal").inner_text()

    page.get_by_role("button", name="认领").click()
    assert "已认领" in page.get_by_role("status").inner_text()
    page.get_by_role("button", name="受理").click()
    assert "已受理" in page.get_by_role("status").inner_text()
    page.get_by_text("办结", exact=True).click()
    page.get_by_label("办理结果").fill("居住证已制证")
    page.get_by_label("领取地点（窗口领取）").fill("迈皋桥街道为民服务中心7号窗口")
    page.get_by_role("button", name="确认办结").click()
    assert "已办结" in page.get_by_role("status").inner_text()
    history = page.locator("ol.history").inner_text()
    for action in ("认领", "受理", "办结"):
        assert re.search(f"{action} · 王芳（wangfang）", history), history
    screenshot(page, "staff-item-resolved-1280x800")

    # The routing API recorded the person, not only the unit.
    view = requests.get(f"{sanji.routing}/v1/items/{item['item_id']}",
                        headers={"Authorization": "Bearer dev-staff-maigaoqiao"}, timeout=5).json()
    assert view["status"] == "resolved"
    assert [h["actor"] for h in view["history"][1:]] == ["王芳（wangfang）"] * 3
    assert view["claimed_by"] == "wangfang"

    # The unit's in-app inbox (notification service) announced the new item.
    page.get_by_role("link", name="消息").click()
    assert page.get_by_role("heading", level=1).inner_text() == "迈皋桥街道 · 消息"
    sanji.wait_until(lambda: page.reload() or "居住证" in page.locator("main").inner_text(), what="inbox message")
    axe_check(page)
    screenshot(page, "staff-inbox-1280x800")

    # The same pages on a portrait screen (1080x1920): each fits without scrolling sideways.
    login(portrait_page, sanji.console, "wangfang")
    assert portrait_page.url.endswith("/staff/queue")
    assert portrait_page.get_by_role("heading", level=1).inner_text() == "迈皋桥街道 · 待办队列"
    assert portrait_page.get_by_role("row").filter(has_text=item["case_number"]).count() >= 1
    assert fits_width(portrait_page)
    axe_check(portrait_page)
    screenshot(portrait_page, "staff-queue-1080x1920")
    portrait_page.goto(f"{sanji.console}/staff/items/{item['item_id']}")
    assert portrait_page.get_by_role("heading", level=1).inner_text().startswith("居住证")
    assert fits_width(portrait_page)
    axe_check(portrait_page)
    screenshot(portrait_page, "staff-item-1080x1920")
    portrait_page.get_by_role("link", name="消息").click()
    assert "居住证" in portrait_page.locator("main").inner_text()
    assert fits_width(portrait_page)
    axe_check(portrait_page)
    screenshot(portrait_page, "staff-inbox-1080x1920")
    assert portrait_page.viewport_size == PORTRAIT and page.viewport_size == DESKTOP


def test_a_clerk_of_another_street_is_refused_the_item(sanji, page):
    item = _residence_permit(sanji)
    sanji.add_user("chenjing", "陈静", XIAOLINGWEI_STREET, ["window"])
    login(page, sanji.console, "chenjing")
    assert item["case_number"] not in page.locator("main").inner_text()

    response = page.goto(f"{sanji.console}/staff/items/{item['item_id']}")
    assert response.status == 403
    assert "不在您的辖区内" in page.get_by_role("alert").inner_text()
    axe_check(page)
    screenshot(page, "staff-item-refused-1280x800")
    view = requests.get(f"{sanji.routing}/v1/items/{item['item_id']}",
                        headers={"Authorization": "Bearer dev-staff-maigaoqiao"}, timeout=5).json()
    assert view["status"] == "queued" and view["claimed_by"] is None


def test_the_queue_pages_forward_by_cursor_and_back_to_the_first(sanji, page, monkeypatch):
    """Keyset pages in the console: 下一页 carries routing's cursor, 回到第一页 starts again; the count is routing's."""
    from services.console import pages_staff
    monkeypatch.setattr(pages_staff, "QUEUE_PAGE", 3)   # the bundle's four items, all in the street's jurisdiction
    receipt = sanji.submit(MIGRANT_BUNDLE)
    street_items = {item["item_id"] for item in sanji.routed_items(receipt["case_id"]).values()}
    assert len(street_items) == 4
    sanji.add_user("wangfang", "王芳", MAIGAOQIAO_STREET, ["window"])
    login(page, sanji.console, "wangfang")

    def listed() -> set[str]:
        return {re.search(r"/staff/items/([^/?#]+)", link.get_attribute("href")).group(1)
                for link in page.locator("tbody a").all()}
    first = listed()
    assert len(first) == 3 and "共 4 件" in page.locator("main").inner_text()
    assert page.get_by_role("link", name="回到第一页").count() == 0
    page.get_by_role("link", name="下一页").click()
    assert "cursor=" in page.url
    second = listed()
    assert len(second) == 1 and first | second == street_items
    assert page.get_by_role("link", name="下一页").count() == 0
    axe_check(page)
    page.get_by_role("link", name="回到第一页").click()
    assert listed() == first
    page.goto(sanji.console + "/staff/queue?cursor=not-a-cursor")   # a hand-made cursor: the first page instead
    assert listed() == first
