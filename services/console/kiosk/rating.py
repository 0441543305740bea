"""好差评 pages, the pure part: the five levels, the evaluation service's refusals in Chinese, the rating form read
into submissions (with a message next to each bad field), and the short-lived grant that proves a resident has
just looked her case up (case number and phone ending) on this console.

No nameko and no HTTP here; ``rating_pages.py`` calls these.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.console.kiosk.signing import Signer, derive_key

# The five levels, best first (GB/T 39734-2020): the code the evaluation API takes, and the name shown.
LEVELS = (
    ("very_satisfied", "非常满意"),
    ("satisfied", "满意"),
    ("basically_satisfied", "基本满意"),
    ("dissatisfied", "不满意"),
    ("very_dissatisfied", "非常不满意"),
)
LEVEL_NAMES = dict(LEVELS)
_LEVEL_BY_NAME = {name: code for code, name in LEVELS}
BAD_LEVELS = frozenset({"dissatisfied", "very_dissatisfied"})
FINAL_STATUSES = frozenset({"resolved", "rejected", "terminated"})
COMMENT_MAX = 500        # the evaluation API's limit
LOOKUP_GRANT_SECONDS = 30 * 60
KIOSK_GRANT_SECONDS = 15 * 60

# The evaluation service's machine reasons (docs/openapi/evaluation.json), as the resident reads them.
_ELSEWHERE = "您也可以到社区党群服务中心自助终端，或在“办理进度查询”页面输入受理编号和手机号后四位后评价。"
REFUSALS = {
    "invalid_link": "评价链接无效，可能不完整或已被改动。请核对短信中的链接。" + _ELSEWHERE,
    "link_expired": "评价链接已过期。" + _ELSEWHERE,
    "unknown_case": "这个办件尚未全部办结，或办结信息还在同步中。办结后才能评价，请稍后再试。",
    "unknown_item": "没有找到这个事项，请回到上一页重新选择。",
    "item_not_completed": "该事项尚未办结，办结后才能评价。",
    "rating_window_closed": "已超过评价期限（办结后30日内可评价），不能再评价。",
    "already_rated": "该事项已评价过；评价只能在提交后24小时内修改。",
    "item_facts_pending": "评价通道正在开通，请稍后再试。",
    "community_forbidden": "本终端只能评价在本社区受理的办件。请使用短信中的评价链接，或在“办理进度查询”页面评价。",
    "outside_jurisdiction": "无法为这个办件开通评价。",
    "unknown_level": "请为事项选择一个评价等级。",
    "unknown_reason": "所选的评价原因不适用于这个评价等级，请重新选择。",
    "duplicate_reason": "评价原因重复，请重新选择。",
    "validation_failed": "评价内容有误，请检查后重新提交。",
}
DEFAULT_REFUSAL = "暂时无法提交评价，请稍后再试。"


def refusal_message(reason: str | None) -> str:
    """The Chinese sentence for an evaluation refusal (a reason this page does not know gets a general one)."""
    return REFUSALS.get(reason or "", DEFAULT_REFUSAL)


def level_code(value: str) -> str | None:
    """A level by code or by Chinese name; None for anything else."""
    value = (value or "").strip()
    return value if value in LEVEL_NAMES else _LEVEL_BY_NAME.get(value)


# ── what the page shows ──────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Reason:
    code: str
    name: str
    kind: str  # praise or complaint


@dataclass(frozen=True)
class PageItem:
    item_id: str
    matter_name: str
    rateable: bool
    current_level: str | None = None     # this channel's live rating, if any (a new one replaces it within 24 h)

    @property
    def field_id(self) -> str:
        return "r-" + self.item_id


def reasons_of(view: Mapping[str, Any]) -> list[Reason]:
    return [Reason(str(r["code"]), str(r.get("name") or r["code"]), "praise" if r.get("kind") == "praise"
                   else "complaint") for r in view.get("reasons") or []]


def page_items(view: Mapping[str, Any], matter_names: Mapping[str, str], channel: str) -> list[PageItem]:
    """The case's items as the form lists them: by matter name, rateable once final."""
    items = []
    for item in view.get("items") or []:
        code = item.get("matter_code")
        current = [r for r in item.get("ratings") or [] if r.get("channel") == channel]
        items.append(PageItem(item_id=str(item["item_id"]),
                              matter_name=(matter_names.get(code) if code else None) or "办理事项",
                              rateable=item.get("status") in FINAL_STATUSES,
                              current_level=LEVEL_NAMES.get(current[-1].get("level")) if current else None))
    return items


