"""The kiosk in a real Chromium, against the whole system: a resident of 馨合家园社区 submits 流动人口一件事 with one
容缺 material, gets the receipt and the PDFs; a wrong ID number is refused next to the field (on the page, and by
the server with JavaScript off); an idle kiosk clears itself."""

from __future__ import annotations

import re

import pytest

from tests.support.browser import DESKTOP, PORTRAIT, axe_check, fits_width, screenshot
from tests.support.cases import APPLICANT_ID_NUMBER, APPLICANT_PHONE
from tests.support.db import INTAKE_TABLES, count_rows
from tests.support.pdf import pdf_text

pytestmark = pytest.mark.e2e

DEFERRED = "landlord-id-copy"
BAD_CHECKSUM = APPLICANT_ID_NUMBER[:-1] + ("0" if APPLICANT_ID_NUMBER[-1] != "0" else "1")


@pytest.fixture
def kiosk(portrait_page):
    """A kiosk screen, 1080x1920 portrait."""
    return portrait_page


@pytest.fixture
def desktop(page):
    return page


def register(page, sanji, token="dev-kiosk-xinhe"):
    page.goto(f"{sanji.console}/kiosk")
    assert page.url.endswith("/kiosk/register")
    page.get_by_label("设备令牌").fill(token)
    page.get_by_role("button", name="登记").click()
    page.wait_for_url(re.compile(r"/kiosk$"))


def next_step(page):
    page.locator("fieldset.step.current").get_by_role("button", name="下一步").click()


def choose_materials(page, deferred=(DEFERRED,)):
    for group in page.locator("fieldset.material").all():
        code = group.locator(".code").first.inner_text()
        group.get_by_label("容缺后补" if code in deferred else "已带来").check()


def fill_applicant(page, id_number=APPLICANT_ID_NUMBER):
    page.get_by_label("姓名").fill("刘金花")
    next_step(page)
    page.get_by_label("18位居民身份证号码").fill(id_number)
    next_step(page)


def test_a_resident_submits_the_migrant_bundle_with_one_deferred_material(sanji, kiosk):
    page = kiosk
    register(page, sanji)
    assert page.get_by_role("heading", name="您好，请选择要办理的事项").is_visible()
    assert "馨合家园社区" in page.locator("header").inner_text()
    assert page.get_by_text("migrant-bundle").is_visible()  # codes shown with their names
    axe_check(page)
    screenshot(page, "kiosk-home-1080x1920")

    page.get_by_role("link", name=re.compile("流动人口一件事")).click()
    materials = page.locator("fieldset.step.current")
    assert "请逐项确认材料" in materials.locator("legend").first.inner_text()
    id_card = page.locator("fieldset.material", has=page.locator(".code", has_text=re.compile("^id-card$")))
    assert id_card.get_by_label("容缺后补").count() == 0
    assert "不能容缺" in id_card.locator(".why-not").inner_text()
    rental = page.locator("fieldset.material", has=page.locator(".code", has_text=re.compile("^rental-contract$")))
    assert "「居住证办理」把它列为主要材料" in rental.locator(".why-not").inner_text()

    next_step(page)  # nothing chosen yet: every material gets its message, and the screen stays
    assert "请确认已带来居民身份证" in id_card.locator(".error").inner_text()
    choose_materials(page)
    assert id_card.locator(".error").is_hidden()  # an answer clears its message
    axe_check(page)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "kiosk-materials-1080x1920")
    next_step(page)

    commitment = page.locator("fieldset.step.current")
    assert "容缺受理承诺书" in commitment.inner_text()
    assert "房东身份证复印件" in commitment.inner_text()
    next_step(page)
    assert "须先阅读并同意" in commitment.locator(".error").inner_text()
    page.get_by_label("我已阅读并同意《容缺受理承诺书》").check()
    next_step(page)

    fill_applicant(page)
    page.get_by_label(re.compile("手机号码")).fill(APPLICANT_PHONE)
    next_step(page)
    summary = page.locator("#summary").inner_text()
    assert "刘**" in summary and APPLICANT_ID_NUMBER not in summary and APPLICANT_PHONE not in summary
    page.get_by_role("button", name="提交申请").click()

    page.wait_for_url(re.compile(r"/kiosk/receipt$"))
    page.locator("[data-pending=false]").wait_for()
    case_number = page.locator("#case-number").inner_text()
    assert re.fullmatch(r"SJ\d{8}-[0-9A-F]{12}", case_number)
    rows = page.locator("table.items tbody tr")
    assert rows.count() == 4
    text = page.locator("table.items").inner_text()
    assert "居住证办理" in text and "迈皋桥街道" in text and "街道" in text and "馨合家园社区" in text
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", text)  # the promised deadlines
    notice = page.locator("ul.deferred").inner_text()
    assert "房东身份证复印件" in notice and "前补交" in notice and "终止办理" in notice
    assert page.locator("figure.qr svg title").text_content() == "办理进度查询二维码"
    assert "刘金花" not in page.content() and APPLICANT_PHONE not in page.content()
    axe_check(page)
    assert fits_width(page)
    screenshot(page, "kiosk-receipt-1080x1920")

    for document, title in (("receipt", "受理回执"), ("notice", "一次性告知书")):
        for paper in ("a4", "80mm"):
            response = page.request.get(f"{sanji.console}/kiosk/receipt.pdf?document={document}&paper={paper}")
            assert response.status == 200
            assert response.headers["content-type"] == "application/pdf"
            pdf = response.body()
            assert pdf.startswith(b"%PDF-")
            shown = pdf_text(pdf)
            assert case_number in shown and title in shown and "房东身份证复印件" in shown
    link = page.get_by_role("link", name="打印受理回执（小票）")
    assert link.get_attribute("href") == "/kiosk/receipt.pdf?document=receipt&paper=80mm"

    page.get_by_role("button", name="完成，清除屏幕").click()
    page.wait_for_url(re.compile(r"/kiosk$"))
    assert "sanji_kiosk_receipt" not in {c["name"] for c in page.context.cookies()}
    page.goto(f"{sanji.console}/kiosk/receipt")  # the receipt is gone with it
    assert page.url.endswith("/kiosk")
    assert page.request.get(f"{sanji.console}/kiosk/receipt.pdf?document=receipt&paper=a4",
                            max_redirects=0).status == 303


