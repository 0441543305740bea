"""好差评 pages of the console: a mixin with nameko ``@http`` entrypoints that ``ConsoleService`` takes among its bases.

Three ways in, one form (``kiosk/rate.html``):

- ``/rate/<token>``: the signed link of the completion SMS (no login; channel ``sms_link``). The token is the
  evaluation service's; the page shows what ``GET /v1/rating-links/<token>`` gives and posts to
  ``POST /v1/rating-links/<token>/ratings``.
- ``/lookup/rate?g=<grant>``: from the resident lookup (channel ``lookup``). A successful lookup (case number and
  phone ending, checked and throttled by intake) puts a grant on the 评价 action: the case number signed by the
  console, valid for 30 minutes. With it, the console asks the evaluation service for a link
  (``POST /v1/rating-links`` by case number, with its own service token) and rates through it. Without a grant
  from a lookup, nobody gets a link: the console rates only cases looked up on it.
- ``/kiosk/rate``: the kiosk's 办事评价 (channel ``kiosk``): the resident enters the case number and her phone
  ending (the same throttled lookup), then rates with the kiosk's own token (``POST /v1/cases/<id>/ratings``),
  which the evaluation service accepts for the kiosk of the case's community only. The idle timeout clears it.

Every form carries the double-submit CSRF token of the signed-out forms (``pages_base.form_csrf``); a form
without it is refused before anything is sent. Refusals of the evaluation service are shown in Chinese
(``rating.refusal_message``) and nothing is written.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import quote

import structlog
from werkzeug.wrappers import Response

from services.console.apis import ApiAnswer, ServiceUnavailable
from services.console.kiosk import rating
from services.console.kiosk.backend import Device, IntakeUnavailable, KioskBackendProvider
from services.console.kiosk.pages import CASE_NUMBER, DEVICE_COOKIE, RECEIPT_COOKIE
from services.console.pages_base import check_form_csrf, form_csrf, set_form_cookie
from services.console.web import redirect, render
from shared.web import http

log = structlog.get_logger(__name__)

TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,400}\.[A-Za-z0-9_-]{16,100}$")
LOOKUP_PURPOSE = "lookup"


def _kiosk_purpose(device: Device) -> str:
    return f"kiosk-{device.community_code}"


def lookup_rating_url(secret: str, case_number: str, lookup_body: dict) -> str | None:
    """The 评价 action of a successful lookup: only for a completed case with a final item, never otherwise."""
    if not lookup_body.get("completed_at") or not any(item.get("status") in rating.FINAL_STATUSES
                                                      for item in lookup_body.get("items") or []):
        return None
    grant = rating.make_grant(rating.grant_signer(secret), LOOKUP_PURPOSE, case_number)
    return "/lookup/rate?g=" + quote(grant, safe="")


class RatingPages:
    kiosk_backend = KioskBackendProvider()

    # ── helpers ────────────────────────────────────────────────────────────────────────────────────────────
    def _rate_signer(self):
        return rating.grant_signer(self.kiosk_backend.settings.assertion_key)

    def _rate_page(self, request, template: str, *, status: int = 200, device: Device | None = None,
                     **context) -> Response:
        csrf, new = form_csrf(request)
        response = render(template, status=status, csrf_token=csrf, device=device,
                          idle_seconds=self.kiosk_backend.idle_seconds, **context)
        return set_form_cookie(response, csrf, self.kiosk_backend.settings.secure_cookies) if new else response

    def _rate_message(self, request, heading: str, message: str, *, status: int, device: Device | None = None,
                 back: tuple[str, str] | None = None) -> Response:
        if back is None:
            back = ("/kiosk", "回到首页") if device else ("/lookup", "办理进度查询")
        return self._rate_page(request, "kiosk/rate_message.html", status=status, device=device, heading=heading,
                                 message=message, back_url=back[0], back_label=back[1])

    def _rate_refused(self, request, answer: ApiAnswer, *, device: Device | None = None) -> Response:
        status = answer.status if 400 <= answer.status < 500 else 409
        return self._rate_message(request, "无法评价", rating.refusal_message(answer.reason), status=status,
                                  device=device)

    def _rate_unavailable(self, request, device: Device | None = None) -> Response:
        return self._rate_message(request, "系统暂时无法连接", "评价没有提交，请稍后再试。", status=503, device=device)

    def _rate_expired_form(self, request, device: Device | None = None) -> Response:
        return self._rate_message(request, "页面已过期", "安全校验未通过，评价没有提交。请重新打开评价页面后再试。",
                             status=403, device=device)

    def _rate_matter_names(self) -> dict[str, str]:
        return {code: matter.name for code, matter in self.accounts.catalogue.matters.items()}

    def _rate_link_view(self, token: str) -> ApiAnswer:
        return self.apis.evaluation("GET", f"/v1/rating-links/{token}", token=self.kiosk_backend.console_token)

    def _rate_issue(self, case_number: str, token: str) -> ApiAnswer:
        return self.apis.evaluation("POST", "/v1/rating-links", token=token, json={"case_number": case_number})

    def _rate_window_closed(self, view: dict) -> bool:
        closes = datetime.fromisoformat(str(view["window_closes_at"]).replace("Z", "+00:00"))
        return self.clock.now() > closes

    def _rate_form(self, request, view: dict, *, channel: str, action: str, status: int = 200,
              device: Device | None = None, grant: str | None = None, form: rating.RatingForm | None = None,
              notice: str | None = None) -> Response:
        form = form or rating.RatingForm()
        return self._rate_page(
            request, "kiosk/rate.html", status=status, device=device, action=action, grant=grant,
            case_number=view["case_number"], completed_at=view["completed_at"],
            window_closes_at=view["window_closes_at"], levels=rating.LEVELS,
            items=rating.page_items(view, self._rate_matter_names(), channel),
            praise=[r for r in rating.reasons_of(view) if r.kind == "praise"],
            complaint=[r for r in rating.reasons_of(view) if r.kind == "complaint"],
            errors=form.errors, values=form.values, notice=notice, comment_max=rating.COMMENT_MAX)

    def _rate_show(self, request, view_answer: ApiAnswer, *, channel: str, action: str, device: Device | None = None,
              grant: str | None = None) -> Response:
        if not view_answer.ok:
            return self._rate_refused(request, view_answer, device=device)
        if self._rate_window_closed(view_answer.body):
            return self._rate_message(request, "评价期已结束", rating.REFUSALS["rating_window_closed"], status=409,
                                 device=device)
        return self._rate_form(request, view_answer.body, channel=channel, action=action, device=device, grant=grant)

    def _rate_submit(self, request, view_answer: ApiAnswer, *, channel: str, action: str, send, device=None,
                grant=None) -> Response:
        """Read the form against what the case offers; send each rated item; thank, or say why not."""
        if not view_answer.ok:
            return self._rate_refused(request, view_answer, device=device)
        view = view_answer.body
        items = rating.page_items(view, self._rate_matter_names(), channel)
        form = rating.read_rating_form(request.form, items, rating.reasons_of(view), channel)
        if form.errors:
            return self._rate_form(request, view, channel=channel, action=action, status=422, device=device,
                                   grant=grant, form=form)
        names = {item.item_id: item.matter_name for item in items}
        outcomes, refusals = [], []
        for body in form.submissions:
            answer = send(view, body)
            if answer.ok:
                outcomes.append({"matter_name": names[body["item_id"]], "level_name": rating.LEVEL_NAMES[body["level"]],
                                 "changed": bool(answer.body.get("replaces")),
                                 "followed_up": bool(answer.body.get("rectification_id"))})
            else:
                refusals.append({"matter_name": names[body["item_id"]], "reason": answer.reason,
                                 "message": rating.refusal_message(answer.reason), "status": answer.status})
        log.info("ratings sent from a page", channel=channel, sent=len(outcomes), refused=len(refusals))
        if not outcomes:
            status = refusals[0]["status"] if 400 <= refusals[0]["status"] < 500 else 409
            if refusals[0]["reason"] in ("invalid_link", "link_expired", "rating_window_closed", "unknown_case"):
                return self._rate_message(request, "无法评价", refusals[0]["message"], status=status, device=device)
            notice = "评价没有提交：" + "；".join(f"{r['matter_name']}：{r['message']}" for r in refusals)
            return self._rate_form(request, view, channel=channel, action=action, status=status, device=device,
                              grant=grant, form=rating.RatingForm(values=form.values), notice=notice)
        return self._rate_page(request, "kiosk/rate_thanks.html", device=device, outcomes=outcomes,
                                 refusals=refusals, case_number=view["case_number"])

    # ── the signed link of the completion SMS ─────────────────────────────────────────────────────────────
    @http("GET", "/rate/<string:token>")
    def rate_by_link_form(self, request, token):
        if not TOKEN.fullmatch(token):
            return self._rate_message(request, "无法评价", rating.REFUSALS["invalid_link"], status=403)
        try:
            return self._rate_show(request, self._rate_link_view(token), channel="sms_link", action=f"/rate/{token}")
        except ServiceUnavailable:
            return self._rate_unavailable(request)

    @http("POST", "/rate/<string:token>")
    def rate_by_link(self, request, token):
        if not check_form_csrf(request):
            return self._rate_expired_form(request)
        if not TOKEN.fullmatch(token):
            return self._rate_message(request, "无法评价", rating.REFUSALS["invalid_link"], status=403)

        def send(view, body):
            return self.apis.evaluation("POST", f"/v1/rating-links/{token}/ratings", json=body,
                                        token=self.kiosk_backend.console_token)

        try:
            return self._rate_submit(request, self._rate_link_view(token), channel="sms_link", action=f"/rate/{token}",
                                send=send)
        except ServiceUnavailable:
            return self._rate_unavailable(request)

    # ── from the resident lookup ──────────────────────────────────────────────────────────────────────────
    def _rate_lookup_link(self, grant: str | None) -> tuple[str | None, ApiAnswer | None]:
        """The evaluation link for the case a grant names (issued to the console service), or (None, None)."""
        case_number = rating.read_grant(self._rate_signer(), grant, LOOKUP_PURPOSE, rating.LOOKUP_GRANT_SECONDS)
        if case_number is None:
            return None, None
        answer = self._rate_issue(case_number, self.kiosk_backend.console_token)
        return (answer.body["token"], None) if answer.ok else (None, answer)

    def _rate_lookup_again(self, request) -> Response:
        return self._rate_message(request, "请重新查询",
                                  "评价须在查询后30分钟内进行。请重新输入受理编号和手机号后四位查询，"
                                  "再点击已办结事项旁的“评价”。", status=403, back=("/lookup", "办理进度查询"))

    @http("GET", "/lookup/rate")
    def rate_from_lookup_form(self, request):
        grant = request.args.get("g")
        try:
            token, refused = self._rate_lookup_link(grant)
            if refused is not None:
                return self._rate_refused(request, refused)
            if token is None:
                return self._rate_lookup_again(request)
            return self._rate_show(request, self._rate_link_view(token), channel="lookup", action="/lookup/rate",
                                   grant=grant)
        except ServiceUnavailable:
            return self._rate_unavailable(request)

    @http("POST", "/lookup/rate")
    def rate_from_lookup(self, request):
        if not check_form_csrf(request):
            return self._rate_expired_form(request)
        grant = request.form.get("grant")
        try:
            token, refused = self._rate_lookup_link(grant)
            if refused is not None:
                return self._rate_refused(request, refused)
            if token is None:
                return self._rate_lookup_again(request)

            def send(view, body):
                return self.apis.evaluation("POST", f"/v1/rating-links/{token}/ratings", json=body,
                                            token=self.kiosk_backend.console_token)

            return self._rate_submit(request, self._rate_link_view(token), channel="lookup", action="/lookup/rate",
                                send=send, grant=grant)
        except ServiceUnavailable:
            return self._rate_unavailable(request)

    # ── the kiosk's 办事评价 ──────────────────────────────────────────────────────────────────────────────────
    def _rate_kiosk_device(self, request) -> Device | None:
        token = self.kiosk_backend.configured_token or request.cookies.get(DEVICE_COOKIE)
        return self.kiosk_backend.device(token)

    def _rate_kiosk_lookup_page(self, request, device: Device, *, status: int = 200, values=None, errors=None,
                           notice: str | None = None) -> Response:
        response = self._rate_page(request, "kiosk/rate_lookup.html", status=status, device=device,
                                     values=values or {}, errors=errors or {}, notice=notice)
        response.delete_cookie(RECEIPT_COOKIE, path="/kiosk")
        return response

    @http("GET", "/kiosk/rate")
    def kiosk_rate_start(self, request):
        device = self._rate_kiosk_device(request)
        if device is None:
            return redirect("/kiosk/register")
        return self._rate_kiosk_lookup_page(request, device)

    @http("POST", "/kiosk/rate")
    def kiosk_rate_lookup(self, request):
        device = self._rate_kiosk_device(request)
        if device is None:
            return redirect("/kiosk/register")
        case_number = (request.form.get("case_number") or "").strip().upper()
        last4 = (request.form.get("phone_last4") or "").strip()
        values = {"case_number": case_number}
        if not check_form_csrf(request):
            return self._rate_expired_form(request, device)
        errors = {}
        if not CASE_NUMBER.fullmatch(case_number):
            errors["case_number"] = "请输入受理回执上的受理编号，如 SJ20261206-0A1B2C3D4E5F。"
        if not re.fullmatch(r"\d{4}", last4):
            errors["phone_last4"] = "请输入申请时所留手机号码的最后4位数字。"
        if errors:
            return self._rate_kiosk_lookup_page(request, device, status=422, values=values, errors=errors)
        backend = self.kiosk_backend
        client = backend.client_key(request)
        if not backend.per_client.allow(client) or not backend.per_case.allow(case_number):
            wait = max(backend.per_client.retry_after(client), backend.per_case.retry_after(case_number))
            return self._rate_kiosk_lookup_page(request, device, status=429, values=values,
                                           notice=f"查询过于频繁，请{max(wait, 1)}秒后再试。")
        try:
            answer = backend.lookup(case_number, last4, client)
        except IntakeUnavailable:
            return self._rate_kiosk_lookup_page(request, device, status=503, values=values,
                                           notice="系统暂时无法查询，请稍后再试。")
        if not answer.ok:
            status, field, message = _lookup_refusal(answer)
            return self._rate_kiosk_lookup_page(request, device, status=status, values=values,
                                           errors={field: message} if field else None,
                                           notice=None if field else message)
        if not answer.body.get("completed_at"):
            return self._rate_kiosk_lookup_page(request, device, status=409, values=values,
                                           notice="这个办件尚未全部办结，办结后才能评价。")
        grant = rating.make_grant(self._rate_signer(), _kiosk_purpose(device), case_number)
        try:
            issued = self._rate_issue(case_number, device.token)
            if not issued.ok:
                return self._rate_kiosk_lookup_page(request, device, status=issued.status, values=values,
                                               notice=rating.refusal_message(issued.reason))
            return self._rate_show(request, self._rate_link_view(issued.body["token"]), channel="kiosk",
                              action="/kiosk/rate/submit", device=device, grant=grant)
        except ServiceUnavailable:
            return self._rate_unavailable(request, device)

    @http("POST", "/kiosk/rate/submit")
    def kiosk_rate(self, request):
        device = self._rate_kiosk_device(request)
        if device is None:
            return redirect("/kiosk/register")
        if not check_form_csrf(request):
            return self._rate_expired_form(request, device)
        grant = request.form.get("grant")
        case_number = rating.read_grant(self._rate_signer(), grant, _kiosk_purpose(device), rating.KIOSK_GRANT_SECONDS)
        if case_number is None:
            return self._rate_message(request, "请重新查询",
                                      "评价须在查询后15分钟内完成。请回到“办事评价”重新输入受理编号"
                                      "和手机号后四位。", status=403, device=device, back=("/kiosk/rate", "办事评价"))
        try:
            issued = self._rate_issue(case_number, device.token)
            if not issued.ok:
                return self._rate_refused(request, issued, device=device)

            def send(view, body):
                return self.apis.evaluation("POST", f"/v1/cases/{view['case_id']}/ratings", json=body,
                                            token=device.token)

            return self._rate_submit(request, self._rate_link_view(issued.body["token"]), channel="kiosk",
                                action="/kiosk/rate/submit", send=send, device=device, grant=grant)
        except ServiceUnavailable:
            return self._rate_unavailable(request, device)


def _lookup_refusal(answer) -> tuple[int, str | None, str]:
    """Intake's refusal of a lookup: (status, the field it belongs next to or None, the Chinese message)."""
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.reason == "lookup_locked":
        minutes = -(-int(body.get("retry_after_seconds", 900)) // 60)
        return 429, None, (f"输入错误次数过多，查询已暂时锁定，请{minutes}分钟后再试。"
                           "如需帮助，请到社区党群服务中心窗口办理。")
    if answer.reason == "lookup_no_match":
        return 404, "phone_last4", (f"受理编号或手机号后四位不正确，请核对。还可尝试{body.get('attempts_left')}次，"
                                    "之后将暂时锁定。")
    return 422, None, "无法查询，请核对后重试。"
