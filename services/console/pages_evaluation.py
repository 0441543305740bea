"""Pages over the evaluation service's API: the three rates on the supervisor desk (and their CSV, proxied),
appeals decided by the level above, rectifications and 督办单 — and, for unit staff, their unit's
rectifications (call-back, closure) and the 督办单 addressed to them (answer).

Every call carries the person's assertion, so the evaluation service's jurisdiction rules decide what is
shown and done; the console never reads that service's database and never computes a rate. A form with bad
input is answered next to the field and nothing is sent; a refusal is shown in Chinese beside its form.
``SupervisorPages`` extends this mixin, so ``ConsoleService`` collects these entrypoints with the desk's.
"""

from __future__ import annotations

from urllib.parse import urlencode

from werkzeug.wrappers import Response

from services.console import feedback
from services.console.apis import ServiceUnavailable
from services.console.charts import rate_chart
from services.console.pages_base import pages
from services.console.web import redirect, render
from shared.web import http

PAGE = 100
OPEN_STATES = ("open", "warned", "escalated")
DONE = {"appeal": "已裁决申诉", "order": "已开具督办单", "callback": "已登记回访", "close": "整改已办结",
        "answer": "已回复督办单"}


def _names(catalogue) -> dict:
    return {"units": {c: u.name for c, u in catalogue.units.items()},
            "departments": {c: d.name for c, d in catalogue.departments.items()},
            "rect_states": feedback.RECTIFICATION_STATES, "origins": feedback.ORIGINS, "results": feedback.RESULTS,
            "reason_codes": feedback.REASON_CODES,
            "callbacks": feedback.CALLBACK_OUTCOMES, "grounds": feedback.GROUNDS,
            "appeal_states": feedback.APPEAL_STATES, "order_states": feedback.ORDER_STATES,
            "subjects": feedback.SUBJECTS, "trends": feedback.TRENDS, "flags": feedback.FLAGS}


