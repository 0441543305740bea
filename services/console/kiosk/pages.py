"""The kiosk pages (``/kiosk...``) and the resident lookup (``/lookup``): nameko ``@http`` entrypoints on two
mixins that ``ConsoleService`` takes among its bases.

The kiosk: register the device once (its token goes into an HttpOnly cookie), then, for each resident: choose a
bundle or a matter, answer one question per screen, submit, see the receipt, print, done. Nothing personal is
kept: the form lives in the page, the receipt cookie names only the case for a few minutes, and every page is
``no-store``. The idle timeout (kiosk.js) clears the screen and the receipt cookie.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote

import eventlet
import segno
from werkzeug.wrappers import Response

from services.console.kiosk import checklist
from services.console.kiosk.backend import Device, IntakeUnavailable, KioskBackendProvider
from services.console.kiosk.circle_pages import nearby_for_lookup, nearby_for_receipt
from services.console.kiosk.printing import DOCUMENTS, PAPERS, render_pdf
from services.console.kiosk.receipt import SHANGHAI, STATUS_NAMES, chinese_date, receipt_from_case
from services.console.pages_base import check_form_csrf, form_csrf, set_form_cookie
from services.console.web import redirect, render
from shared.web import http

DEVICE_COOKIE = "sanji_kiosk_device"
RECEIPT_COOKIE = "sanji_kiosk_receipt"
RECEIPT_MAX_AGE = 15 * 60
ROUTING_WAIT_SECONDS = 3.0
CASE_NUMBER = re.compile(r"^SJ\d{8}-[0-9A-F]{12}$")
SUBMISSION_KEY = re.compile(r"^kiosk-[0-9a-f]{32}$")


def _with_form_cookie(response: Response, token: str, new: bool, secure: bool) -> Response:
    return set_form_cookie(response, token, secure) if new else response


class KioskPages:
    kiosk_backend = KioskBackendProvider()

    # ── helpers ────────────────────────────────────────────────────────────────────────────────────────────
    def _device(self, request) -> Device | None:
        token = self.kiosk_backend.configured_token or request.cookies.get(DEVICE_COOKIE)
        return self.kiosk_backend.device(token)

    def _page(self, request, template: str, status: int = 200, device: Device | None = None, **context) -> Response:
        csrf, new = form_csrf(request)
        response = render(template, status=status, csrf_token=csrf, device=device,
                          idle_seconds=self.kiosk_backend.idle_seconds, **context)
        return _with_form_cookie(response, csrf, new, self.kiosk_backend.settings.secure_cookies)

    def _unavailable(self, request, device: Device | None) -> Response:
        return self._page(request, "kiosk/message.html", status=503, device=device, heading="系统暂时无法连接",
                          message="请稍后再试，或请社区工作人员协助。您填写的内容没有提交。")

    def _expired_form(self, request, device: Device | None) -> Response:
        return self._page(request, "kiosk/message.html", status=403, device=device, heading="页面已过期",
                          message="安全校验未通过，内容没有提交。请回到首页重新开始。")

    # ── device registration ────────────────────────────────────────────────────────────────────────────────
    @http("GET", "/kiosk/register")
    def kiosk_register_form(self, request):
        return self._page(request, "kiosk/register.html", device=self._device(request), error=None)

    @http("POST", "/kiosk/register")
    def kiosk_register(self, request):
        if not check_form_csrf(request):
            return self._expired_form(request, None)
        token = (request.form.get("device_token") or "").strip()
        device = self.kiosk_backend.device(token)
        if device is None:
            return self._page(request, "kiosk/register.html", status=422, device=None,
                              error="这不是有效的自助终端令牌，请核对后重新输入。")
        response = redirect("/kiosk")
        response.set_cookie(DEVICE_COOKIE, token, max_age=365 * 24 * 3600, httponly=True, samesite="Strict",
                            secure=self.kiosk_backend.settings.secure_cookies, path="/kiosk")
        return response

    # ── the resident's way through ─────────────────────────────────────────────────────────────────────────
    @http("GET", "/kiosk")
    def kiosk_home(self, request):
        device = self._device(request)
        if device is None:
            return redirect("/kiosk/register")
        try:
            catalogue = self.kiosk_backend.catalogue(device)
        except IntakeUnavailable:
            return self._unavailable(request, device)
        response = self._page(request, "kiosk/home.html", device=device, bundles=catalogue["bundles"],
                              matters=catalogue["matters"], matter_names={m["code"]: m["name"]
                                                                         for m in catalogue["matters"]})
        response.delete_cookie(RECEIPT_COOKIE, path="/kiosk")
        return response

    def _application(self, device: Device, args) -> checklist.Application | None:
        try:
            return checklist.application_for(self.kiosk_backend.catalogue(device), bundle=args.get("bundle"),
                                             matter=None if args.get("bundle") else args.get("matter"))
        except checklist.UnknownChoice:
            return None

    def _apply_page(self, request, device, application, *, status=200, errors=None, values=None,
                    submission_key=None):
        return self._page(request, "kiosk/apply.html", status=status, device=device, application=application,
                          errors=errors or {}, values=values or {},
                          submission_key=submission_key or checklist.new_submission_key(),
                          commitment_text=checklist.COMMITMENT_TEXT, id_messages=checklist.ID_NUMBER_MESSAGES,
                          uscc_messages=checklist.USCC_MESSAGES, role_names=checklist.ROLE_NAMES,
                          authorisation_name=checklist.AUTHORISATION_NAME)

    @http("GET", "/kiosk/apply")
    def kiosk_apply_form(self, request):
        device = self._device(request)
        if device is None:
            return redirect("/kiosk/register")
        try:
            application = self._application(device, request.args)
        except IntakeUnavailable:
            return self._unavailable(request, device)
        if application is None:
            return self._page(request, "kiosk/message.html", status=404, device=device, heading="没有找到这个事项",
                              message="请回到首页重新选择。")
        return self._apply_page(request, device, application)

    @http("POST", "/kiosk/apply")
    def kiosk_apply(self, request):
        device = self._device(request)
        if device is None:
            return redirect("/kiosk/register")
        if not check_form_csrf(request):
            return self._expired_form(request, device)
        try:
            application = self._application(device, request.form)
        except IntakeUnavailable:
            return self._unavailable(request, device)
        if application is None:
            return self._page(request, "kiosk/message.html", status=404, device=device, heading="没有找到这个事项",
                              message="请回到首页重新选择。")
        submission_key = request.form.get("submission_key", "")
        if not SUBMISSION_KEY.fullmatch(submission_key):
            submission_key = checklist.new_submission_key()
        result = checklist.read_form(request.form, application, community_code=device.community_code,
                                     today=self.clock.now().astimezone(SHANGHAI).date())
        if result.errors:
            return self._apply_page(request, device, application, status=422, errors=result.errors,
                                    values=result.values, submission_key=submission_key)
        try:
            answer = self.kiosk_backend.submit(device, result.body, submission_key)
        except IntakeUnavailable:
            # The case may or may not have been taken in: the same key makes a second tap safe.
            values = {k: v for k, v in result.values.items() if k != "id_number"}
            return self._apply_page(request, device, application, status=503, values=values,
                                    submission_key=submission_key,
                                    errors={"_form": "系统繁忙，没有收到受理结果。请重新输入身份证号码后"
                                                     "再点一次“提交申请”，不会重复受理。"})
        if not answer.ok:
            errors = checklist.errors_from_problem(answer.body or {}, application)
            values = dict(result.values)
            if "id_number" in errors:
                values.pop("id_number", None)
            # A refused submission wrote nothing; the next attempt is a new submission with a new key.
            return self._apply_page(request, device, application, status=422, errors=errors, values=values)
        response = redirect("/kiosk/receipt")
        signed = self.kiosk_backend.receipts.sign(f"{answer.body['case_id']}:{application.kind}:{application.code}",
                                                  time.time())
        response.set_cookie(RECEIPT_COOKIE, signed, max_age=RECEIPT_MAX_AGE, httponly=True, samesite="Strict",
                            secure=self.kiosk_backend.settings.secure_cookies, path="/kiosk")
        return response

    def _receipt(self, request, device: Device, *, wait: bool):
        """The receipt of the case this kiosk just took in (from its short-lived cookie), or None."""
        value = self.kiosk_backend.receipts.unsign(request.cookies.get(RECEIPT_COOKIE), time.time(), RECEIPT_MAX_AGE)
        if value is None:
            return None
        case_id, kind, code = value.split(":", 2)
        deadline = time.monotonic() + (ROUTING_WAIT_SECONDS if wait else 0)
        while True:
            answer = self.kiosk_backend.case(device, case_id)
            if not answer.ok:
                return None
            # Routing places the items a moment after intake took the case in: wait briefly for it.
            if all(item.get("unit_code") for item in answer.body["items"]) or time.monotonic() >= deadline:
                break
            eventlet.sleep(0.2)
        try:
            application = checklist.application_for(self.kiosk_backend.catalogue(device),
                                                    **{"bundle" if kind == "bundle" else "matter": code})
        except checklist.UnknownChoice:
            application = None
        lookup_url = (f"{self.kiosk_backend.public_url(request)}/lookup?case="
                      f"{quote(answer.body['case_number'])}")
        return receipt_from_case(answer.body, application, community_name=device.community_name,
                                 lookup_url=lookup_url)

    @http("GET", "/kiosk/receipt")
    def kiosk_receipt(self, request):
        device = self._device(request)
        if device is None:
            return redirect("/kiosk/register")
        try:
            receipt = self._receipt(request, device, wait=True)
        except IntakeUnavailable:
            return self._unavailable(request, device)
        if receipt is None:
            return redirect("/kiosk")
        qr = segno.make(receipt.lookup_url, error="m")
        qr_svg = qr.svg_inline(scale=5, omitsize=True, title="办理进度查询二维码", svgclass="qr-code")
        return self._page(request, "kiosk/receipt.html", device=device, receipt=receipt, qr_svg=qr_svg,
                          documents=DOCUMENTS, nearby=nearby_for_receipt(
                              self.kiosk_backend, device, (item.matter_code for item in receipt.items)))

    @http("GET", "/kiosk/receipt.pdf")
    def kiosk_receipt_pdf(self, request):
        device = self._device(request)
        document, paper = request.args.get("document", "receipt"), request.args.get("paper", "a4")
        if device is None or document not in DOCUMENTS or paper not in PAPERS:
            return Response("not found", status=404, content_type="text/plain; charset=utf-8")
        try:
            receipt = self._receipt(request, device, wait=False)
        except IntakeUnavailable:
            return self._unavailable(request, device)
        if receipt is None:
            return redirect("/kiosk")
        filename = f"{receipt.case_number}-{document}-{paper}.pdf"
        return Response(render_pdf(receipt, document, paper), content_type="application/pdf", headers={
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f'inline; filename="{filename}"'})

    @http("POST", "/kiosk/done")
    def kiosk_done(self, request):
        """The resident is done (or the kiosk sat idle): forget the receipt and show the start screen."""
        response = redirect("/kiosk")
        response.delete_cookie(RECEIPT_COOKIE, path="/kiosk")
        response.headers["Clear-Site-Data"] = '"cache", "storage"'
        return response


class LookupPages:
    """The resident at home: her case number and the last four digits of her phone show where the case stands."""

    kiosk_backend = KioskBackendProvider()

    def _lookup_page(self, request, status=200, **context) -> Response:
        csrf, new = form_csrf(request)
        context.setdefault("errors", {})
        context.setdefault("values", {})
        context.setdefault("result", None)
        context.setdefault("notice", None)
        context.setdefault("nearby", [])
        response = render("kiosk/lookup.html", status=status, csrf_token=csrf, status_names=STATUS_NAMES,
                          level_names=checklist.LEVEL_NAMES, chinese_date=chinese_date, **context)
        return _with_form_cookie(response, csrf, new, self.kiosk_backend.settings.secure_cookies)

    @http("GET", "/lookup")
    def lookup_form(self, request):
        case = (request.args.get("case") or "").strip().upper()
        return self._lookup_page(request, values={"case_number": case if CASE_NUMBER.fullmatch(case) else ""})

    @http("POST", "/lookup")
    def lookup(self, request):
        case_number = (request.form.get("case_number") or "").strip().upper()
        last4 = (request.form.get("phone_last4") or "").strip()
        values = {"case_number": case_number, "phone_last4": ""}
        if not check_form_csrf(request):
            return self._lookup_page(request, status=403, values=values,
                                     notice="页面已过期（安全校验未通过），请重新输入后查询。")
        errors = {}
        if not CASE_NUMBER.fullmatch(case_number):
            errors["case_number"] = "请输入受理回执上的受理编号，如 SJ20261206-0A1B2C3D4E5F。"
        if not re.fullmatch(r"\d{4}", last4):
            errors["phone_last4"] = "请输入申请时所留手机号码的最后4位数字。"
        if errors:
            return self._lookup_page(request, status=422, values=values, errors=errors)
        backend = self.kiosk_backend
        client = backend.client_key(request)
        if not backend.per_client.allow(client) or not backend.per_case.allow(case_number):
            wait = max(backend.per_client.retry_after(client), backend.per_case.retry_after(case_number))
            return self._lookup_page(request, status=429, values=values,
                                     notice=f"查询过于频繁，请{max(wait, 1)}秒后再试。")
        try:
            answer = backend.lookup(case_number, last4, client)
        except IntakeUnavailable:
            return self._lookup_page(request, status=503, values=values, notice="系统暂时无法查询，请稍后再试。")
        if answer.ok:
            from services.console.kiosk.rating_pages import lookup_rating_url  # 评价 on completed items

            return self._lookup_page(request, values={"case_number": case_number}, result=answer.body,
                                     nearby=nearby_for_lookup(backend, answer.body),
                                     rating_url=lookup_rating_url(backend.settings.assertion_key, case_number,
                                                                  answer.body))
        if answer.reason == "lookup_locked":
            minutes = -(-int(answer.body.get("retry_after_seconds", 900)) // 60)
            return self._lookup_page(request, status=429, values=values,
                                     notice=f"输入错误次数过多，查询已暂时锁定，请{minutes}分钟后再试。"
                                            "如需帮助，请携带身份证到社区党群服务中心查询。")
        if answer.reason == "lookup_no_match":
            left = answer.body.get("attempts_left")
            return self._lookup_page(request, status=404, values=values, errors={
                "phone_last4": f"受理编号或手机号后四位不正确，请核对。还可尝试{left}次，之后将暂时锁定。"})
        return self._lookup_page(request, status=422, values=values, notice="无法查询，请核对后重试。")
