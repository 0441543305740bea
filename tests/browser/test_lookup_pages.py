"""The resident lookup in a real Chromium, against the whole system: the case number and the last four digits of
her phone show each item's status, unit, deadline and what is still missing, with nothing personal beyond a
masked name; wrong digits five times lock the lookup out."""

from __future__ import annotations

import re

import pytest

from tests.support.browser import axe_check, fits_width, screenshot
from tests.support.cases import APPLICANT_ID_NUMBER, APPLICANT_PHONE, migrant_bundle

pytestmark = pytest.mark.e2e

WRONG = "0000" if APPLICANT_PHONE[-4:] != "0000" else "1111"


def submitted_case(sanji) -> dict:
    body = migrant_bundle()
    body["materials"] = {"provided": ["id-card", "photo", "rental-contract", "labour-contract",
                                      "landlord-property-certificate-copy", "job-or-school-proof",
                                      "spouse-id-card", "education-certificate"],
                         "deferred": ["landlord-id-copy"]}
    case = sanji.submit(body)
    sanji.routed_items(case["case_id"])
    return case


def look_up(page, last4):
    page.get_by_label("手机号后四位").fill(last4)
    page.get_by_role("button", name="查询").click()
    page.wait_for_load_state()


def test_the_resident_looks_up_her_case(sanji, page, portrait_page):
    kiosk = portrait_page
    case = submitted_case(sanji)
    page.goto(f"{sanji.console}/lookup?case={case['case_number']}")  # the link in the receipt's QR code
    assert page.get_by_label("受理编号").input_value() == case["case_number"]
    axe_check(page)
    screenshot(page, "lookup-form-1280x800")
    look_up(page, APPLICANT_PHONE[-4:])

    result = page.locator("#lookup-result")
    assert case["case_number"] in result.locator("h1").inner_text()
    assert "刘**" in result.inner_text()
    rows = {row.locator("th").inner_text().split()[0]: row for row in result.locator("tbody tr").all()}
    assert set(rows) == {"居住证办理", "生育登记（生育证明）", "职业技能培训报名", "就业登记"}
    permit = rows["居住证办理"].inner_text()
    assert "已分派，待受理" in permit and "迈皋桥街道（街道）" in permit
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", permit)
    assert re.search(r"房东身份证复印件，\d{4}年\d{1,2}月\d{1,2}日前补交", permit)
    assert "无" in rows["就业登记"].locator("td").last.inner_text()
    content = page.content()
    for personal in ("刘金花", APPLICANT_PHONE, APPLICANT_ID_NUMBER):
        assert personal not in content
    assert page.get_by_label("手机号后四位").input_value() == ""  # the digits are not shown again
    axe_check(page)
    assert fits_width(page)
    screenshot(page, "lookup-result-1280x800")

    kiosk.goto(f"{sanji.console}/lookup?case={case['case_number']}")
    look_up(kiosk, APPLICANT_PHONE[-4:])
    assert kiosk.locator("#lookup-result tbody tr").count() == 4
    assert fits_width(kiosk)
    screenshot(kiosk, "lookup-result-1080x1920")


def test_bad_input_is_refused_next_to_the_field(sanji, page):
    page.goto(f"{sanji.console}/lookup")
    page.get_by_label("受理编号").fill("12345")
    look_up(page, "12a")
    assert "请输入受理回执上的受理编号" in page.locator("#case_number-error").inner_text()
    assert "最后4位数字" in page.locator("#phone_last4-error").inner_text()
    assert page.get_by_label("受理编号").get_attribute("aria-invalid") == "true"
    axe_check(page)


def test_five_wrong_endings_lock_the_lookup(sanji, page):
    case = submitted_case(sanji)
    page.goto(f"{sanji.console}/lookup?case={case['case_number']}")
    for left in (4, 3, 2, 1):
        look_up(page, WRONG)
        assert f"还可尝试{left}次" in page.locator("#phone_last4-error").inner_text()
        assert page.locator("#lookup-result").count() == 0
    look_up(page, WRONG)
    notice = page.locator("#lookup-notice").inner_text()
    assert "输入错误次数过多" in notice and "15分钟后再试" in notice
    axe_check(page)
    screenshot(page, "lookup-locked-1280x800")

    look_up(page, APPLICANT_PHONE[-4:])  # the right digits do not open it while it is locked
    assert "输入错误次数过多" in page.locator("#lookup-notice").inner_text()
    assert page.locator("#lookup-result").count() == 0


def test_a_lookup_without_its_csrf_token_is_refused(sanji, page):
    case = submitted_case(sanji)
    response = page.request.post(f"{sanji.console}/lookup", form={"case_number": case["case_number"],
                                                                    "phone_last4": APPLICANT_PHONE[-4:]})
    assert response.status == 403
    assert "刘**" not in response.text()
