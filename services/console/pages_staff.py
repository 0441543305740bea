"""Staff pages: the queue of one's unit, an item with its history and 容缺 ledger, every action, the inbox.

Each page calls the routing (or notification) API with the person's assertion, so the API's jurisdiction
rules hold here too. A form with bad input is answered with the message next to the field, and nothing is
sent; a refused action is shown with its reason in Chinese.
"""

from __future__ import annotations

from urllib.parse import urlencode

from services.console import labels
from services.console.apis import ServiceUnavailable
from services.console.pages_base import pages
from services.console.web import redirect, render
from shared.web import http

ITEM_ACTIONS = ("claim", "accept", "request-supplement", "record-supplement", "resolve", "reject", "return",
                "custody")
WARNING_SHARE = 0.8
QUEUE_PAGE = 50  # items per queue page, closest deadline first


def _codes(values: list[str]) -> list[str]:
    return [value.strip() for value in values if value.strip()]


def action_body(action: str, form, matter, catalogue) -> tuple[dict, dict[str, str]]:
    """The API body for an action from its form, or the errors (field -> Chinese message); nothing sent then."""
    errors: dict[str, str] = {}
    note = form.get("note", "").strip()
    if len(note) > 500:
        errors["note"] = "备注不超过 500 字"
    materials = _codes(form.getlist("materials"))
    known_materials = {m.code for m in matter.materials} if matter else set()
    if action in ("claim", "accept"):
        return ({"note": note} if action == "accept" else {}), errors
    if action in ("request-supplement", "record-supplement"):
        if not materials:
            errors["materials"] = "请至少选择一项材料"
        elif any(code not in known_materials for code in materials):
            errors["materials"] = "材料不在该事项的材料清单中"
        body = {"materials": materials, "note": note}
        if action == "request-supplement":
            days = form.get("due_in_working_days", "").strip()
            if not days.isdigit() or not 1 <= int(days) <= 30:
                errors["due_in_working_days"] = "补正期限为 1 到 30 个工作日"
            else:
                body["due_in_working_days"] = int(days)
        return body, errors
    if action == "resolve":
        result = form.get("result", "").strip()
        method = form.get("method", "")
        if not result:
            errors["result"] = "请填写办理结果"
        elif len(result) > 500:
            errors["result"] = "办理结果不超过 500 字"
        delivery: dict = {"method": method}
        if method == "pickup":
            place = form.get("place", "").strip()
            if not place:
                errors["place"] = "窗口领取须填写领取地点"
            delivery["place"] = place
        elif method == "door":
            agent = form.get("agent_id", "").strip()
            if not agent:
                errors["agent_id"] = "送件上门须填写代办员编号"
            delivery["agent_id"] = agent
        else:
            errors["method"] = "请选择送达方式"
        return {"result": result, "delivery": delivery}, errors
    if action in ("reject", "return"):
        reasons = catalogue.reject_reasons if action == "reject" else catalogue.return_reasons
        code = form.get("reason_code", "")
        if code not in reasons:
            errors["reason_code"] = "请选择原因"
        return {"reason_code": code, "note": note}, errors
    if action == "custody":
        step, what = form.get("step", ""), form.get("what", "").strip()
        if step not in labels.CUSTODY_STEPS:
            errors["step"] = "请选择交接环节"
        if not what:
            errors["what"] = "请填写交接的材料或结果"
        elif len(what) > 300:
            errors["what"] = "不超过 300 字"
        agent = form.get("agent_id", "").strip()
        return {"step": step, "what": what, **({"agent_id": agent} if agent else {})}, errors
    return {}, {"action": "没有这个操作"}


def time_class(item: dict) -> str:
    if item.get("overdue"):
        return "bad"
    return "warn" if (item.get("promised_time_used") or 0) >= WARNING_SHARE else "ok"


