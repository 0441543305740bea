"""The console's reach in a real Chromium, against the whole system: the 15-minute service circle on the kiosk
(附近哪里能办, after choosing a matter, on the receipt), on the lookup and on the public /circle page, and an
enterprise applying for 企业开办一件事 at the kiosk, its 统一社会信用代码 checked on the page and by the server.

The circle's expected points are computed here from the service-point YAML with this test's own haversine and
opening-hours check, not with the code under test."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

import pytest
import yaml

from shared.config import REPO_ROOT
from shared.workdays import SHANGHAI
from tests.support.browser import axe_check, fits_width, screenshot
from tests.support.cases import APPLICANT_PHONE, REPRESENTATIVE_ID_NUMBER, migrant_bundle
from tests.support.db import INTAKE_TABLES, count_rows
from tests.support.pdf import pdf_text

pytestmark = pytest.mark.e2e

POINTS = yaml.safe_load((REPO_ROOT / "catalogue" / "nanjing" / "service-points.yaml").read_text(encoding="utf-8"))
XINHE_CENTRE = (32.1121, 118.8046)   # 馨合家园社区党群服务中心: where the 馨合家园 kiosk's circle is centred
USCC = "91350100M000100Y43"          # GB 32100-2015's example
BAD_USCC = "91350100M000100Y44"      # one check character off


def expected_circle(lat: float, lon: float, matter: str, moment: datetime) -> list[str]:
    """Point ids within 15 minutes' walk (75 m a minute) that accept ``matter`` and are open on arrival, nearest
    first (an ordinary working weekday: the weekday's hours)."""
    def metres(lat2, lon2):
        p1, p2, dp, dl = map(math.radians, (lat, lat2, lat2 - lat, lon2 - lon))
        h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * 6_371_008.8 * math.asin(math.sqrt(h))

    found = []
    for point in POINTS["points"]:
        if matter not in {m["code"] for m in point["matters"]}:
            continue
        distance = metres(point["location"]["lat"], point["location"]["lon"])
        if distance > 75 * 15:
            continue
        arrival = moment + timedelta(minutes=max(1, math.ceil(distance / 75)))
        day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[arrival.weekday()]
        now = arrival.strftime("%H:%M")
        if any(span.split("-")[0] <= now < span.split("-")[1] for span in point["hours"].get(day, [])):
            found.append((distance, point["id"]))
    return [point_id for _, point_id in sorted(found)]


def local_now(sanji) -> datetime:
    return sanji.clock.now().astimezone(SHANGHAI).replace(tzinfo=None)


def shown_points(page) -> list[str]:
    return page.locator(".circle-point").evaluate_all("items => items.map(item => item.dataset.point)")


def register(page, sanji, token="dev-kiosk-xinhe"):
    page.goto(f"{sanji.console}/kiosk")
    page.get_by_label("设备令牌").fill(token)
    page.get_by_role("button", name="登记").click()
    page.wait_for_url(re.compile(r"/kiosk$"))


def next_step(page):
    page.locator("fieldset.step.current").get_by_role("button", name="下一步").click()


# ── the circle on the kiosk ───────────────────────────────────────────────────────────────────────────────

def test_the_kiosk_lists_the_nearest_open_points_and_says_when_none_is_open(sanji, portrait_page, page):
    kiosk = portrait_page
    register(kiosk, sanji)
    expected = expected_circle(*XINHE_CENTRE, "vocational-training-signup", local_now(sanji))
    assert len(expected) >= 3

    kiosk.get_by_role("link", name=re.compile("附近哪里能办")).click()
    kiosk.wait_for_url(re.compile(r"/kiosk/circle$"))
    assert kiosk.get_by_role("heading", name="附近哪里能办").is_visible()
    axe_check(kiosk)
    kiosk.get_by_role("link", name=re.compile("职业技能培训报名")).click()
    assert shown_points(kiosk) == expected
    first = kiosk.locator(".circle-point").first
    text = first.inner_text()
    assert "馨合家园社区党群服务中心" in text and "步行约1分钟" in text
    assert "社区党群服务中心" in first.locator(".circle-kind").inner_text()
    assert "08:30-12:00、13:30-17:30" in text and "代收转办" in text
    assert "居民身份证" in text  # what to bring
    kinds = kiosk.locator(".circle-kind").all_inner_texts()
    assert {"便利店自助点", "超市服务驿站"} & set(kinds)
    assert "自助" in kiosk.locator(".how").all_inner_texts()
    axe_check(kiosk)
    assert fits_width(kiosk)
    screenshot(kiosk, "kiosk-circle-1080x1920")

    # After choosing a matter on the apply page: the same list, and the way back to the form.
    register(page, sanji)
    page.goto(f"{sanji.console}/kiosk/apply?matter=vocational-training-signup")
    page.get_by_role("link", name="附近15分钟可办").click()
    assert shown_points(page) == expected
    assert fits_width(page)
    screenshot(page, "kiosk-circle-1280x800")
    page.get_by_role("link", name="返回继续办理").click()
    page.wait_for_url(re.compile(r"/kiosk/apply\?matter=vocational-training-signup$"))

    # Late in the evening nothing within the walk is open: a clear message instead of a list.
    sanji.clock.advance(hours=14, minutes=30)   # Monday 23:30
    assert expected_circle(*XINHE_CENTRE, "vocational-training-signup",
                           local_now(sanji)) == []
    kiosk.goto(f"{sanji.console}/kiosk/circle?matter=vocational-training-signup")
    assert shown_points(kiosk) == []
    message = kiosk.locator(".circle-empty").inner_text()
    assert "现在步行15分钟范围内没有开放" in message and "职业技能培训报名" in message
    axe_check(kiosk)
    screenshot(kiosk, "kiosk-circle-closed-1080x1920")


# ── the public page and the lookup ────────────────────────────────────────────────────────────────────────

def test_the_public_circle_page_by_community_and_its_messages_for_bad_input(sanji, page, portrait_page):
    page.goto(f"{sanji.console}/circle")
    assert page.get_by_role("heading", name="附近哪里能办").is_visible()
    page.get_by_label("办理事项").select_option("residence-permit")
    page.get_by_label(re.compile("所在社区")).select_option("320113003021")
    page.get_by_role("button", name="查询").click()
    assert shown_points(page) == expected_circle(*XINHE_CENTRE, "residence-permit",
                                                 local_now(sanji))
    axe_check(page)
    assert fits_width(page)
    screenshot(page, "circle-public-1280x800")

    # Coordinates out of range: intake's invalid_coordinates, as a message next to the fields; no list.
    page.get_by_label("按经纬度", exact=True).check()
    page.get_by_label(re.compile("^纬度")).fill("91")
    page.get_by_label("经度").fill("118.8046")
    page.get_by_role("button", name="查询").click()
    error = page.locator("#coordinates-error")
    assert "经纬度不正确" in error.inner_text()
    assert page.get_by_label(re.compile("^纬度")).get_attribute("aria-invalid") == "true"
    assert page.locator(".circle-point").count() == 0
    axe_check(page)
    screenshot(page, "circle-public-bad-coordinates-1280x800")

    # An unknown service point and an unknown matter (a link typed by hand): their own messages.
    portrait_page.goto(f"{sanji.console}/circle?matter=residence-permit&place=point&point=sp-no-such-point")
    assert "没有这个服务点" in portrait_page.locator("#point-error").inner_text()
    portrait_page.goto(f"{sanji.console}/circle?matter=no-such-matter&place=coordinates&lat=32.1121&lon=118.8046")
    assert "没有这个事项" in portrait_page.locator("#matter-error").inner_text()
    axe_check(portrait_page)
    assert fits_width(portrait_page)
    screenshot(portrait_page, "circle-public-unknown-matter-1080x1920")

    # From a point's own QR code: its coordinates, and the list around it.
    page.goto(f"{sanji.console}/circle?matter=vocational-training-signup&place=point&point=sp-qx-xinhe-suguo")
    assert shown_points(page) == expected_circle(32.1087, 118.8021, "vocational-training-signup",
                                                 local_now(sanji))


def test_the_lookup_shows_where_nearby_the_missing_material_can_be_handed_in(sanji, page):
    case = sanji.submit(migrant_bundle())
    sanji.routed_items(case["case_id"])
    page.goto(f"{sanji.console}/lookup?case={case['case_number']}")
    page.get_by_label("手机号后四位").fill(APPLICANT_PHONE[-4:])
    page.get_by_role("button", name="查询").click()
    nearby = page.locator("#lookup-nearby")
    assert "附近15分钟可补交材料" in nearby.inner_text()
    permit = nearby.locator("section.circle-list[data-matter=residence-permit]")
    expected = expected_circle(*XINHE_CENTRE, "residence-permit", local_now(sanji))
    assert permit.locator(".circle-point").evaluate_all("items => items.map(i => i.dataset.point)") == expected[:3]
    axe_check(page)
    assert fits_width(page)
    screenshot(page, "lookup-nearby-1280x800")


# ── an enterprise at the kiosk ────────────────────────────────────────────────────────────────────────────

def fill_enterprise(page, uscc):
    page.get_by_label(re.compile("^企业名称")).fill("南京玄武某某科技有限公司")
    next_step(page)
    page.get_by_label("18位统一社会信用代码").fill(uscc)
    next_step(page)


def test_an_enterprise_submits_the_startup_bundle_and_gets_the_receipt_and_pdf(sanji, portrait_page):
    page = portrait_page
    register(page, sanji, token="dev-kiosk-xuanwu")
    assert page.get_by_role("heading", name="企业办事").is_visible()
    axe_check(page)
    page.get_by_role("link", name=re.compile("企业开办一件事")).click()

    fill_enterprise(page, BAD_USCC)   # refused on the page, next to the field
    field = page.get_by_label("18位统一社会信用代码")
    assert field.is_visible() and field.get_attribute("aria-invalid") == "true"
    assert "统一社会信用代码校验失败" in page.locator("#uscc-error").inner_text()
    axe_check(page)
    screenshot(page, "kiosk-enterprise-bad-uscc-1080x1920")
    field.fill(USCC)
    next_step(page)

    next_step(page)   # who acts: nothing chosen yet
    assert "请选择" in page.locator("#role-error").inner_text()
    page.get_by_label(re.compile("委托代理人")).check()
    next_step(page)
    assert "授权委托书" in page.locator("fieldset.step.current legend").first.inner_text()
    next_step(page)
    assert "授权委托书" in page.locator("#authorisation-error").inner_text()
    page.get_by_label("已带来授权委托书").check()
    next_step(page)

    assert "请逐项确认材料" in page.locator("fieldset.step.current legend").first.inner_text()
    for group in page.locator("fieldset.step.current fieldset.material").all():
        code = group.locator(".code").first.inner_text()
        group.get_by_label("容缺后补" if code == "premises-proof" else "已带来").check()
    axe_check(page)
    next_step(page)
    page.get_by_label("我已阅读并同意《容缺受理承诺书》").check()
    next_step(page)
    page.get_by_label("姓名").fill("徐明")
    next_step(page)
    page.get_by_label("18位居民身份证号码").fill(REPRESENTATIVE_ID_NUMBER)
    next_step(page)
    page.get_by_label(re.compile("手机号码")).fill("13951234567")
    next_step(page)
    summary = page.locator("#summary").inner_text()
    assert USCC in summary and "委托代理人" in summary and REPRESENTATIVE_ID_NUMBER not in summary
    axe_check(page)
    screenshot(page, "kiosk-enterprise-confirm-1080x1920")
    page.get_by_role("button", name="提交申请").click()

    page.wait_for_url(re.compile(r"/kiosk/receipt$"))
    page.locator("[data-pending=false]").wait_for()
    case_number = page.locator("#case-number").inner_text()
    lead = page.locator(".lead").first.inner_text()
    assert "南京玄武某某科技有限公司" in lead and USCC in lead and "委托代理人" in lead and "徐明" not in lead
    table = page.locator("table.items")
    assert table.locator("tbody tr").count() == 4
    text = table.inner_text()
    assert "企业设立登记" in text and "公章刻制备案" in text and "玄武区" in text
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日", text)   # the promised deadlines
    assert "住所（经营场所）使用证明" in page.locator("ul.deferred").inner_text()
    assert "不受理" in page.locator(".receipt-circle").inner_text()  # no nearby point takes enterprise matters
    axe_check(page)
    assert fits_width(page)
    screenshot(page, "kiosk-enterprise-receipt-1080x1920")
    response = page.request.get(f"{sanji.console}/kiosk/receipt.pdf?document=receipt&paper=a4")
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    shown = pdf_text(response.body())
    assert case_number in shown and "南京玄武某某科技有限公司" in shown and USCC in shown


def test_a_bad_uscc_posted_without_the_page_is_refused_by_the_server_and_nothing_written(sanji, page):
    register(page, sanji, token="dev-kiosk-xuanwu")
    page.goto(f"{sanji.console}/kiosk/apply?bundle=enterprise-startup")
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    materials = {f"material-{code}": "provided" for code in (
        "establishment-application", "articles-of-association", "legal-representative-id", "premises-proof",
        "shareholder-identity", "business-licence", "bank-account-licence")}
    form = {"csrf_token": csrf, "bundle": "enterprise-startup", "organisation_name": "南京玄武某某科技有限公司",
            "uscc": BAD_USCC, "role": "legal_representative", "name": "徐明", "id_number": REPRESENTATIVE_ID_NUMBER,
            "phone": "13951234567", **materials}
    response = page.request.post(f"{sanji.console}/kiosk/apply", form=form)
    assert response.status == 422
    assert "统一社会信用代码校验失败" in response.text()
    assert set(count_rows(sanji.database_url, *INTAKE_TABLES).values()) == {0}

    # The same form with a good code is taken in: the refusal was the code's alone.
    response = page.request.post(f"{sanji.console}/kiosk/apply", form={**form, "uscc": USCC}, max_redirects=0)
    assert response.status == 303 and response.headers["location"] == "/kiosk/receipt"
