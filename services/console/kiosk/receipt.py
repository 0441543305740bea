"""What the receipt screen and the printed 受理回执 / 一次性告知书 show, from intake's case view: pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.console.kiosk.checklist import COMMITMENT_TEXT, LEVEL_NAMES, ROLE_NAMES, Application

SHANGHAI = ZoneInfo("Asia/Shanghai")

STATUS_NAMES = {
    "submitted": "分派中",
    "waiting": "等待前置事项办结",
    "queued": "已分派，待受理",
    "claimed": "工作人员处理中",
    "accepted": "已受理，办理中",
    "supplement_requested": "待补充材料",
    "resolved": "已办结",
    "rejected": "不予办理",
    "terminated": "已终止",
}


@dataclass(frozen=True)
class ReceiptItem:
    matter_code: str
    matter_name: str
    unit_name: str
    level_name: str
    department_name: str
    promised_deadline: str
    status_name: str
    routed: bool


@dataclass(frozen=True)
class DeferredNotice:
    material_name: str
    matter_names: tuple[str, ...]
    due_date: str
    consequence: str


@dataclass(frozen=True)
class Receipt:
    case_id: str
    case_number: str
    title: str
    community_name: str
    applicant_name: str          # masked
    submitted_at: str
    items: tuple[ReceiptItem, ...]
    provided: tuple[str, ...]
    deferred: tuple[DeferredNotice, ...]
    lookup_url: str
    organisation_name: str | None = None   # an enterprise applicant: public, shown in clear
    uscc: str | None = None
    representative_role: str | None = None

    @property
    def applicant_line(self) -> str:
        """申请人 …: the resident (masked), or the enterprise and the person acting for it (masked)."""
        if self.organisation_name:
            role = ROLE_NAMES.get(self.representative_role or "", "办理人")
            return (f"{self.organisation_name}（统一社会信用代码 {self.uscc}）　"
                    f"{role}：{self.applicant_name}")
        return self.applicant_name

    @property
    def routed(self) -> bool:
        return all(item.routed for item in self.items)

    @property
    def commitment(self) -> str | None:
        return COMMITMENT_TEXT if self.deferred else None


def chinese_date(value: date | datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = value.astimezone(SHANGHAI).date()
    return f"{value.year}年{value.month}月{value.day}日"


def chinese_time(value: datetime | str) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = moment.astimezone(SHANGHAI)
    return f"{chinese_date(local.date())} {local:%H:%M}"


def receipt_from_case(case: Mapping, application: Application | None, *, community_name: str,
                      lookup_url: str) -> Receipt:
    matter_names = {item["matter_code"]: item["matter_name"] for item in case["items"]}
    deferred_codes = {d["material_code"] for d in case["deferred_materials"]}
    provided = tuple(m.name for m in application.materials if m.code not in deferred_codes) if application else ()
    items = tuple(ReceiptItem(
        matter_code=item["matter_code"], matter_name=item["matter_name"],
        unit_name=item.get("unit_name") or "分派中", level_name=LEVEL_NAMES.get(item.get("level") or "", "—"),
        department_name=item.get("department_name") or "",
        promised_deadline=(chinese_date(item["promised_deadline"]) + ("（暂定）" if item.get("deadline_provisional")
                                                                      else "")) if item.get("promised_deadline")
        else "分派后确定",
        status_name=STATUS_NAMES.get(item["status"], item["status"]),
        routed=bool(item.get("unit_code"))) for item in case["items"])
    deferred = tuple(DeferredNotice(
        material_name=d["material_name"], matter_names=tuple(matter_names.get(c, c) for c in d["matter_codes"]),
        due_date=chinese_date(d["due_date"]), consequence=d["consequence"]) for d in case["deferred_materials"])
    return Receipt(case_id=case["case_id"], case_number=case["case_number"],
                   title=application.name if application else "、".join(matter_names.values()),
                   community_name=community_name, applicant_name=case["applicant_name"],
                   submitted_at=chinese_time(case["submitted_at"]), items=items, provided=provided,
                   deferred=deferred, lookup_url=lookup_url, organisation_name=case.get("organisation_name"),
                   uscc=case.get("uscc"), representative_role=case.get("representative_role"))