class EvaluationPages:
    # ── what the desk asks of the evaluation service ────────────────────────────────────────────────
    def evaluation_calls(self, user, token: str, period: str | None) -> dict:
        """The desk's evaluation calls (run concurrently with the desk's others); no rates for a bad month."""
        ev = self.apis.evaluation
        calls = {
            "appeals": lambda: ev("GET", "/v1/appeals", token=token, params={"state": "pending", "limit": PAGE}),
            "orders": lambda: ev("GET", "/v1/supervision-orders", token=token, params={"limit": PAGE}),
        }
        for state in OPEN_STATES:
            calls[f"rect-{state}"] = (lambda s=state: ev("GET", "/v1/rectifications", token=token,
                                                        params={"state": s, "limit": PAGE}))
        if period:
            for by in ("unit", "department"):
                calls[f"rates-{by}"] = (lambda b=by: ev("GET", "/v1/rates", token=token,
                                                       params={"period": period, "by": b}))
            for level in feedback.ranking_levels(user.unit_level):
                calls[f"ranking-{level}"] = (lambda lv=level: ev("GET", "/v1/rankings", token=token,
                                                                 params={"period": period, "level": lv}))
        return calls

    WHAT = {"appeals": "申诉", "orders": "督办单", "rect-open": "整改", "rect-warned": "整改", "rect-escalated": "整改",
            "rates-unit": "三率", "rates-department": "三率", "ranking-street": "排名", "ranking-community": "排名"}

    def evaluation_view(self, user, answers: dict, period: str | None, now) -> tuple[dict, list[str]]:
        """What the desk's template shows of the evaluation service's answers, and the problems to say."""
        problems = []
        for name, answer in answers.items():
            if name in self.WHAT and answer is not None and not answer.ok:
                problem = self.WHAT[name] + "：" + feedback.refusal_text(answer.reason, answer.status)
                if problem not in problems:
                    problems.append(problem)

        def body(name, key=None, default=None):
            answer = answers.get(name)
            if answer is None or not answer.ok:
                return default
            return answer.body[key] if key else answer.body

        catalogue = self.accounts.catalogue
        units = _names(catalogue)["units"]
        unit_rows = body("rates-unit", "rows", [])
        rectifications = sorted((r for state in OPEN_STATES for r in body(f"rect-{state}", "rectifications", [])),
                                key=lambda r: r["deadline"])
        orders = body("orders", default={"orders": [], "total": 0, "overdue": 0})
        rankings = [(level, body(f"ranking-{level}", "rows", []))
                    for level in feedback.ranking_levels(user.unit_level) if body(f"ranking-{level}")]
        groups = [(units.get(r["key"], r["key"]), [(name, r[key]) for key, name in feedback.RATE_SERIES])
                  for r in unit_rows]
        return {
            "period": period, "period_label": feedback.month_label(period) if period else "",
            "rates_ready": body("rates-unit") is not None,
            "unit_rows": unit_rows, "department_rows": body("rates-department", "rows", []),
            "chart": rate_chart(f"{feedback.month_label(period or '')} 各单位三率", groups) if unit_rows else "",
            "rankings": rankings, "flagged": feedback.flagged(unit_rows),
            "appeals": [a for a in body("appeals", "appeals", []) if a["deciding_unit_code"] == user.unit_code],
            "rectifications": rectifications,
            "overdue_rectifications": [r for r in rectifications if feedback.is_overdue(r, now)],
            "is_overdue": lambda r: feedback.is_overdue(r, now),
            "orders": orders["orders"], "orders_overdue": orders["overdue"],
            "ev_names": _names(catalogue),
        }, problems

    # ── the rates' CSV, proxied ─────────────────────────────────────────────────────────────────────
    @http("GET", "/supervisor/rates.csv")
    @pages
    def rates_csv(self, request):
        user = self.require_user(request, "supervisor", "admin")
        period, error = feedback.parse_period(request.args.get("period"), self.clock.now())
        by = request.args.get("by", "unit")
        if error or by not in ("unit", "department", "level"):
            return render("forbidden.html", status=400, user=user, csrf_token=user.csrf_token,
                          message=error or "导出方式为按单位、按部门或按层级")
        try:
            answer, content = self.apis.evaluation_export(
                "/v1/rates", token=self.accounts.token_for(user, kind="staff"),
                params={"period": period, "by": by, "format": "csv"})
        except ServiceUnavailable:
            return render("forbidden.html", status=503, user=user, csrf_token=user.csrf_token,
                          message="考评服务暂时无法连接，请稍后再试")
        self.accounts.audit(user.username, "rates-export", target=f"{period}/{by}",
                            outcome="ok" if answer.ok else (answer.reason or "refused"))
        if not answer.ok:
            return render("forbidden.html", status=answer.status, user=user, csrf_token=user.csrf_token,
                          message=feedback.refusal_text(answer.reason, answer.status))
        return Response(content, content_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="rates-{user.unit_code}-{period}-{by}.csv"',
            "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    # ── appeals: the level above decides ────────────────────────────────────────────────────────────
    @http("POST", "/supervisor/appeals/<string:appeal_id>/decision")
    @pages
    def decide_appeal(self, request, appeal_id):
        user = self.require_user(request, "supervisor", "admin")
        self.require_csrf(request, user)
        key = f"appeal-{appeal_id}"
        body, errors = feedback.decision_body(request.form, key)
        if errors:
            return self.desk_response(request, user, errors=errors, form=request.form.to_dict(), status=422)
        try:
            answer = self.apis.evaluation("POST", f"/v1/appeals/{appeal_id}/decision",
                                          token=self.accounts.token_for(user, kind="staff"), json=body)
        except ServiceUnavailable:
            return self.desk_response(request, user, errors={key: "考评服务暂时无法连接，未作裁决，请稍后再试"},
                                      form=request.form.to_dict(), status=503)
        self.accounts.audit(user.username, "appeal-decide", target=appeal_id,
                            outcome="ok" if answer.ok else (answer.reason or "refused"))
        if not answer.ok:
            return self.desk_response(request, user, errors={key: "未执行：" + feedback.refusal_text(
                answer.reason, answer.status)}, form=request.form.to_dict(), status=answer.status)
        return redirect("/supervisor?done=appeal#h-appeals")

    # ── 督办单: issued from an item or a rectification ──────────────────────────────────────────────
    def _order_units(self, user) -> list:
        catalogue = self.accounts.catalogue
        prefix = catalogue.jurisdiction_prefix(user.unit_code) if user.unit_code in catalogue.units else "-"
        return sorted((u for u in catalogue.units.values() if u.code.startswith(prefix)), key=lambda u: u.code)

    def _subject(self, user, subject_type: str, subject_id: str) -> tuple[str, str | None, str]:
        """(what the order is about, in words; its unit; a refusal) for the form's heading."""
        try:
            if subject_type == "item":
                answer = self.apis.item(self.accounts.token_for(user, kind="staff"), subject_id)
                if answer.ok:
                    i = answer.body
                    return f"事项 {i['case_number']} · {i['matter_name']} · {i['unit_name']}", i["unit_code"], ""
            elif subject_type == "rectification":
                answer = self.apis.evaluation("GET", f"/v1/rectifications/{subject_id}",
                                              token=self.accounts.token_for(user, kind="staff"))
                if answer.ok:
                    r = answer.body
                    unit = self.accounts.catalogue.units.get(r["unit_code"])
                    origin = feedback.ORIGINS.get(r["origin"], r["origin"])
                    return (f"整改（{origin}）· {unit.name if unit else r['unit_code']} · "
                            f"{feedback.RECTIFICATION_STATES.get(r['state'], r['state'])}", r["unit_code"], "")
            else:
                return "", None, "督办对象不明确，请从事项或整改页面开具督办单"
        except ServiceUnavailable as down:
            return "", None, f"{down.service} 服务暂时无法连接，请稍后再试"
        return "", None, feedback.refusal_text(answer.reason, answer.status)

    def _order_page(self, user, form: dict, *, errors=None, refusal="", status=200):
        subject, unit, problem = self._subject(user, form.get("subject_type", ""), form.get("subject_id", ""))
        if problem:
            return render("forbidden.html", status=403 if status == 200 else status, user=user,
                          csrf_token=user.csrf_token, message=problem)
        form = {"target_unit_code": unit or "", "due_in_working_days": "3", **form}
        return render("order_new.html", status=status, user=user, csrf_token=user.csrf_token, nav="desk",
                      subject=subject, form=form, errors=errors or {}, refusal=refusal,
                      units=self._order_units(user))

    @http("GET", "/supervisor/orders/new")
    @pages
    def new_order_page(self, request):
        user = self.require_user(request, "supervisor", "admin")
        return self._order_page(user, {"subject_type": request.args.get("subject_type", ""),
                                       "subject_id": request.args.get("subject_id", "")})

    @http("POST", "/supervisor/orders")
    @pages
    def issue_order(self, request):
        user = self.require_user(request, "supervisor", "admin")
        self.require_csrf(request, user)
        form = request.form.to_dict()
        body, errors = feedback.order_body(request.form, {u.code for u in self._order_units(user)})
        if errors:
            return self._order_page(user, form, errors=errors, status=422)
        try:
            answer = self.apis.evaluation("POST", "/v1/supervision-orders",
                                          token=self.accounts.token_for(user, kind="staff"), json=body)
        except ServiceUnavailable:
            return self._order_page(user, form, refusal="考评服务暂时无法连接，未开具，请稍后再试", status=503)
        self.accounts.audit(user.username, "order-issue", target=f"{body['subject_type']}/{body['subject_id']}",
                            outcome="ok" if answer.ok else (answer.reason or "refused"))
        if not answer.ok:
            return self._order_page(user, form, refusal=feedback.refusal_text(answer.reason, answer.status),
                                    status=answer.status)
        return redirect("/supervisor?done=order#h-orders")

    # ── unit staff: their unit's rectifications and the 督办单 addressed to them ─────────────────────
    def _unit_page(self, request, user, *, errors=None, form=None, status=200):
        token = self.accounts.token_for(user)
        problems, rectifications, closed, orders = [], [], [], []
        try:
            for state in (*OPEN_STATES, "closed"):
                answer = self.apis.evaluation("GET", "/v1/rectifications", token=token,
                                              params={"state": state, "limit": PAGE})
                if not answer.ok:
                    problems.append(feedback.refusal_text(answer.reason, answer.status))
                    break
                own = [r for r in answer.body["rectifications"] if r["unit_code"] == user.unit_code]
                (closed if state == "closed" else rectifications).extend(own)
            answer = self.apis.evaluation("GET", "/v1/supervision-orders", token=token, params={"limit": PAGE})
            if answer.ok:
                orders = [o for o in answer.body["orders"] if o["target_unit_code"] == user.unit_code]
            elif not problems:
                problems.append(feedback.refusal_text(answer.reason, answer.status))
        except ServiceUnavailable:
            problems.append("考评服务暂时无法连接，请稍后再试")
        now = self.clock.now()
        done = request.args.get("done", "")
        return render("unit_feedback.html", status=status, user=user, csrf_token=user.csrf_token, nav="feedback",
                      problems=problems, rectifications=sorted(rectifications, key=lambda r: r["deadline"]),
                      closed=sorted(closed, key=lambda r: r["closed_at"] or "", reverse=True)[:20],
                      orders=sorted(orders, key=lambda o: (o["answered_at"] is not None, o["due_at"])),
                      is_overdue=lambda r: feedback.is_overdue(r, now), errors=errors or {}, form=form or {},
                      notice=DONE.get(done, "") if status == 200 else "", names=_names(self.accounts.catalogue))

    @http("GET", "/staff/feedback")
    @pages
    def unit_feedback_page(self, request):
        user = self.require_user(request)
        return self._unit_page(request, user)

    def _unit_action(self, request, key: str, path: str, build, done: str, audit: str, target: str):
        user = self.require_user(request)
        self.require_csrf(request, user)
        body, errors = build(request.form, key)
        form = {**request.form.to_dict(), "key": key}
        if errors:
            return self._unit_page(request, user, errors=errors, form=form, status=422)
        try:
            answer = self.apis.evaluation("POST", path, token=self.accounts.token_for(user), json=body)
        except ServiceUnavailable:
            return self._unit_page(request, user, errors={key: "考评服务暂时无法连接，未执行，请稍后再试"}, form=form,
                                   status=503)
        self.accounts.audit(user.username, audit, target=target,
                            outcome="ok" if answer.ok else (answer.reason or "refused"))
        if not answer.ok:
            return self._unit_page(request, user, form=form, status=answer.status, errors={
                key: "未执行：" + feedback.refusal_text(answer.reason, answer.status)})
        return redirect("/staff/feedback?" + urlencode({"done": done}))

    @http("POST", "/staff/rectifications/<string:rectification_id>/callback")
    @pages
    def record_callback(self, request, rectification_id):
        return self._unit_action(request, f"callback-{rectification_id}",
                                 f"/v1/rectifications/{rectification_id}/callback", feedback.callback_body,
                                 "callback", "rectification-callback", rectification_id)

    @http("POST", "/staff/rectifications/<string:rectification_id>/close")
    @pages
    def close_rectification(self, request, rectification_id):
        return self._unit_action(request, f"close-{rectification_id}", f"/v1/rectifications/{rectification_id}/close",
                                 feedback.closure_body, "close", "rectification-close", rectification_id)

    @http("POST", "/staff/orders/<string:order_id>/answer")
    @pages
    def answer_order(self, request, order_id):
        return self._unit_action(request, f"answer-{order_id}", f"/v1/supervision-orders/{order_id}/answer",
                                 feedback.answer_body, "answer", "order-answer", order_id)
