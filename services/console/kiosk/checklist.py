"""The kiosk's rules on the page, pure: which materials a bundle or matter asks for, which of them may come
later under 容缺 and why the others may not, and reading the resident's form into intake's submission.

Intake checks everything again (it is the authority); the page checks first so that the resident sees a clear
message next to the field she has to correct, in Chinese, before anything is sent.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from shared.identity import InvalidIdNumber, validate_id_number

PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
MAX_NAME = 50

LEVEL_NAMES = {"community": "社区", "street": "街道", "district": "区"}

ID_NUMBER_MESSAGES = {
    "wrong_length": "身份证号码应为18位，请核对后重新输入。",
    "bad_characters": "身份证号码应为17位数字加最后一位数字或字母X。",
    "bad_birth_date": "身份证号码中的出生日期（第7至14位）不正确。",
    "bad_checksum": "身份证号码校验位不正确（GB 11643），请核对后重新输入。",
}

PROVIDED, DEFERRED = "provided", "deferred"
COMMITMENT_ACCEPTED = "accepted"

COMMITMENT_TEXT = (
    "本人申请容缺受理，承诺在告知的期限内补齐所列容缺材料，并对所提交材料的真实性负责。"
    "逾期未补齐的，相关事项将终止办理，需重新申请；提供虚假材料的，依法承担相应责任并记入信用记录。"
)


class UnknownChoice(LookupError):
    """The bundle or matter asked for is not in the catalogue."""


@dataclass(frozen=True)
class MaterialChoice:
    code: str
    name: str
    deferrable: bool
    needed_for: tuple[str, ...]          # names of the matters that ask for it
    why_not_deferrable: str | None = None

    @property
    def field(self) -> str:
        return f"material-{self.code}"


@dataclass(frozen=True)
class Application:
    """What the resident chose: a bundle (一件事) or one matter, with its one set of materials."""

    kind: str                            # bundle | matter
    code: str
    name: str
    matters: tuple[tuple[str, str], ...]  # (code, name)
    materials: tuple[MaterialChoice, ...]


@dataclass(frozen=True)
class FormResult:
    body: dict | None                    # intake's CaseSubmission, when nothing is wrong
    errors: dict[str, str]               # field -> message in Chinese
    values: dict[str, str]               # what to show again in the form (never the ID number when refused)


def application_for(catalogue: Mapping, *, bundle: str | None = None, matter: str | None = None) -> Application:
    """The checklist for a bundle or a matter, from intake's ``GET /v1/catalogue`` answer."""
    matters = {m["code"]: m for m in catalogue.get("matters", [])}
    if bundle:
        found = next((b for b in catalogue.get("bundles", []) if b["code"] == bundle), None)
        if found is None:
            raise UnknownChoice(bundle)
        members = [matters[code] for code in found["matters"] if code in matters]
        return Application("bundle", found["code"], found["name"], tuple((m["code"], m["name"]) for m in members),
                           _materials(found["materials"], members))
    if matter and matter in matters:
        found = matters[matter]
        return Application("matter", found["code"], found["name"], ((found["code"], found["name"]),),
                           _materials(found["materials"], [found]))
    raise UnknownChoice(matter or "")


def _materials(listed: list[dict], members: list[dict]) -> tuple[MaterialChoice, ...]:
    choices = []
    for material in listed:
        asking = [m for m in members if any(x["code"] == material["code"] for x in m["materials"])]
        strict = [m["name"] for m in asking
                  if not next(x for x in m["materials"] if x["code"] == material["code"])["deferrable"]]
        why = None
        if not material["deferrable"]:
            if strict and len(strict) < len(asking):
                why = f"「{'」「'.join(strict)}」把它列为主要材料，须当场提供，不能容缺。"
            else:
                why = "这是主要材料，须当场提供，不能容缺。"
        choices.append(MaterialChoice(code=material["code"], name=material["name"],
                                      deferrable=bool(material["deferrable"]),
                                      needed_for=tuple(m["name"] for m in asking), why_not_deferrable=why))
    return tuple(choices)


def id_number_problem(value: str, *, today: date | None = None) -> str | None:
    """The Chinese message for a wrong ID number, or None when it is a valid one (GB 11643)."""
    try:
        validate_id_number(value, today=today)
    except InvalidIdNumber as exc:
        return ID_NUMBER_MESSAGES[exc.reason]
    return None


