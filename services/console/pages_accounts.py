"""Signing in and out, and the admin pages: accounts and the audit trail (CSV)."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import unquote

from werkzeug.wrappers import Response

from services.console import oidc
from services.console.accounts import ROLES, AccountRefused, new_secret, tokens_match
from services.console.pages_base import check_form_csrf, form_csrf, pages, set_form_cookie
from services.console.sessions import SESSION_COOKIE
from services.console.web import redirect, render
from shared.web import http
from shared.workdays import SHANGHAI

OIDC_COOKIE = "sanji_oidc"


def _local_next(value: str | None) -> str:
    target = unquote(value or "/")
    return target if target.startswith("/") and not target.startswith("//") else "/"


class AccountPages:
    @http("GET", "/login")
    def login_page(self, request):
        token, new = form_csrf(request)
        notice = "登录已过期，请重新登录" if request.args.get("expired") else ""
        response = render("login.html", csrf_token=token, next=_local_next(request.args.get("next")),
                          error="", username="", notice=notice, oidc=self.accounts.settings.oidc_enabled,
                          nav="login")
        return set_form_cookie(response, token, self.accounts.settings.secure_cookies) if new else response

    @http("POST", "/login")
    def login(self, request):
        target = _local_next(request.form.get("next"))
        username = request.form.get("username", "").strip()
        token, new = form_csrf(request)
        if not check_form_csrf(request):
            self.accounts.audit(username or "-", "login", outcome="csrf-refused")
            response = render("login.html", status=403, csrf_token=token, next=target, username=username,
                              error="表单已失效，请重新输入后登录", notice="", oidc=self.accounts.settings.oidc_enabled,
                              nav="login")
            return set_form_cookie(response, token, self.accounts.settings.secure_cookies)
        outcome = self.accounts.login(username, request.form.get("password", ""))
        if not outcome.ok:
            return render("login.html", status=401, csrf_token=token, next=target, username=username,
                          error=outcome.reason, notice="", oidc=self.accounts.settings.oidc_enabled, nav="login")
        response = redirect(target if target != "/" else "/")
        response.set_cookie(SESSION_COOKIE, outcome.cookie, httponly=True, samesite="Lax",
                            secure=self.accounts.settings.secure_cookies, path="/")
        return response

    # ── OpenID Connect ────────────────────────────────────────────────────────────────────────────────
    def _oidc_redirect_uri(self, request) -> str:
        base = self.accounts.settings.public_url or request.host_url.rstrip("/")
        return f"{base.rstrip('/')}/login/oidc/callback"

    @http("GET", "/login/oidc")
    def oidc_start(self, request):
        settings = self.accounts.settings
        if not settings.oidc_enabled or not settings.oidc_authorize_url:
            return redirect("/login")
        state, nonce = new_secret(), new_secret()
        response = redirect(oidc.authorize_url(settings.oidc_authorize_url, client_id=settings.oidc_client_id,
                                               redirect_uri=self._oidc_redirect_uri(request), state=state,
                                               nonce=nonce))
        # Lax: the provider sends the browser back with a top-level GET from its own site.
        response.set_cookie(OIDC_COOKIE, f"{state}.{nonce}", httponly=True, samesite="Lax", max_age=600,
                            secure=settings.secure_cookies, path="/login/oidc")
        return response

    @http("GET", "/login/oidc/callback")
    def oidc_callback(self, request):
        settings = self.accounts.settings
        state, _, nonce = (request.cookies.get(OIDC_COOKIE) or "").partition(".")
        token, _ = form_csrf(request)

        def refused(message: str):
            self.accounts.audit("-", "login-oidc", outcome="refused", detail=message)
            response = render("login.html", status=401, csrf_token=token, next="/", username="", error=message,
                              notice="", oidc=settings.oidc_enabled, nav="login")
            response.delete_cookie(OIDC_COOKIE, path="/login/oidc")
            return set_form_cookie(response, token, settings.secure_cookies)

        if not settings.oidc_enabled or not settings.oidc_token_url:
            return redirect("/login")
        if not tokens_match(state, request.args.get("state")) or not request.args.get("code"):
            return refused("统一身份认证登录已失效，请重新登录")
        try:
            id_token = oidc.exchange_code(settings.oidc_token_url, code=request.args["code"],
                                          redirect_uri=self._oidc_redirect_uri(request),
                                          client_id=settings.oidc_client_id,
                                          client_secret=settings.oidc_client_secret)
            claims = oidc.verify_id_token(id_token, self.accounts.oidc_keys, issuer=settings.oidc_issuer,
                                          client_id=settings.oidc_client_id, nonce=nonce)
        except oidc.OidcRefused as refusal:
            return refused(refusal.message)
        outcome = self.accounts.login_by_oidc_subject(str(claims["sub"]))
        if not outcome.ok:
            return refused(outcome.reason)
        response = redirect("/")
        response.delete_cookie(OIDC_COOKIE, path="/login/oidc")
        response.set_cookie(SESSION_COOKIE, outcome.cookie, httponly=True, samesite="Lax",
                            secure=settings.secure_cookies, path="/")
        return response

    @http("POST", "/logout")
    @pages
    def logout(self, request):
        user = self.require_user(request)
        self.require_csrf(request, user)
        self.accounts.logout(request)
        response = redirect("/login")
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # ── admin ─────────────────────────────────────────────────────────────────────────────────────────
    @http("GET", "/admin/accounts")
    @pages
    def accounts_page(self, request):
        user = self.require_user(request, "admin")
        return self._accounts_page(user, errors={}, form={})

    def _accounts_page(self, user, *, errors: dict, form: dict, status: int = 200, notice: str = ""):
        catalogue = self.accounts.catalogue
        in_scope = [a for a in self.accounts.list_accounts()
                    if catalogue.is_within(a.unit_code, user.unit_code) or a.unit_code == user.unit_code]
        units = sorted((u for u in catalogue.units.values() if catalogue.is_within(u.code, user.unit_code)
                        or u.code == user.unit_code), key=lambda u: u.code)
        return render("admin_accounts.html", status=status, user=user, csrf_token=user.csrf_token, nav="admin",
                      accounts=in_scope, units=units, departments=sorted(catalogue.departments.values(),
                                                                         key=lambda d: d.code),
                      roles=ROLES, errors=errors, form=form, notice=notice, unit_names={
                          code: unit.name for code, unit in catalogue.units.items()})

    @http("POST", "/admin/accounts")
    @pages
    def add_account(self, request):
        user = self.require_user(request, "admin")
        self.require_csrf(request, user)
        form = {key: request.form.get(key, "").strip() for key in ("username", "display_name", "unit", "department")}
        roles = request.form.getlist("roles")
        catalogue = self.accounts.catalogue
        try:
            if form["unit"] and form["unit"] in catalogue.units and not (
                    form["unit"] == user.unit_code or catalogue.is_within(form["unit"], user.unit_code)):
                raise AccountRefused("unit", "只能为本辖区内的单位开设账号")
            self.accounts.add_account(username=form["username"], display_name=form["display_name"],
                                      unit_code=form["unit"], department=form["department"] or None, roles=roles,
                                      password=request.form.get("password", ""), by=user.username)
        except AccountRefused as refused:
            return self._accounts_page(user, errors={refused.field: refused.message}, form={**form, "roles": roles},
                                       status=422)
        return self._accounts_page(user, errors={}, form={}, notice=f"已开设账号 {form['username']}")

    @http("POST", "/admin/accounts/<string:username>/disable")
    @pages
    def disable_account(self, request, username):
        user = self.require_user(request, "admin")
        self.require_csrf(request, user)
        if username == user.username:
            return self._accounts_page(user, errors={"disable": "不能停用自己的账号"}, form={}, status=422)
        accounts = {a.username: a for a in self.accounts.list_accounts()}
        account = accounts.get(username)
        catalogue = self.accounts.catalogue
        if account is None or not (account.unit_code == user.unit_code
                                   or catalogue.is_within(account.unit_code, user.unit_code)):
            return self._accounts_page(user, errors={"disable": "没有这个账号，或不在本辖区"}, form={}, status=404)
        self.accounts.set_disabled(username, True, by=user.username)
        return self._accounts_page(user, errors={}, form={}, notice=f"已停用账号 {username}")

    @http("GET", "/admin/audit")
    @pages
    def audit_page(self, request):
        user = self.require_user(request, "admin")
        entries = self.accounts.audit_entries(limit=200)
        return render("admin_audit.html", user=user, csrf_token=user.csrf_token, nav="audit", entries=entries)

    @http("GET", "/admin/audit.csv")
    @pages
    def audit_csv(self, request):
        user = self.require_user(request, "admin")
        since = until = None
        try:
            if request.args.get("from"):
                since = datetime.fromisoformat(request.args["from"]).replace(tzinfo=SHANGHAI)
            if request.args.get("to"):
                until = datetime.fromisoformat(request.args["to"]).replace(tzinfo=SHANGHAI) + timedelta(days=1)
        except ValueError:
            return Response("from/to: YYYY-MM-DD", status=400, content_type="text/plain; charset=utf-8")
        self.accounts.audit(user.username, "audit-export")
        body = "\ufeff" + self.accounts.audit_csv(since, until)  # BOM: Excel opens UTF-8 CSV with Chinese
        return Response(body, content_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="sanji-audit.csv"',
                                 "Cache-Control": "no-store"})
