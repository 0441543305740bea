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

from shared.identity import InvalidIdNumber, InvalidUscc, validate_id_number, validate_uscc

PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
MAX_NAME = 50

LEVEL_NAMES = {"community": "社区", "street": "街道", "district": "区"}

ID_NUMBER_MESSAGES = {
    "wrong_length": "身份证号码应为18位，请核对后重新输入。",
    "bad_characters": "身份证号码应为17位数字加最后一位数字或字母X。",
    "bad_birth_date": "身份证号码中的出生日期（第7至14位）不正确。",
    "bad_checksum": "身份证号码校验位不正确（GB 11643），请核对后重新输入。",
}

# An enterprise applicant (applicant_kind: enterprise): the organisation, and the person acting for it.
ENTERPRISE = "enterprise"
MAX_ORGANISATION_NAME = 100
ROLE_NAMES = {"legal_representative": "法定代表人", "agent": "委托代理人"}
AUTHORISATION_NAME = "授权委托书"
USCC_MESSAGES = {
    "wrong_length": "统一社会信用代码应为18位，请对照营业执照（或名称自主申报告知书）核对。",
    "bad_characters": "统一社会信用代码只含数字和大写字母（不用 I、O、Z、S、V），第3至8位为数字，请核对。",
    "bad_checksum": "统一社会信用代码校验失败（GB 32100 校验位不符），请核对后重新输入。",
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
    applicant_kind: str = "person"        # person | enterprise (the catalogue's applicant_kind)

    @property
    def for_enterprise(self) -> bool:
        return self.applicant_kind == ENTERPRISE


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
                           _materials(found["materials"], members), found.get("applicant_kind") or "person")
    if matter and matter in matters:
        found = matters[matter]
        return Application("matter", found["code"], found["name"], ((found["code"], found["name"]),),
                           _materials(found["materials"], [found]), found.get("applicant_kind") or "person")
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


def uscc_problem(value: str) -> str | None:
    """The Chinese message for a wrong 统一社会信用代码, or None when it is a valid one (GB 32100)."""
    try:
        validate_uscc(value)
    except InvalidUscc as exc:
        return USCC_MESSAGES[exc.reason]
    return None


def _read_enterprise(form: Mapping[str, str], errors: dict[str, str], values: dict[str, str]) -> dict:
    """The organisation and how the person acts for it; the person's own answers are the resident's fields."""
    organisation = (form.get("organisation_name") or "").strip()
    values["organisation_name"] = organisation
    if not organisation:
        errors["organisation_name"] = "请输入企业名称（与营业执照或名称自主申报告知书一致）。"
    elif len(organisation) > MAX_ORGANISATION_NAME:
        errors["organisation_name"] = f"企业名称不能超过{MAX_ORGANISATION_NAME}个字。"
    uscc = (form.get("uscc") or "").strip().replace(" ", "").upper()
    values["uscc"] = uscc
    problem = uscc_problem(uscc) if uscc else "请输入18位统一社会信用代码。"
    if problem:
        errors["uscc"] = problem
    role = (form.get("role") or "").strip()
    values["role"] = role if role in ROLE_NAMES else ""
    if role not in ROLE_NAMES:
        errors["role"] = "请选择由法定代表人本人办理，还是由委托代理人办理。"
    authorisation = (form.get("authorisation") or "").strip()
    values["authorisation"] = authorisation
    if role == "agent" and authorisation != PROVIDED:
        errors["authorisation"] = (f"委托代理人办理须提交加盖企业公章、法定代表人签字的{AUTHORISATION_NAME}，"
                                   "请确认已带来。")
    return {"kind": ENTERPRISE, "organisation_name": organisation, "uscc": uscc, "role": role}


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
    enterprise = _read_enterprise(form, errors, values) if application.for_enterprise else None
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
    person = {"name": name, "id_number": id_number, "phone": phone}
    description = application.name
    if enterprise:
        applicant = {"kind": ENTERPRISE, "organisation_name": enterprise["organisation_name"],
                     "uscc": enterprise["uscc"], "representative": {"role": enterprise["role"], **person}}
        if enterprise["role"] == "agent":
            # Intake's catalogue has no code for the letter: the case says it was seen, for the window.
            description += f"（委托代理人办理，已提交{AUTHORISATION_NAME}）"
    else:
        applicant = person
    body = {
        "community_code": community_code,
        "applicant": applicant,
        "materials": {"provided": provided, "deferred": deferred},
        "channel": {"kind": "kiosk"},
        "description": description,
    }
    if application.kind == "bundle":
        body["bundle"] = application.code
    else:
        body["matters"] = [application.code]
    return FormResult(body, {}, values)


_FIELD_OF_SCHEMA_PATH = {"applicant.name": "name", "applicant.id_number": "id_number", "applicant.phone": "phone",
                         "applicant.representative.name": "name", "applicant.representative.id_number": "id_number",
                         "applicant.representative.phone": "phone", "applicant.organisation_name": "organisation_name",
                         "applicant.uscc": "uscc"}


def errors_from_problem(problem: Mapping, application: Application) -> dict[str, str]:
    """Intake refused the submission: its machine-readable reason, as a Chinese message next to the field."""
    reason = problem.get("reason")
    material = problem.get("material")
    names = {m.code: m.name for m in application.materials}
    if reason == "invalid_id_number":
        return {"id_number": ID_NUMBER_MESSAGES.get(problem.get("problem"), "身份证号码不正确，请核对后重新输入。")}
    if reason == "invalid_uscc":
        return {"uscc": USCC_MESSAGES.get(problem.get("problem"), USCC_MESSAGES["bad_checksum"])}
    if reason == "applicant_kind_mismatch":
        return {"_form": "企业事项须以企业为申请人办理，个人事项须以个人为申请人办理，请回到首页重新选择。"}
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
            elif field == "organisation_name":
                fields[field] = f"请输入企业名称（不超过{MAX_ORGANISATION_NAME}个字）。"
            elif field == "uscc":
                fields[field] = USCC_MESSAGES["wrong_length"]
        return fields or {"_form": "填写的内容有误，请重新开始。"}
    if reason == "community_forbidden":
        return {"_form": "本终端不能为其他社区办理，请联系社区工作人员。"}
    if reason == "idempotency_key_reused":
        return {"_form": "此表单已提交过，请重新开始。"}
    return {"_form": "暂时无法受理，请联系社区工作人员。"}