def test_a_wrong_id_number_is_refused_next_to_the_field(sanji, desktop):
    page = desktop
    register(page, sanji)
    page.goto(f"{sanji.console}/kiosk/apply?bundle=migrant-bundle")
    choose_materials(page, deferred=())
    next_step(page)  # no 容缺: the commitment screen is skipped
    fill_applicant(page, id_number=BAD_CHECKSUM)
    field = page.get_by_label("18位居民身份证号码")
    assert field.is_visible()  # still on the ID screen
    assert field.get_attribute("aria-invalid") == "true"
    assert page.locator("#id_number-error").inner_text() == "身份证号码校验位不正确（GB 11643），请核对后重新输入。"
    axe_check(page)
    screenshot(page, "kiosk-bad-id-1280x800")
    field.fill("1101051949")
    next_step(page)
    assert "应为18位" in page.locator("#id_number-error").inner_text()
    assert set(count_rows(sanji.database_url, *INTAKE_TABLES).values()) == {0}


def test_the_server_refuses_a_wrong_id_number_without_javascript(sanji, browser):
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN", java_script_enabled=False, bypass_csp=True)
    page = context.new_page()
    try:
        register(page, sanji)
        page.goto(f"{sanji.console}/kiosk/apply?bundle=migrant-bundle")
        choose_materials(page, deferred=(DEFERRED,))
        page.get_by_label("我已阅读并同意《容缺受理承诺书》").check()
        page.get_by_label("姓名").fill("刘金花")
        page.get_by_label("18位居民身份证号码").fill(BAD_CHECKSUM)
        page.get_by_label(re.compile("手机号码")).fill("1391234")
        page.get_by_role("button", name="提交申请").click()
        page.wait_for_load_state()
        assert "校验位不正确" in page.locator("#id_number-error").inner_text()
        assert "11位手机号码" in page.locator("#phone-error").inner_text()
        assert page.get_by_label("18位居民身份证号码").input_value() == ""  # a refused number is not shown again
        assert page.get_by_label("姓名").input_value() == "刘金花"
        assert set(count_rows(sanji.database_url, *INTAKE_TABLES).values()) == {0}

        # A form without its CSRF token is refused, and nothing is written.
        response = page.request.post(f"{sanji.console}/kiosk/apply", form={"bundle": "migrant-bundle",
                                                                          "name": "刘金花"})
        assert response.status == 403
        assert set(count_rows(sanji.database_url, *INTAKE_TABLES).values()) == {0}
    finally:
        context.close()


