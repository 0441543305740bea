"""The rules of the console's 三率 and oversight pages, pure Python: the month asked for, the Chinese names of
the evaluation service's codes, and the forms (appeal decision, call-back, closure, 督办单, answer) turned into
API bodies or into a message next to the field. A form with errors is never sent.

The figures themselves are never computed here: the evaluation service counts, the console shows.
"""

from __future__ import annotations

import re
from datetime import datetime

from services.console import labels
from shared.events import RECTIFICATION_REASONS
from shared.workdays import SHANGHAI

PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

RATE_SERIES = (("response_rate", "响应率"), ("resolution_rate", "办结率"), ("satisfaction_rate", "满意率"))
FLAGS = {
    "return_reset": "临期退单（承诺时限用去 80% 后退单）",
    "late_suspension": "临期补正停表（承诺时限用去 80% 后要求补正）",
    "reopened": "办结后重开",
    "busy_rater_ratings": "同一手机多次评价",
}
TRENDS = {"up": ("↑", "上升"), "down": ("↓", "下降"), "steady": ("→", "持平"), "new": ("—", "上期无数据")}
RECTIFICATION_STATES = {"open": "整改中", "warned": "已超期（预警）", "escalated": "已超期（上级督办）",
                        "closed": "已办结"}
ORIGINS = {"rating": "差评", "finding": "体验官发现"}
RESULTS = {"rectified": "整改完成", "explained": "解释说明", "cannot_rectify": "无法整改",
           "appeal_upheld": "申诉成立"}
# The coded reason of a 解释说明 / 无法整改 closing, with what the resident's SMS says for it (the free text stays
# in the record): the kernel's one list.
REASON_CODES = RECTIFICATION_REASONS
CALLBACK_OUTCOMES = {"reached_satisfied": "已联系，群众满意", "reached_unsatisfied": "已联系，群众仍不满意",
                     "not_reached": "未联系上"}
GROUNDS = {"wrong_case": "评价对象错误", "abusive_text": "含辱骂等不当内容", "unrelated_to_service": "与服务无关",
           "malicious": "恶意评价"}
APPEAL_STATES = {"pending": "待裁决", "upheld": "申诉成立", "dismissed": "申诉驳回"}
ORDER_STATES = {"open": "待回复", "overdue": "已超期未回复", "answered": "已回复", "answered_late": "超期后回复"}
SUBJECTS = {"item": "事项", "rectification": "整改"}

# Why the evaluation service refused, said on the page.
REFUSALS = {
    "not_staff": "您的账号类型不能查看或办理整改、申诉与督办（仅限窗口人员、专员与督办人员）",
    "outside_jurisdiction": "不在您的辖区内",
    "not_owner": "只有承办该整改的单位可以办理",
    "rectification_closed": "该整改已经办结",
    "callback_missing": "请先登记对群众的回访，再办结整改",
    "reason_required": "“解释说明”和“无法整改”须填写理由",
    "unknown_rectification": "没有这项整改",
    "not_deciding_unit": "该申诉应由被评价单位的上一级裁决",
    "appeal_decided": "该申诉已经裁决",
    "unknown_appeal": "没有这项申诉",
    "not_supervisor": "督办单只能由街道或区的督办人员开具",
    "unknown_subject": "没有这个事项或整改",
    "unknown_unit": "没有这个单位",
    "not_ordered_unit": "只有督办单指定的单位可以回复",
    "order_answered": "该督办单已经回复",
    "unknown_order": "没有这张督办单",
    "invalid_period": "月份格式为 年-月（例如 2026-12）",
    "invalid_query": "查询条件不正确",
    "reason_code_mismatch": "所选理由与整改结果不对应",
}


def refusal_text(reason: str | None, status: int | None = None) -> str:
    return REFUSALS.get(reason or "") or labels.refusal_text(reason, status)


def this_month(now: datetime) -> str:
    return now.astimezone(SHANGHAI).strftime("%Y-%m")


def parse_period(text: str | None, now: datetime) -> tuple[str, str | None]:
    """The month asked for (``YYYY-MM``; this month when none is given), or the month and an error."""
    text = (text or "").strip()
    if not text:
        return this_month(now), None
    if not PERIOD.match(text):
        return text, "请选择月份，格式为 年-月（例如 2026-12）"
    return text, None


def month_label(period: str) -> str:
    match = PERIOD.match(period or "")
    return f"{match.group(1)}年{int(match.group(2))}月" if match else period