# ── the form ─────────────────────────────────────────────────────────────────────────────────────────────


class FormData(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def getlist(self, key: str) -> list[str]: ...


@dataclass
class RatingForm:
    submissions: list[dict] = field(default_factory=list)   # bodies for the evaluation API, one per rated item
    errors: dict[str, str] = field(default_factory=dict)    # field id -> message ("_form" for the whole form)
    values: dict[str, dict] = field(default_factory=dict)   # item id -> what was entered, to show it again


def read_rating_form(form: FormData, items: list[PageItem], reasons: list[Reason], channel: str) -> RatingForm:
    """Each item's level (or none: not rated now), reasons and comment, checked as the evaluation service will."""
    result = RatingForm()
    kinds = {reason.code: reason.kind for reason in reasons}
    names = {reason.code: reason.name for reason in reasons}
    for item in items:
        key = item.item_id
        raw_level = (form.get(f"level-{key}") or "").strip()
        codes = [code.strip() for code in form.getlist(f"reason-{key}") if code.strip()]
        comment = (form.get(f"comment-{key}") or "").strip()
        level = level_code(raw_level)
        result.values[key] = {"level": level or "", "reasons": codes, "comment": comment}
        if not raw_level and not codes and not comment:
            continue
        fid = item.field_id
        if not item.rateable:
            result.errors[fid] = REFUSALS["item_not_completed"]
            continue
        if level is None:
            result.errors[fid] = (f"请为“{item.matter_name}”选择评价等级。" if not raw_level
                                  else REFUSALS["unknown_level"])
            continue
        unknown = [code for code in codes if code not in kinds]
        praise_with_bad = [names[code] for code in codes if kinds.get(code) == "praise" and level in BAD_LEVELS]
        if unknown or len(set(codes)) != len(codes):
            result.errors[f"{fid}-reasons"] = "请从列出的原因中选择。"
        elif praise_with_bad:
            result.errors[f"{fid}-reasons"] = (f"“{'、'.join(praise_with_bad)}”是好评原因，不能与“{LEVEL_NAMES[level]}”"
                                               "一起选择。")
        if len(comment) > COMMENT_MAX:
            result.errors[f"{fid}-comment"] = f"意见建议最多{COMMENT_MAX}字，现在是{len(comment)}字。"
        if not any(k.startswith(fid) for k in result.errors):
            result.submissions.append({"item_id": key, "level": level, "reason_codes": codes, "comment": comment,
                                       "channel": channel})
    if not result.errors and not result.submissions:
        result.errors["_form"] = "请至少为一个事项选择评价等级。"
    if result.errors:
        result.submissions = []
    return result


# ── the grant: "this browser (or this kiosk) has just looked this case up" ──────────────────────────────


def grant_signer(console_secret: str) -> Signer:
    return Signer(derive_key(console_secret, "rating-grant"))


def make_grant(signer: Signer, purpose: str, case_number: str, now: float | None = None) -> str:
    """A signed ``purpose:case_number`` (purpose ``lookup``, or ``kiosk-<community>``), valid for minutes."""
    return signer.sign(f"{purpose}:{case_number}", time.time() if now is None else now)


def read_grant(signer: Signer, grant: str | None, purpose: str, max_age: float, now: float | None = None) -> str | None:
    """The case number a grant was made for, if it is genuine, for ``purpose``, and young enough; else None."""
    value = signer.unsign(grant, time.time() if now is None else now, max_age)
    if value is None:
        return None
    granted_for, _, case_number = value.rpartition(":")
    return case_number if granted_for == purpose and case_number else None