def new_submission_key() -> str:
    """The Idempotency-Key of one filled-in form: a second tap on 提交 gives the first case, not a second one."""
    return f"kiosk-{uuid.uuid4().hex}"


def read_form(form: Mapping[str, str], application: Application, *, community_code: str,
              today: date | None = None) -> FormResult:
    """Check the resident's answers; return intake's submission body, or the message for each wrong field."""
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    provided, deferred = [], []
    for material in application.materials:
        answer = (form.get(material.field) or "").strip()
        values[material.field] = answer
        if answer == PROVIDED:
            provided.append(material.code)
        elif answer == DEFERRED and material.deferrable:
            deferred.append(material.code)
        elif answer == DEFERRED:
            errors[material.field] = f"{material.name}不能容缺：{material.why_not_deferrable}"
        else:
            errors[material.field] = (f"请确认已带来{material.name}，或选择容缺后补。" if material.deferrable
                                      else f"请确认已带来{material.name}（{material.why_not_deferrable}）")
    commitment = (form.get("commitment") or "").strip()
    values["commitment"] = commitment
    if deferred and commitment != COMMITMENT_ACCEPTED:
        errors["commitment"] = "容缺受理须先阅读并同意《容缺受理承诺书》。"

    name = (form.get("name") or "").strip()
    values["name"] = name
    if not name:
        errors["name"] = "请输入申请人姓名。"
    elif len(name) > MAX_NAME:
        errors["name"] = f"姓名不能超过{MAX_NAME}个字。"

    id_number = (form.get("id_number") or "").strip().upper()
    problem = id_number_problem(id_number, today=today) if id_number else "请输入身份证号码。"
    if problem:
        errors["id_number"] = problem
    else:
        values["id_number"] = id_number

    phone = (form.get("phone") or "").strip().replace(" ", "")
    values["phone"] = phone
    if not phone:
        errors["phone"] = "请输入联系电话。"
    elif not PHONE.fullmatch(phone):
        errors["phone"] = "请输入11位手机号码，或带区号的固定电话（如 025-12345678）。"

    if errors:
        return FormResult(None, errors, values)
    body = {
        "community_code": community_code,
        "applicant": {"name": name, "id_number": id_number, "phone": phone},
        "materials": {"provided": provided, "deferred": deferred},
        "channel": {"kind": "kiosk"},
        "description": application.name,
    }
    if application.kind == "bundle":
        body["bundle"] = application.code
    else:
        body["matters"] = [application.code]
    return FormResult(body, {}, values)


_FIELD_OF_SCHEMA_PATH = {"applicant.name": "name", "applicant.id_number": "id_number", "applicant.phone": "phone"}


def errors_from_problem(problem: Mapping, application: Application) -> dict[str, str]:
    """Intake refused the submission: its machine-readable reason, as a Chinese message next to the field."""
    reason = problem.get("reason")
    material = problem.get("material")
    names = {m.code: m.name for m in application.materials}
    if reason == "invalid_id_number":
        return {"id_number": ID_NUMBER_MESSAGES.get(problem.get("problem"), "身份证号码不正确，请核对后重新输入。")}
    if reason == "material_not_deferrable" and material:
        return {f"material-{material}": f"{names.get(material, material)}是主要材料，不能容缺，请当场提供。"}
    if reason == "missing_material" and material:
        return {f"material-{material}": f"请提供{names.get(material, material)}。"}
    if reason == "deferral_refused_bad_credit":
        return {"commitment": "很抱歉，容缺受理不适用于信用记录不良的申请人，请备齐全部材料后再办理。"}
    if reason == "validation_failed":
        fields = {}
        for error in problem.get("errors", []):
            field = _FIELD_OF_SCHEMA_PATH.get(error.get("field"))
            if field == "phone":
                fields[field] = "请输入11位手机号码，或带区号的固定电话（如 025-12345678）。"
            elif field == "name":
                fields[field] = f"请输入申请人姓名（不超过{MAX_NAME}个字）。"
            elif field == "id_number":
                fields[field] = "身份证号码不正确，请核对后重新输入。"
        return fields or {"_form": "填写的内容有误，请重新开始。"}
    if reason == "community_forbidden":
        return {"_form": "本终端不能为其他社区办理，请联系社区工作人员。"}
    if reason == "idempotency_key_reused":
        return {"_form": "此表单已提交过，请重新开始。"}
    return {"_form": "暂时无法受理，请联系社区工作人员。"}
