"""The resident lookup: a case number plus the last four digits of the applicant's phone show where her case
stands, with nothing personal beyond a masked name.

Only the console service asks (its own token, kind ``console``); the phone stays here. Misses are counted per
case number and per client (an opaque key the console derives from the caller's address), in this database so
that every console replica sees the same count: ``MAX_MISSES`` misses within ``WINDOW`` lock that case number,
or that client, for ``LOCKOUT``. A wrong case number and a wrong phone ending get the same answer, so the
lookup does not tell which case numbers exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import structlog
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from services.intake.adapters.orm import CaseRecord, LookupGuardRecord, MaterialLedgerRecord
from services.intake.adapters.personal_data import open_applicant
from services.intake.handlers import IntakeRules
from shared.auth import Principal
from shared.clock import Clock
from shared.identity import mask_name
from shared.outbox import UnitOfWork, insert_ignoring_duplicates
from shared.refusal import Refusal

log = structlog.get_logger(__name__)

FINAL_STATUSES = frozenset({"resolved", "rejected", "terminated"})


# ── the rule, pure ──────────────────────────────────────────────────────────────────────────────────────────

@dataclass(frozen=True)
class LookupPolicy:
    max_misses: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class GuardState:
    misses: int = 0
    window_started_at: datetime | None = None
    locked_until: datetime | None = None

    def locked_at(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def after_miss(self, now: datetime, policy: LookupPolicy) -> GuardState:
        """One more miss; the count starts again when the window has passed or a lockout has ended."""
        fresh = (self.window_started_at is None or now - self.window_started_at >= policy.window
                 or (self.locked_until is not None and now >= self.locked_until))
        misses = 1 if fresh else self.misses + 1
        started = now if fresh else self.window_started_at
        locked_until = now + policy.lockout if misses >= policy.max_misses else None
        return GuardState(misses=misses, window_started_at=started, locked_until=locked_until)

    def misses_left(self, policy: LookupPolicy) -> int:
        return 0 if self.locked_until else max(policy.max_misses - self.misses, 0)


def phone_ending(phone: str) -> str:
    """The last four digits of a mobile or landline number, whatever separators it holds."""
    return "".join(character for character in phone if character.isdigit())[-4:]


def normalise_case_number(value: str) -> str:
    return value.strip().upper()


# ── the API ─────────────────────────────────────────────────────────────────────────────────────────────────

class CaseLookupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    case_number: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$",
                             examples=["SJ20261130-0A1B2C3D4E5F"])
    phone_last4: str = Field(pattern=r"^\d{4}$", description="the last four digits of the applicant's phone")
    client: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$",
                        description="an opaque key of the caller (e.g. a keyed hash of its address), never the "
                                    "address itself; misses are counted per client too")


class MissingMaterialView(BaseModel):
    material_code: str
    material_name: str
    due_date: date | None = None
    source: str = Field(description="deferred (容缺, promised at intake) or requested (asked for by staff)")


class LookupItemView(BaseModel):
    matter_code: str
    matter_name: str
    status: str
    level: str | None = None
    unit_name: str | None = None
    department_name: str | None = None
    promised_deadline: datetime | None = None
    deadline_provisional: bool | None = None
    missing_materials: list[MissingMaterialView]


class CaseLookupView(BaseModel):
    case_number: str
    community_code: str = Field(description="the community the case was taken in for (where to hand materials in "
                                            "nearby: the 15-minute service circle)")
    community_name: str
    applicant_name: str = Field(description="masked")
    submitted_at: datetime
    completed_at: datetime | None = None
    items: list[LookupItemView]


class LookupRefused(Refusal):
    pass


def lookup_case(body: CaseLookupRequest, *, principal: Principal, unit_of_work: UnitOfWork, rules: IntakeRules,
                clock: Clock, policy: LookupPolicy = LookupPolicy()) -> CaseLookupView:
    if principal.kind != "console":
        raise LookupRefused("lookup_forbidden", "only the console service may look cases up", status=403)
    now = clock.now()
    number = normalise_case_number(body.case_number)
    keys = sorted([("case", number), ("client", body.client)])
    with unit_of_work as uow:
        session = uow.session
        for scope, key in keys:
            session.execute(insert_ignoring_duplicates(session, LookupGuardRecord).values(
                scope=scope, key=key, misses=0, window_started_at=None, locked_until=None))
        # Row locks (PostgreSQL) serialise concurrent lookups of the same case or client across replicas;
        # SQLite writes one at a time anyway.
        guards = {(g.scope, g.key): g for g in session.scalars(
            select(LookupGuardRecord).where(LookupGuardRecord.scope.in_(["case", "client"]),
                                            LookupGuardRecord.key.in_([number, body.client]))
            .order_by(LookupGuardRecord.scope, LookupGuardRecord.key).with_for_update())
                  if (g.scope, g.key) in keys}
        states = {k: GuardState(g.misses, g.window_started_at, g.locked_until) for k, g in guards.items()}
        locked = [k for k, state in states.items() if state.locked_at(now)]
        if locked:
            until = max(states[k].locked_until for k in locked)
            uow.commit()
            log.info("case lookup refused: locked", scopes=[scope for scope, _ in locked])
            raise LookupRefused("lookup_locked", "too many wrong attempts; try again later", status=429,
                                retry_after_seconds=max(int((until - now).total_seconds()) + 1, 1))

        record = session.scalar(select(CaseRecord).where(CaseRecord.case_number == number))
        applicant = open_applicant(rules.keyring, record.applicant) if record is not None else None
        if applicant is None or phone_ending(applicant.phone) != body.phone_last4:
            after = {k: states[k].after_miss(now, policy) for k in keys}
            for k, state in after.items():
                guards[k].misses = state.misses
                guards[k].window_started_at = state.window_started_at
                guards[k].locked_until = state.locked_until
            uow.commit()
            left = min(state.misses_left(policy) for state in after.values())
            log.info("case lookup missed", misses_left=left)
            if left == 0:
                raise LookupRefused("lookup_locked", "too many wrong attempts; try again later", status=429,
                                    retry_after_seconds=int(policy.lockout.total_seconds()))
            raise LookupRefused("lookup_no_match", "no case with that number and phone ending", status=404,
                                attempts_left=left)

        for guard in guards.values():
            guard.misses, guard.window_started_at, guard.locked_until = 0, None, None
        view = _lookup_view(session, record, rules, masked_name=mask_name(applicant.name))
        uow.commit()
        log.info("case looked up", case_id=record.id)
        return view


def _lookup_view(session, record: CaseRecord, rules: IntakeRules, *, masked_name: str) -> CaseLookupView:
    catalogue = rules.catalogue
    ledger = {(row.matter_code, row.material_code): row for row in session.scalars(
        select(MaterialLedgerRecord).where(MaterialLedgerRecord.case_id == record.id))}

    def material_name(matter_code: str, material_code: str) -> str:
        matter = catalogue.matters.get(matter_code)
        for material in matter.materials if matter else ():
            if material.code == material_code:
                return material.name
        return material_code

    items = []
    for item in record.items:
        missing: dict[str, MissingMaterialView] = {}
        if item.status not in FINAL_STATUSES:
            for deferred in record.deferred:
                if item.matter_code in deferred.matter_codes.split():
                    entry = ledger.get((item.matter_code, deferred.material_code))
                    if entry is None or entry.state != "supplied":
                        missing[deferred.material_code] = MissingMaterialView(
                            material_code=deferred.material_code, material_name=deferred.material_name,
                            due_date=deferred.due_date, source="deferred")
            for (matter_code, material_code), entry in ledger.items():
                if matter_code == item.matter_code and entry.state == "requested":
                    missing[material_code] = MissingMaterialView(
                        material_code=material_code, material_name=material_name(matter_code, material_code),
                        due_date=entry.due_date, source="requested")
        matter = catalogue.matters.get(item.matter_code)
        unit = catalogue.units.get(item.unit_code) if item.unit_code else None
        department = catalogue.departments.get(item.department_code) if item.department_code else None
        items.append(LookupItemView(
            matter_code=item.matter_code, matter_name=matter.name if matter else item.matter_code,
            status=item.status, level=item.level, unit_name=unit.name if unit else None,
            department_name=department.name if department else None,
            promised_deadline=item.promised_deadline, deadline_provisional=item.deadline_provisional,
            missing_materials=sorted(missing.values(), key=lambda m: m.material_code)))
    community = catalogue.units.get(record.community_code)
    return CaseLookupView(case_number=record.case_number, community_code=record.community_code,
                          community_name=community.name if community else record.community_code,
                          applicant_name=masked_name,
                          submitted_at=record.submitted_at, completed_at=record.completed_at, items=items)