class StaffPages:
    def _names(self) -> dict:
        catalogue = self.accounts.catalogue
        return {
            "matters": {code: m.name for code, m in catalogue.matters.items()},
            "units": {code: u.name for code, u in catalogue.units.items()},
            "departments": {code: d.name for code, d in catalogue.departments.items()},
            "statuses": labels.STATUSES, "levels": labels.LEVELS, "actions": labels.ACTIONS,
            "deferral_states": labels.DEFERRAL_STATES, "custody_steps": labels.CUSTODY_STEPS,
        }

    @http("GET", "/staff/queue")
    @pages
    def queue_page(self, request):
        user = self.require_user(request)
        filters = {"status": request.args.get("status", ""), "matter": request.args.get("matter", ""),
                   "overdue": "true" if request.args.get("overdue") else "",
                   "waiting": "1" if request.args.get("waiting") else ""}
        errors = {}
        if filters["status"] and filters["status"] not in labels.STATUSES:
            errors["status"] = "没有这个状态"
        if filters["matter"] and filters["matter"] not in self.accounts.catalogue.matters:
            errors["matter"] = "没有这个事项"
        items, count, refusal, next_cursor = [], {"value": 0, "exact": True}, "", None
        # Keyset pages: the cursor routing gave with the page before; a hand-edited one is refused there (400) and
        # the first page shown instead.
        cursor = request.args.get("cursor", "")
        if not errors:
            try:
                answer = self.apis.items(self.accounts.token_for(user), status=filters["status"] or None,
                                         matter=filters["matter"] or None, overdue=filters["overdue"] or None,
                                         limit=QUEUE_PAGE, cursor=cursor or None)
                if cursor and answer.status == 400:
                    cursor = ""
                    answer = self.apis.items(self.accounts.token_for(user), status=filters["status"] or None,
                                             matter=filters["matter"] or None, overdue=filters["overdue"] or None,
                                             limit=QUEUE_PAGE)
            except ServiceUnavailable:
                answer = None
                refusal = "受理系统暂时无法连接，请稍后再试"
            if answer is not None and answer.ok:
                items, next_cursor = answer.body["items"], answer.body["next_cursor"]
                count = {"value": answer.body["count"], "exact": answer.body["count_exact"]}
                if filters["waiting"]:
                    # Filtered on this page only: the count says how many of the page wait.
                    items = [i for i in items if i["clock_paused"] or i["waiting_for"]
                             or any(d["state"] == "pending" for d in i["deferred_materials"])]
                    count = {"value": len(items), "exact": next_cursor is None}
            elif answer is not None:
                refusal = labels.refusal_text(answer.reason, answer.status)
        query = {k: v for k, v in filters.items() if v}
        pages = {"first": f"/staff/queue?{urlencode(query)}" if cursor else "",
                 "next": urlencode({**query, "cursor": next_cursor}) if next_cursor else ""}
        return render("queue.html", status=422 if errors else 200, user=user, csrf_token=user.csrf_token,
                      nav="queue", items=items, count=count, filters=filters, errors=errors, refusal=refusal,
                      pages=pages,
                      names=self._names(), time_class=time_class,
                      matter_choices=sorted(self.accounts.catalogue.matters.values(), key=lambda m: m.code))

    def _item_page(self, user, item_id: str, *, errors=None, refusal="", notice="", open_action="", form=None,
                   status: int = 200):
        try:
            answer = self.apis.item(self.accounts.token_for(user), item_id)
        except ServiceUnavailable:
            return render("forbidden.html", status=503, user=user, csrf_token=user.csrf_token,
                          message="受理系统暂时无法连接，请稍后再试")
        if not answer.ok:
            self.accounts.audit(user.username, "item-view", target=item_id, outcome=answer.reason or "refused")
            return render("forbidden.html", status=answer.status, user=user, csrf_token=user.csrf_token,
                          message=labels.refusal_text(answer.reason, answer.status))
        item = answer.body
        catalogue = self.accounts.catalogue
        matter = catalogue.matters.get(item["matter_code"])
        return render("item.html", status=status, user=user, csrf_token=user.csrf_token, nav="queue", item=item,
                      matter=matter, names=self._names(), errors=errors or {}, refusal=refusal, notice=notice,
                      open_action=open_action, form=form or {}, time_class=time_class,
                      reject_reasons=catalogue.reject_reasons, return_reasons=catalogue.return_reasons)

    @http("GET", "/staff/items/<string:item_id>")
    @pages
    def item_page(self, request, item_id):
        user = self.require_user(request)
        done = request.args.get("done", "")
        notice = f"已{labels.ACTIONS.get(done, '办理')}" if done in labels.ACTIONS else ""
        return self._item_page(user, item_id, notice=notice)

    @http("POST", "/staff/items/<string:item_id>/<string:action>")
    @pages
    def item_action(self, request, item_id, action):
        user = self.require_user(request)
        self.require_csrf(request, user)
        if action not in ITEM_ACTIONS:
            return self._item_page(user, item_id, refusal="没有这个操作", status=404)
        catalogue = self.accounts.catalogue
        matter = catalogue.matters.get(request.form.get("matter_code", ""))
        body, errors = action_body(action, request.form, matter, catalogue)
        if errors:
            return self._item_page(user, item_id, errors=errors, open_action=action, form=request.form.to_dict(),
                                   status=422)
        token = self.accounts.token_for(user)
        try:
            answer = (self.apis.call("routing", "POST", f"/v1/items/{item_id}/custody", token=token, json=body)
                      if action == "custody" else self.apis.act(token, item_id, action, body))
        except ServiceUnavailable:
            return self._item_page(user, item_id, refusal="受理系统暂时无法连接，操作未执行，请稍后再试",
                                   open_action=action, form=request.form.to_dict(), status=503)
        self.accounts.audit(user.username, f"item-{action}", target=item_id,
                            outcome="ok" if answer.ok else (answer.reason or "refused"))
        if not answer.ok:
            refusal = labels.refusal_text(answer.reason, answer.status)
            current = answer.details.get("current_status")
            if current:
                refusal += f"（当前状态：{labels.STATUSES.get(current, current)}）"
            return self._item_page(user, item_id, refusal=refusal, open_action=action,
                                   form=request.form.to_dict(), status=answer.status)
        return redirect(f"/staff/items/{item_id}?{urlencode({'done': action})}")

    @http("GET", "/staff/inbox")
    @pages
    def inbox_page(self, request):
        user = self.require_user(request)
        messages, refusal = [], ""
        try:
            answer = self.apis.inbox(self.accounts.token_for(user), limit=50)
            if answer.ok:
                messages = answer.body["messages"]
            else:
                refusal = labels.refusal_text(answer.reason, answer.status)
        except ServiceUnavailable:
            refusal = "消息服务暂时无法连接，请稍后再试"
        return render("inbox.html", user=user, csrf_token=user.csrf_token, nav="inbox", messages=messages,
                      refusal=refusal)