def ranking_levels(unit_level: str) -> list[str]:
    """What a supervisor ranks: a district its streets and communities, a street its communities."""
    return {"district": ["street", "community"], "street": ["community"]}.get(unit_level, [])


def flagged(rows: list[dict]) -> list[tuple[dict, list[tuple[str, int]]]]:
    """Rows with at least one anti-gaming flag raised, each with its flags named (in FLAGS order)."""
    out = []
    for row in rows:
        raised = [(FLAGS[name], row["flags"].get(name, 0)) for name in FLAGS if row["flags"].get(name, 0)]
        if raised:
            out.append((row, raised))
    return out


def is_overdue(rectification: dict, now: datetime) -> bool:
    if rectification["state"] in ("warned", "escalated"):
        return True
    deadline = datetime.fromisoformat(rectification["deadline"].replace("Z", "+00:00"))
    return rectification["state"] == "open" and now > deadline


def _text(form, name: str, limit: int, errors: dict, key: str, *, required: str | None = None,
          too_long: str | None = None) -> str:
    value = (form.get(name) or "").strip()
    if required and not value:
        errors[key] = required
    elif len(value) > limit:
        errors[key] = too_long or f"不超过 {limit} 字"
    return value


def decision_body(form, key: str) -> tuple[dict, dict[str, str]]:
    """An appeal decision: uphold or reject, with a reason. ``key`` prefixes the field names of the errors."""
    errors: dict[str, str] = {}
    choice = form.get("decision", "")
    if choice not in ("uphold", "reject"):
        errors[f"{key}-decision"] = "请选择申诉成立或驳回申诉"
    reason = _text(form, "reason", 1000, errors, f"{key}-reason", required="请填写裁决理由")
    return {"upheld": choice == "uphold", "reason": reason}, errors


def callback_body(form, key: str) -> tuple[dict, dict[str, str]]:
    errors: dict[str, str] = {}
    outcome = form.get("outcome", "")
    if outcome not in CALLBACK_OUTCOMES:
        errors[f"{key}-outcome"] = "请选择回访结果"
    note = _text(form, "note", 1000, errors, f"{key}-note")
    return {"outcome": outcome, "note": note}, errors


def closure_body(form, key: str) -> tuple[dict, dict[str, str]]:
    errors: dict[str, str] = {}
    result = form.get("result", "")
    if result not in ("rectified", "explained", "cannot_rectify"):
        errors[f"{key}-result"] = "请选择整改结果"
    reason = _text(form, "reason", 1000, errors, f"{key}-reason")
    if result in ("explained", "cannot_rectify") and not reason and f"{key}-reason" not in errors:
        errors[f"{key}-reason"] = "“解释说明”和“无法整改”须填写理由"
    body = {"result": result, "reason": reason}
    reason_code = form.get("reason_code", "")
    if reason_code:
        if reason_code not in REASON_CODES.get(result, {}):
            errors[f"{key}-reason_code"] = "所选理由与整改结果不对应"
        else:
            body["reason_code"] = reason_code  # the resident's SMS names it; without one it says whom to ask
    return body, errors


def order_body(form, allowed_units: set[str]) -> tuple[dict, dict[str, str]]:
    """A 督办单: what, by when (working days), to which unit of the supervisor's jurisdiction."""
    errors: dict[str, str] = {}
    subject_type = form.get("subject_type", "")
    subject_id = (form.get("subject_id") or "").strip()
    if subject_type not in SUBJECTS or not subject_id or len(subject_id) > 36:
        errors["subject"] = "督办对象不明确，请从事项或整改页面开具督办单"
    target = form.get("target_unit_code", "")
    if target not in allowed_units:
        errors["target_unit_code"] = "请选择您辖区内的单位"
    what = _text(form, "what", 1000, errors, "what", required="请填写督办内容")
    days = (form.get("due_in_working_days") or "").strip()
    if not days.isdigit() or not 1 <= int(days) <= 30:
        errors["due_in_working_days"] = "办理期限为 1 到 30 个工作日"
    return {"subject_type": subject_type, "subject_id": subject_id, "target_unit_code": target, "what": what,
            "due_in_working_days": int(days) if days.isdigit() else 0}, errors


def answer_body(form, key: str) -> tuple[dict, dict[str, str]]:
    errors: dict[str, str] = {}
    answer = _text(form, "answer", 2000, errors, f"{key}-answer", required="请填写回复内容")
    return {"answer": answer}, errors
