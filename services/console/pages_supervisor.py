"""The supervisor desk (street and district offices): warnings and breaches in the jurisdiction, 吹哨 calls
with acknowledgement status and time left, 办不成事 reports by class and cause, items stuck in returns,
the three rates of a month (by unit and department, the ranking with its trend, the anti-gaming flags, a CSV
export), appeals to decide, open and overdue rectifications and 督办单 (``pages_evaluation.py``), and the report
page with server-rendered SVG charts.

Everything comes from the services' APIs with the supervisor's assertion (kind ``staff`` of their unit),
so the routing and escalation jurisdiction rules decide what the desk shows.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import eventlet

from services.console import feedback, labels
from services.console.apis import ServiceUnavailable
from services.console.charts import bar_chart
from services.console.pages_base import pages
from services.console.pages_evaluation import DONE, EvaluationPages
from services.console.pages_staff import WARNING_SHARE
from services.console.web import render
from shared.web import http

PAGE = 100  # the desk shows the first 100 of each list (closest deadline first)


def time_left(due: str, now: datetime) -> str:
    seconds = int((datetime.fromisoformat(due.replace("Z", "+00:00")) - now).total_seconds())
    minutes = abs(seconds) // 60
    text = f"{minutes // 60} 小时 {minutes % 60} 分" if minutes >= 60 else f"{minutes} 分钟"
    return f"剩余 {text}" if seconds >= 0 else f"已超时 {text}"


class SupervisorPages(EvaluationPages):
    def _desk_data(self, user, evaluation_period: str | None = None, with_evaluation: bool = False):
        """The desk's figures, asked of routing, escalation (and evaluation) at the same time (each call waits
        on I/O)."""
        token = self.accounts.token_for(user, kind="staff")
        calls_to_make = {
            "items": lambda: self.apis.items(token, limit=PAGE),
            "called": lambda: self.apis.escalation(token, "/v1/whistle-calls", state="called", limit=PAGE),
            "acknowledged": lambda: self.apis.escalation(token, "/v1/whistle-calls", state="acknowledged",
                                                         limit=PAGE),
            "escalated": lambda: self.apis.escalation(token, "/v1/whistle-calls", state="escalated", limit=PAGE),
            "reports": lambda: self.apis.escalation(token, "/v1/failure-reports", limit=PAGE),
            "causes": lambda: self.apis.escalation(token, "/v1/failure-causes"),
        }
        if with_evaluation:
            calls_to_make.update(self.evaluation_calls(user, token, evaluation_period))
        self.apis.carry_trace()
        pool = eventlet.GreenPool(len(calls_to_make))
        threads = {name: pool.spawn(call) for name, call in calls_to_make.items()}
        problems, answers = [], {}
        for name, thread in threads.items():
            try:
                answers[name] = thread.wait()
            except ServiceUnavailable as down:
                problems.append(f"{down.service} 服务暂时无法连接，数据可能不全")
        what = {"items": "事项", "called": "吹哨", "acknowledged": "吹哨", "escalated": "吹哨", "reports": "办不成事",
                "causes": "办不成事原因"}
        for name, answer in answers.items():
            if name in what and not answer.ok:
                problem = what[name] + "：" + labels.refusal_text(answer.reason, answer.status)
                if problem not in problems:
                    problems.append(problem)
        def body(name, key):
            answer = answers.get(name)
            return answer.body[key] if answer is not None and answer.ok else []
        items = body("items", "items")
        calls = body("called", "calls") + body("acknowledged", "calls") + body("escalated", "calls")
        self._causes = {cause["code"]: cause["name"] for cause in body("causes", "causes")}
        self._answers = answers
        return items, calls, body("reports", "reports"), problems

    def _desk_names(self):
        catalogue = self.accounts.catalogue
        return {"matters": {c: m.name for c, m in catalogue.matters.items()},
                "units": {c: u.name for c, u in catalogue.units.items()},
                "departments": {c: d.name for c, d in catalogue.departments.items()},
                "statuses": labels.STATUSES, "levels": labels.LEVELS, "whistle": labels.WHISTLE_STATES,
                "classes": labels.REPORT_CLASSES, "report_statuses": labels.REPORT_STATUSES}

    @http("GET", "/supervisor")
    @pages
    def desk_page(self, request):
        user = self.require_user(request, "supervisor", "admin")
        return self.desk_response(request, user)

    def desk_response(self, request, user, *, errors=None, form=None, status=200):
        """The desk; after a refused or mistaken form, with its errors beside its fields."""
        now = self.clock.now()
        period, period_error = feedback.parse_period(request.args.get("period"), now)
        items, calls, reports, problems = self._desk_data(user, None if period_error else period,
                                                          with_evaluation=True)
        evaluation, evaluation_problems = self.evaluation_view(user, self._answers,
                                                               None if period_error else period, now)
        errors = {**(errors or {}), **({"period": period_error} if period_error else {})}
        done = request.args.get("done", "")
        breaches = [i for i in items if i["overdue"]]
        warnings = [i for i in items if not i["overdue"] and (i["promised_time_used"] or 0) >= WARNING_SHARE]
        ping_pong = sorted((i for i in items if i["return_count"] > 0), key=lambda i: -i["return_count"])
        open_calls = sorted(calls, key=lambda c: c["ack_due_at"])
        return render("desk.html", status=422 if period_error and status == 200 else status, user=user,
                      csrf_token=user.csrf_token, nav="desk", breaches=breaches,
                      warnings=warnings, ping_pong=ping_pong, calls=open_calls, reports=reports,
                      problems=problems + evaluation_problems, ev=evaluation, errors=errors, form=form or {},
                      period_input=period, notice=DONE.get(done, "") if status == 200 else "",
                      names={**self._desk_names(), "causes": self._causes}, now=now,
                      time_left=lambda due: time_left(due, now), warning_share=WARNING_SHARE,
                      by_class=Counter(r["report_class"] or "unclassified" for r in reports),
                      by_cause=Counter(r["cause_code"] or "unclassified" for r in reports),
                      truncated=len(items) >= PAGE)

    @http("GET", "/supervisor/report")
    @pages
    def report_page(self, request):
        user = self.require_user(request, "supervisor", "admin")
        items, calls, reports, problems = self._desk_data(user)
        names = self._desk_names()
        causes = self._causes
        by_cause = Counter(causes.get(r["cause_code"], r["cause_code"]) if r["cause_code"] else "未分类"
                           for r in reports)
        by_class = Counter(names["classes"].get(r["report_class"], "未分类") for r in reports)
        by_status = Counter(names["statuses"].get(i["status"], i["status"]) for i in items)
        by_level = Counter(names["levels"].get(c["level"], c["level"]) + " · " +
                           names["whistle"].get(c["state"], c["state"]) for c in calls)
        charts = [
            ("办不成事 · 按原因", by_cause.most_common()),
            ("办不成事 · 按类别", by_class.most_common()),
            ("在办事项 · 按状态", by_status.most_common()),
            ("吹哨报到 · 按层级与状态", by_level.most_common()),
        ]
        return render("report.html", user=user, csrf_token=user.csrf_token, nav="report", problems=problems,
                      charts=[(title, rows, bar_chart(title, rows)) for title, rows in charts],
                      overdue=sum(1 for i in items if i["overdue"]), total=len(items), reports=len(reports))
