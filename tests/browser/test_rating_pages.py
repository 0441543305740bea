"""好差评 in a real Chromium, against the whole system: a completed case of 流动人口一件事 is rated through the signed
link of the completion SMS (非常不满意 opens a rectification), from the resident lookup (channel lookup, only for
the case looked up), and at the kiosk of its community (channel kiosk, cleared when idle). An expired or forged
link, a case not completed and a closed window are refused in Chinese with nothing written, and so is a form
without its CSRF token."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
import requests

from services.evaluation.settings import link_key
from shared.rating_links import sign_rating_link
from tests.support.browser import PORTRAIT, axe_check, fits_width, screenshot
from tests.support.cases import APPLICANT_ID_NUMBER, APPLICANT_PHONE, migrant_bundle
from tests.support.escalation_harness import query

pytestmark = pytest.mark.e2e

STAFF_OF_UNIT = {"320113003000": "dev-staff-maigaoqiao", "320113003021": "dev-staff-xinhe"}
PERMIT, BIRTH = "居住证办理", "生育登记（生育证明）"
KEY = link_key({})  # the development settings file's key, as the test stack's evaluation service uses it


def submitted_case(sanji) -> tuple[dict, dict]:
    body = migrant_bundle()
    body["materials"] = {"provided": ["id-card", "photo", "rental-contract", "labour-contract",
                                      "landlord-property-certificate-copy", "landlord-id-copy", "job-or-school-proof",
                                      "spouse-id-card", "education-certificate"]}
    case = sanji.submit(body)
    return case, sanji.routed_items(case["case_id"])


def completed_case(sanji) -> dict:
    """A case whose four items were claimed, accepted and resolved by their units; the evaluation service and
    intake both know it is complete."""
    case, items = submitted_case(sanji)
    for item in items.values():
        headers = {"Authorization": f"Bearer {STAFF_OF_UNIT[item['unit_code']]}", "Content-Type": "application/json"}
        for action, body in (("claim", {}), ("accept", {}),
                             ("resolve", {"result": "已办结", "delivery": {"method": "pickup", "place": "7号窗口"}})):
            response = requests.post(f"{sanji.routing}/v1/items/{item['item_id']}/{action}", json=body,
                                     headers=headers, timeout=10)
            assert response.status_code == 200, response.text
    link = sign_link(sanji, case["case_id"])
    sanji.wait_until(lambda: requests.get(f"{sanji.evaluation}/v1/rating-links/{link}", timeout=5).status_code == 200,
                     what="the completion reached the evaluation service")
    sanji.wait_until(lambda: query(sanji.database_url, "SELECT completed_at FROM intake_cases WHERE id = :c",
                                   c=case["case_id"])[0][0] is not None, what="intake marked the case completed")
    return case


def sign_link(sanji, case_id: str, days: int = 30) -> str:
    return sign_rating_link(KEY, case_id=case_id, expires_at=sanji.clock.now() + timedelta(days=days))


def ratings(sanji) -> list[tuple]:
    return query(sanji.database_url, "SELECT channel, level, reason_codes, comment FROM evaluation_ratings "
                                     "ORDER BY submitted_at")


def item_group(page, matter_name: str):
    return page.get_by_role("group", name=matter_name, exact=True)


def rate(page, matter_name: str, level: str, reasons=(), comment: str = ""):
    group = item_group(page, matter_name)
    group.get_by_label(level, exact=True).check()
    for reason in reasons:
        group.get_by_label(reason, exact=True).check()
    if comment:
        group.get_by_role("textbox").fill(comment)


def submit(page):
    page.get_by_role("button", name="提交评价").click()
    page.wait_for_load_state()


def test_the_sms_link_rates_a_completed_case_and_a_very_dissatisfied_rating_opens_a_rectification(
        sanji, page, portrait_page):
    case = completed_case(sanji)
    link = sign_link(sanji, case["case_id"])
    page.goto(f"{sanji.console}/rate/{link}")
    assert case["case_number"] in page.locator("h1 + .lead").inner_text()
    assert {legend.inner_text() for legend in page.locator("fieldset.rate-item > legend").all()} == {
        PERMIT, BIRTH, "职业技能培训报名", "就业登记"}
    group = item_group(page, PERMIT)
    assert [label.inner_text().strip() for label in group.locator("label.level").all()] == [
        "非常满意", "满意", "基本满意", "不满意", "非常不满意"]
    assert group.get_by_label("办理时间长").count() == 1 and group.get_by_label("推诿扯皮").count() == 1
    content = page.content()
    for personal in ("刘金花", APPLICANT_PHONE, APPLICANT_ID_NUMBER):
        assert personal not in content
    axe_check(page)
    assert fits_width(page)
    screenshot(page, "rate-link-form-1280x800")

    # Praise does not go with a bad rating: refused next to the reasons, nothing sent.
    rate(page, PERMIT, "非常不满意", reasons=("办理快捷",))
    submit(page)
    assert "是好评原因" in page.locator(f"#{item_group(page, PERMIT).get_attribute('id')}-reasons-error").inner_text()
    assert ratings(sanji) == []
    axe_check(page)

    item_group(page, PERMIT).get_by_label("办理快捷", exact=True).uncheck()
    rate(page, PERMIT, "非常不满意", reasons=("办理时间长", "服务态度差"), comment="排队三小时，窗口无人")
    rate(page, BIRTH, "满意", reasons=("服务热情",))
    submit(page)
    thanks = page.locator("#rate-thanks")
    assert "感谢您的评价" in thanks.inner_text()
    assert f"{PERMIT}：非常不满意" in thanks.inner_text() and f"{BIRTH}：满意" in thanks.inner_text()
    assert "整改" in thanks.inner_text()
    axe_check(page)
    screenshot(page, "rate-thanks-1280x800")

    stored = ratings(sanji)
    assert sorted((channel, level) for channel, level, _, _ in stored) == [
        ("sms_link", "satisfied"), ("sms_link", "very_dissatisfied")]
    bad = next(row for row in stored if row[1] == "very_dissatisfied")
    assert sorted(json.loads(bad[2])) == ["attitude", "slow"] and bad[3] == "排队三小时，窗口无人"
    rectifications = query(sanji.database_url, "SELECT origin, state, unit_code FROM evaluation_rectifications")
    assert rectifications == [("rating", "open", "320113003000")]

    # The link again: the ratings so far are shown, and the portrait screen fits.
    portrait_page.goto(f"{sanji.console}/rate/{link}")
    assert "已评价：非常不满意" in item_group(portrait_page, PERMIT).inner_text()
    assert fits_width(portrait_page)
    axe_check(portrait_page)
    screenshot(portrait_page, "rate-link-form-1080x1920")


def test_the_resident_rates_from_the_lookup_page_and_only_the_case_she_looked_up(sanji, page):
    case = completed_case(sanji)
    page.goto(f"{sanji.console}/lookup?case={case['case_number']}")
    page.get_by_label("手机号后四位").fill(APPLICANT_PHONE[-4:])
    page.get_by_role("button", name="查询").click()
    page.wait_for_load_state()
    assert page.locator("#lookup-result a.rate-action").count() == 4
    axe_check(page)
    screenshot(page, "rate-lookup-result-1280x800")
    page.get_by_role("link", name=re.compile(rf"^评价\s*{re.escape(PERMIT)}$")).click()
    page.wait_for_url(re.compile(r"/lookup/rate\?g="))
    assert case["case_number"] in page.locator("h1 + .lead").inner_text()
    axe_check(page)
    rate(page, PERMIT, "满意", reasons=("一次告知清楚",))
    submit(page)
    assert f"{PERMIT}：满意" in page.locator("#rate-thanks").inner_text()
    axe_check(page)
    assert [(channel, level) for channel, level, _, _ in ratings(sanji)] == [("lookup", "satisfied")]

    # Without a lookup there is no rating: no grant, or a forged one.
    for url in (f"{sanji.console}/lookup/rate", f"{sanji.console}/lookup/rate?g=forged|1|x"):
        page.goto(url)
        assert "请重新查询" in page.locator("h1").inner_text()
    page.goto(f"{sanji.console}/lookup")  # a page with a CSRF cookie, to show the grant is what is refused
    csrf = page.locator("input[name=csrf_token]").first.input_value()
    item_id = query(sanji.database_url, "SELECT item_id FROM evaluation_ratings")[0][0]
    forged = page.request.post(f"{sanji.console}/lookup/rate", form={
        "csrf_token": csrf, "grant": "lookup:" + case["case_number"] + "|9999999999|forged",
        f"level-{item_id}": "very_dissatisfied"})
    assert forged.status == 403 and "请重新查询" in forged.text()
    assert len(ratings(sanji)) == 1


def test_the_kiosk_rates_a_case_of_its_community_and_clears_itself_when_idle(sanji, browser):
    case = completed_case(sanji)
    context = browser.new_context(viewport=PORTRAIT, locale="zh-CN", timezone_id="Asia/Shanghai", bypass_csp=True)
    context.set_default_timeout(15000)
    page = context.new_page()
    try:
        page.clock.install()
        page.goto(f"{sanji.console}/kiosk/register")
        page.get_by_label("设备令牌").fill("dev-kiosk-xinhe")
        page.get_by_role("button", name="登记").click()
        page.wait_for_url(re.compile(r"/kiosk$"))
        page.get_by_role("link", name=re.compile("^办事评价")).click()
        page.wait_for_url(re.compile(r"/kiosk/rate$"))
        axe_check(page)
        page.get_by_label("受理编号").fill(case["case_number"])
        page.get_by_label("手机号后四位").fill(APPLICANT_PHONE[-4:])
        screenshot(page, "rate-kiosk-lookup-1080x1920")
        page.get_by_role("button", name="下一步").click()
        page.wait_for_load_state()
        assert case["case_number"] in page.locator("h1 + .lead").inner_text()
        assert fits_width(page)
        axe_check(page)
        screenshot(page, "rate-kiosk-form-1080x1920")
        rate(page, BIRTH, "非常满意", reasons=("办理快捷", "最多跑一次"))
        submit(page)
        assert f"{BIRTH}：非常满意" in page.locator("#rate-thanks").inner_text()
        axe_check(page)
        screenshot(page, "rate-kiosk-thanks-1080x1920")
        assert [(channel, level) for channel, level, _, _ in ratings(sanji)] == [("kiosk", "very_satisfied")]
        page.get_by_role("button", name="完成").click()
        page.wait_for_url(re.compile(r"/kiosk$"))

        # Left on the rating form, the kiosk warns, then clears the screen.
        page.get_by_role("link", name=re.compile("^办事评价")).click()
        page.get_by_label("受理编号").fill(case["case_number"])
        page.get_by_label("手机号后四位").fill(APPLICANT_PHONE[-4:])
        page.get_by_role("button", name="下一步").click()
        page.wait_for_load_state()
        assert item_group(page, PERMIT).is_visible()
        page.clock.run_for(85_000)
        assert page.get_by_role("alertdialog").is_visible()
        page.clock.run_for(10_000)
        page.wait_for_url(re.compile(r"/kiosk$"))
        assert case["case_number"] not in page.content()
    finally:
        context.close()


def test_an_expired_or_forged_link_a_case_not_completed_and_a_closed_window_are_refused_in_chinese(sanji, page):
    case = completed_case(sanji)
    expired = sign_rating_link(KEY, case_id=case["case_id"], expires_at=sanji.clock.now() - timedelta(seconds=1))
    response = page.goto(f"{sanji.console}/rate/{expired}")
    assert response.status == 410
    assert "评价链接已过期" in page.locator("#rate-message").inner_text()
    assert page.locator("form.rate-form").count() == 0
    axe_check(page)
    screenshot(page, "rate-link-expired-1280x800")
    link = sign_link(sanji, case["case_id"])
    forged = link[:-2] + ("AA" if not link.endswith("AA") else "BB")
    assert page.goto(f"{sanji.console}/rate/{forged}").status == 403
    assert "评价链接无效" in page.locator("#rate-message").inner_text()

    open_case, _ = submitted_case(sanji)
    assert page.goto(f"{sanji.console}/rate/{sign_link(sanji, open_case['case_id'])}").status == 404
    assert "尚未全部办结" in page.locator("#rate-message").inner_text()

    # The expired link's form, posted anyway (with its CSRF token): refused by the evaluation service.
    page.goto(f"{sanji.console}/rate/{link}")
    csrf = page.locator("input[name=csrf_token]").first.input_value()
    item_id = item_group(page, PERMIT).get_attribute("id").removeprefix("r-")
    answer = page.request.post(f"{sanji.console}/rate/{expired}", form={"csrf_token": csrf,
                                                                       f"level-{item_id}": "satisfied"})
    assert answer.status == 410 and "评价链接已过期" in answer.text()

    # 31 days on, a link that would still be valid meets a closed rating window.
    sanji.clock.advance(days=31)
    long_link = sign_link(sanji, case["case_id"], days=60)
    assert page.goto(f"{sanji.console}/rate/{long_link}").status == 409
    assert "已超过评价期限" in page.locator("#rate-message").inner_text()
    answer = page.request.post(f"{sanji.console}/rate/{long_link}", form={"csrf_token": csrf,
                                                                         f"level-{item_id}": "satisfied"})
    assert answer.status == 409 and "已超过评价期限" in answer.text()
    assert ratings(sanji) == []


def test_a_rating_without_its_csrf_token_is_refused_and_nothing_is_written(sanji, page):
    case = completed_case(sanji)
    link = sign_link(sanji, case["case_id"])
    page.goto(f"{sanji.console}/rate/{link}")
    item_id = item_group(page, PERMIT).get_attribute("id").removeprefix("r-")
    for path in (f"/rate/{link}", "/lookup/rate", "/kiosk/rate/submit"):
        response = page.request.post(f"{sanji.console}{path}", form={f"level-{item_id}": "very_dissatisfied"},
                                     max_redirects=0)
        assert response.status in (403, 303), path
    response = page.request.post(f"{sanji.console}/rate/{link}", form={
        "csrf_token": "not-the-cookie-s", f"level-{item_id}": "very_dissatisfied"})
    assert response.status == 403 and "安全校验未通过" in response.text()
    assert ratings(sanji) == []
    assert query(sanji.database_url, "SELECT count(*) FROM evaluation_rectifications")[0][0] == 0
