"""What every console page family shares: the dependencies, static files, the front page, and helpers
to find the signed-in person and check a form's CSRF token.

Page mixins (``services/console/pages_*.py``, ``services/console/kiosk``) subclass nothing but use:

- ``self.apis``: ``ApiClient`` (services/console/apis.py), the other services' HTTP APIs
- ``self.accounts``: ``AccountStore`` (services/console/sessions.py): accounts, sessions, audit trail,
  ``self.accounts.catalogue`` (the catalogue, for code names)
- ``self.clock``: the clock (``self.clock.now()``)
- ``services.console.web.render(template, **context)`` for a page, ``redirect(url)``
- ``form_csrf(request)`` / ``check_form_csrf(request)`` for signed-out forms (double-submit cookie)
"""

from __future__ import annotations

import structlog
from werkzeug.wrappers import Response

from services.console.accounts import new_secret, tokens_match
from services.console.apis import ServiceApis
from services.console.sessions import FORM_COOKIE, SESSION_COOKIE, Accounts, SignedIn
from services.console.web import redirect, render, static_file
from shared.web import http

log = structlog.get_logger(__name__)


class NeedsLogin(Exception):
    """Raised by a page helper: the answer is the given response (a redirect to the login, or a 403 page)."""

    def __init__(self, response: Response):
        super().__init__("no usable session")
        self.response = response


def form_csrf(request) -> tuple[str, bool]:
    """The CSRF token of a signed-out form (from its cookie, or a new one), and whether it is new."""
    token = request.cookies.get(FORM_COOKIE)
    return (token, False) if token else (new_secret(), True)


def set_form_cookie(response: Response, token: str, secure: bool) -> Response:
    response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="Strict", secure=secure, path="/")
    return response


def check_form_csrf(request) -> bool:
    return tokens_match(request.cookies.get(FORM_COOKIE), request.form.get("csrf_token"))


def pages(handler):
    """Wrap a page method: a ``NeedsLogin`` raised inside becomes its response."""
    import functools

    @functools.wraps(handler)
    def wrapper(self, request, *args, **kwargs):
        try:
            return handler(self, request, *args, **kwargs)
        except NeedsLogin as stop:
            return stop.response
        except Exception:  # noqa: BLE001 - the person gets a page, the log gets the trace
            log.exception("page failed", path=request.path)
            return render("forbidden.html", status=500, message="页面出错，请稍后再试；如仍有问题请联系系统管理员")

    return wrapper


class ConsolePagesBase:
    apis = ServiceApis()
    accounts = Accounts()

    # ── helpers for page mixins ─────────────────────────────────────────────────────────────────────
    def require_user(self, request, *roles: str) -> SignedIn:
        """The signed-in person, or NeedsLogin (redirect to /login; a page they may not see: 403)."""
        user = self.accounts.session_of(request)
        if user is None:
            target = request.full_path.rstrip("?") if request.method == "GET" else "/"
            response = redirect(f"/login?next={_safe_next(target)}&expired=1"
                                if request.cookies.get(SESSION_COOKIE) else f"/login?next={_safe_next(target)}")
            response.delete_cookie(SESSION_COOKIE, path="/")
            raise NeedsLogin(response)
        if roles and not user.has(*roles):
            raise NeedsLogin(render("forbidden.html", status=403, user=user, csrf_token=user.csrf_token,
                                    message="您的角色不能查看此页面"))
        return user

    def require_csrf(self, request, user: SignedIn) -> None:
        if not tokens_match(user.csrf_token, request.form.get("csrf_token")):
            self.accounts.audit(user.username, "csrf-refused", target=request.path, outcome="refused")
            raise NeedsLogin(render("forbidden.html", status=403, user=user, csrf_token=user.csrf_token,
                                    message="表单已失效（安全校验未通过），请返回页面刷新后重试。未作任何更改。"))

    # ── entrypoints ─────────────────────────────────────────────────────────────────────────────────
    @http("GET", "/static/<path:path>")
    def static(self, request, path):
        return static_file(path)

    @http("GET", "/")
    def front_page(self, request):
        user = self.accounts.session_of(request)
        if user is None:
            return redirect("/login")
        return redirect("/supervisor" if user.has("supervisor") and not user.has("window", "department")
                        else "/staff/queue")


def _safe_next(target: str) -> str:
    """Only a local path may be a post-login target (no open redirect)."""
    from urllib.parse import quote

    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    return quote(target, safe="")