def test_an_idle_kiosk_clears_the_screen_and_the_receipt(sanji, browser):
    context = browser.new_context(viewport=PORTRAIT, locale="zh-CN", bypass_csp=True)
    page = context.new_page()
    try:
        page.clock.install()
        register(page, sanji)
        page.evaluate("window.sameDocument = true")
        page.clock.run_for(120_000)  # an untouched start screen has nothing to clear and does not ask
        assert page.get_by_role("alertdialog").is_hidden()
        assert page.evaluate("window.sameDocument === true")  # not reloaded
        page.goto(f"{sanji.console}/kiosk/apply?bundle=migrant-bundle")
        choose_materials(page)
        next_step(page)
        page.get_by_label("我已阅读并同意《容缺受理承诺书》").check()
        next_step(page)
        page.get_by_label("姓名").fill("刘金花")

        page.clock.run_for(85_000)  # the warning shows before the screen clears
        assert page.get_by_role("alertdialog").is_visible()
        page.clock.run_for(10_000)
        page.wait_for_url(re.compile(r"/kiosk$"))
        assert "刘金花" not in page.content()
        page.go_back()  # the form's entry was replaced: nothing to go back to
        page.wait_for_load_state()
        assert "刘金花" not in page.content()
        assert all(field.input_value() != "刘金花" for field in page.locator("input").all())

        # On the receipt, going idle forgets the receipt too.
        page.goto(f"{sanji.console}/kiosk/apply?bundle=migrant-bundle")
        choose_materials(page, deferred=())
        next_step(page)
        fill_applicant(page)
        page.get_by_label(re.compile("手机号码")).fill(APPLICANT_PHONE)
        next_step(page)
        page.get_by_role("button", name="提交申请").click()
        page.wait_for_url(re.compile(r"/kiosk/receipt$"))
        assert "sanji_kiosk_receipt" in {c["name"] for c in context.cookies()}
        page.clock.run_for(100_000)
        page.wait_for_url(re.compile(r"/kiosk$"))
        assert "sanji_kiosk_receipt" not in {c["name"] for c in context.cookies()}
        page.goto(f"{sanji.console}/kiosk/receipt")
        assert page.url.endswith("/kiosk")
    finally:
        context.close()


def test_the_kiosk_works_at_1280x800_and_refuses_a_token_that_is_not_a_kiosks(sanji, desktop):
    page = desktop
    page.goto(f"{sanji.console}/kiosk/register")
    page.get_by_label("设备令牌").fill("dev-staff-xinhe")
    page.get_by_role("button", name="登记").click()
    assert "不是有效的自助终端令牌" in page.locator("#device_token-error").inner_text()
    axe_check(page)
    register(page, sanji)
    assert fits_width(page)
    screenshot(page, "kiosk-home-1280x800")
    page.get_by_role("link", name=re.compile("流动人口一件事")).click()
    assert fits_width(page)
    screenshot(page, "kiosk-materials-1280x800")
    choose_materials(page)
    next_step(page)
    page.get_by_label("我已阅读并同意《容缺受理承诺书》").check()
    axe_check(page)
    screenshot(page, "kiosk-commitment-1280x800")
    next_step(page)
    fill_applicant(page)
    page.get_by_label(re.compile("手机号码")).fill(APPLICANT_PHONE)
    next_step(page)
    axe_check(page)
    screenshot(page, "kiosk-confirm-1280x800")
    page.get_by_role("button", name="提交申请").click()
    page.wait_for_url(re.compile(r"/kiosk/receipt$"))
    page.locator("[data-pending=false]").wait_for()
    assert fits_width(page)
    screenshot(page, "kiosk-receipt-1280x800")
