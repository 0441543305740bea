"""Personal accounts in the browser: a forged form (no CSRF token) changes nothing, an idle session expires,
a wrong password is explained without saying whether the account exists, and an admin exports the audit trail."""

from __future__ import annotations

import requests

from services.console.sessions import SESSION_COOKIE
from tests.support.browser import axe_check, fits_width, login, screenshot
from tests.support.cases import MAIGAOQIAO_STREET, MIGRANT_BUNDLE, QIXIA_DISTRICT

STAFF = {"Authorization": "Bearer dev-staff-maigaoqiao"}


def _item(sanji) -> dict:
    receipt = sanji.submit(MIGRANT_BUNDLE)
    return sanji.routed_items(receipt["case_id"])["residence-permit"]


def test_the_login_page_explains_a_wrong_password(sanji, page, portrait_page):
    sanji.add_user("wangfang", "王芳", MAIGAOQIAO_STREET, ["window"])
    page.goto(f"{sanji.console}/login")
    axe_check(page)
    assert fits_width(page)
    screenshot(page, "login-1280x800")
    portrait_page.goto(f"{sanji.console}/login")
    assert portrait_page.get_by_label("用户名").is_visible()
    assert fits_width(portrait_page)
    axe_check(portrait_page)
    screenshot(portrait_page, "login-1080x1920")
    login(page, sanji.console, "wangfang", "not-the-password")
    assert "/login" in page.url
    assert page.get_by_role("alert").inner_text() == "用户名或密码不正确"
    assert page.get_by_label("用户名").get_attribute("aria-invalid") == "true"
    axe_check(page)
    login(page, sanji.console, "nobody", "not-the-password")
    assert page.get_by_role("alert").inner_text() == "用户名或密码不正确"
    cookie = next(c for c in page.context.cookies() if c["name"] == "sanji_form")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"


def test_a_form_without_its_csrf_token_changes_nothing(sanji, page):
    item = _item(sanji)
    sanji.add_user("wangfang", "王芳", MAIGAOQIAO_STREET, ["window"])
    login(page, sanji.console, "wangfang")
    session = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    assert session["httpOnly"] and session["sameSite"] == "Lax" and not session["secure"]  # Secure in production

    # Another site's form posting with the person's cookie but without the page's token.
    forged = requests.post(f"{sanji.console}/staff/items/{item['item_id']}/claim",
                           cookies={SESSION_COOKIE: session["value"]}, data={"matter_code": "residence-permit"},
                           allow_redirects=False, timeout=5)
    assert forged.status_code == 403 and "安全校验未通过" in forged.text
    wrong = requests.post(f"{sanji.console}/staff/items/{item['item_id']}/claim",
                          cookies={SESSION_COOKIE: session["value"]},
                          data={"matter_code": "residence-permit", "csrf_token": "guessed"},
                          allow_redirects=False, timeout=5)
    assert wrong.status_code == 403
    view = requests.get(f"{sanji.routing}/v1/items/{item['item_id']}", headers=STAFF, timeout=5).json()
    assert view["status"] == "queued" and view["claimed_by"] is None

    # The page's own form carries the token and works.
    page.goto(f"{sanji.console}/staff/items/{item['item_id']}")
    page.get_by_role("button", name="认领", exact=True).click()
    assert "已认领" in page.get_by_role("status").inner_text()


def test_an_idle_session_expires_and_nothing_is_done_with_it(sanji, page):
    item = _item(sanji)
    sanji.add_user("wangfang", "王芳", MAIGAOQIAO_STREET, ["window"])
    login(page, sanji.console, "wangfang")
    page.goto(f"{sanji.console}/staff/items/{item['item_id']}")

    sanji.clock.advance(minutes=31)  # idle longer than SANJI_CONSOLE_SESSION_IDLE_MINUTES (30)
    page.get_by_role("button", name="认领", exact=True).click()
    assert "/login" in page.url
    assert "登录已过期" in page.get_by_role("status").inner_text()
    view = requests.get(f"{sanji.routing}/v1/items/{item['item_id']}", headers=STAFF, timeout=5).json()
    assert view["claimed_by"] is None

    # Signing in again leads back to the page.
    page.get_by_label("用户名").fill("wangfang")
    page.get_by_label("密码").fill("correct-horse-battery")
    page.get_by_role("button", name="登录").click()
    assert page.url.endswith("/")  or "/staff/" in page.url


def test_an_admin_opens_an_account_and_exports_the_audit_trail(sanji, page):
    sanji.add_user("zhaoadmin", "赵管理", QIXIA_DISTRICT, ["admin", "supervisor"])
    login(page, sanji.console, "zhaoadmin")
    page.goto(f"{sanji.console}/admin/accounts")
    axe_check(page)
    page.get_by_label("用户名").fill("Bad Name")
    page.get_by_role("button", name="开设账号").click()
    assert "用户名为" in page.locator("#username-error").inner_text()
    assert sanji.store.list_accounts()[0].username == "zhaoadmin" and len(sanji.store.list_accounts()) == 1
    page.get_by_label("用户名").fill("sunqing")
    page.get_by_label("姓名").fill("孙青")
    page.get_by_label("单位").select_option("320113003000")
    page.get_by_label("窗口人员").check()
    page.get_by_label("初始密码").fill("a-long-secret-42")
    page.get_by_role("button", name="开设账号").click()
    assert "已开设账号 sunqing" in page.get_by_role("status").inner_text()
    screenshot(page, "admin-accounts-1280x800")
    page.goto(f"{sanji.console}/admin/audit")
    axe_check(page)
    screenshot(page, "admin-audit-1280x800")
    link = page.get_by_role("link", name="导出 CSV").get_attribute("href")
    session = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    export = requests.get(f"{sanji.console}{link}", cookies={SESSION_COOKIE: session["value"]}, timeout=5)
    assert export.headers["Content-Type"].startswith("text/csv")
    text = export.content.decode("utf-8-sig")
    assert "zhaoadmin,login" in text.replace('"', "") and "account-add,sunqing" in text.replace('"', "")
