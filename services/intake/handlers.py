"""Intake handlers: take a submission in, keep the items read model, show a case.

Each handler takes the message and its dependencies, changes state in one unit of work, and records
the events it causes in the outbox of the same transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import structlog
from sqlalchemy import or_, select
from sqlalchemy import update as sql_update

from services.intake.adapters.orm import (
    ApplicantRecord,
    CaseItemRecord,
    CaseRecord,
    DeferredMaterialRecord,
    IdempotencyKeyRecord,
    MaterialLedgerRecord,
)
from services.intake.adapters.personal_data import Applicant, open_applicant, seal_applicant
from services.intake.circle import CircleSettings, point_for_submission
from services.intake.domain import SubmissionRefused, assess_submission, case_number
from services.intake.schemas import (
    BundleView,
    CaseSubmission,
    CaseView,
    CatalogueSummary,
    DeferredMaterialView,
    EnterpriseApplicant,
    ItemView,
    MaterialView,
    MatterView,
)
from shared.auth import Principal
from shared.catalogue import Catalogue, Level
from shared.clock import Clock, new_id
from shared.crypto import Keyring
from shared.db import insert_rows
from shared.events import (
    CaseCompletedV1,
    CaseSubmittedV1,
    CloudEvent,
    DeferredMaterial,
    Delivery,
    ItemDeadlineRevisedV1,
    ItemEvent,
    ItemReturnedV1,
    ItemSupplementRequestedV1,
    ItemSupplementSuppliedV1,
)
from shared.identity import (
    InvalidIdNumber,
    InvalidUscc,
    id_number_fingerprint,
    mask_name,
    validate_id_number,
    validate_uscc,
)
from shared.logging import remember_personal_values
from shared.nameko_ext import PermanentError
from shared.outbox import UnitOfWork, insert_ignoring_duplicates
from shared.service_points import EMPTY as NO_SERVICE_POINTS
from shared.service_points import ServicePoints
from shared.workdays import SHANGHAI, WorkdayCalendar

log = structlog.get_logger(__name__)

ITEM_UPDATES_CONSUMER = "intake.item-updates"  # also takes case completions


@dataclass(frozen=True)
class IntakeRules:
    catalogue: Catalogue
    calendar: WorkdayCalendar
    keyring: Keyring  # encrypts the applicant; its blind-index key fingerprints ID numbers
    deferral_working_days: int = 5
    bad_credit_fingerprints: frozenset[str] = frozenset()
    service_points: ServicePoints = NO_SERVICE_POINTS
    circle: CircleSettings = CircleSettings()


class Forbidden(SubmissionRefused):
    status = 403


class NotFound(SubmissionRefused):
    status = 404


def check_may_act_for(principal: Principal, community_code: str, catalogue: Catalogue) -> None:
    """A kiosk acts only for its own community; staff only inside their own jurisdiction."""
    if principal.kind == "kiosk" and principal.unit_code == community_code:
        return
    if principal.kind == "staff" and community_code in catalogue.units and catalogue.is_within(
            community_code, principal.unit_code):
        return
    raise Forbidden("community_forbidden", "this client may not act for that community",
                    community_code=community_code)


def may_see_case(principal: Principal, record: CaseRecord, catalogue: Catalogue) -> None:
    """The case's own line (kiosk of its community, staff of its jurisdiction), or, for a 通办 case, staff of the
    unit whose window took it in."""
    if (record.accepting_unit_code and principal.kind == "staff" and principal.unit_code in catalogue.units
            and catalogue.is_within(record.accepting_unit_code, principal.unit_code)):
        return
    check_may_act_for(principal, record.community_code, catalogue)


@dataclass(frozen=True)
class Placement:
    """Where a submission is taken in and whose line handles it."""

    line_community_code: str               # routing follows this community's line
    service_point_id: str | None = None
    accepting_unit_code: str | None = None   # 通办: the window's unit, outside that line
    taken_in_community_code: str | None = None


def place_submission(submission: CaseSubmission, principal: Principal, rules: IntakeRules) -> Placement:
    """Who may take this case in, where, and for whose line; raises SubmissionRefused.

    A kiosk acts for its own community only (so never 通办); a point's terminal for its own point only. Staff take
    a case in for a community of their jurisdiction, or, at a window, for a resident whose registered residence
    lies outside it (通办, e.g. across districts): the case goes to the residence's line, and the window's unit
    keeps custody of the materials.
    """
    catalogue = rules.catalogue
    if submission.community_code not in catalogue.units:
        raise SubmissionRefused("unknown_community", f"unknown community code {submission.community_code!r}",
                                community_code=submission.community_code)
    check_may_act_for(principal, submission.community_code, catalogue)
    point_id = submission.service_point_id or principal.service_point_id
    if point_id is not None:
        if principal.kind == "kiosk" and principal.service_point_id != point_id:
            raise Forbidden("service_point_forbidden", "a kiosk takes cases in at its own service point only",
                            service_point_id=point_id)
        point = rules.service_points.get(point_id)
        if principal.kind == "kiosk" and point is not None and point.community_code != principal.unit_code:
            raise Forbidden("service_point_forbidden", "this terminal's point is not in its community",
                            service_point_id=point_id)
    residence = submission.residence_division_code
    if residence is None or residence == submission.community_code:
        return Placement(line_community_code=submission.community_code, service_point_id=point_id)
    if catalogue.units.get(residence) is None or catalogue.units[residence].level is not Level.COMMUNITY:
        raise SubmissionRefused("unknown_residence", "the residence is not a community of the catalogue",
                                residence_division_code=residence)
    if principal.kind != "staff" or submission.channel.kind != "window" or point_id is not None:
        raise Forbidden("cross_district_forbidden", "only a window (staff) takes a case in for a resident of "
                        "another community; a kiosk or a service point acts for its own community only",
                        residence_division_code=residence)
    if catalogue.is_within(residence, principal.unit_code):
        return Placement(line_community_code=residence)  # inside the window's own jurisdiction: not 通办
    return Placement(line_community_code=residence, accepting_unit_code=principal.unit_code,
                     taken_in_community_code=submission.community_code)


def submit_case(submission: CaseSubmission, *, principal: Principal, idempotency_key: str | None,
                unit_of_work: UnitOfWork, rules: IntakeRules, clock: Clock) -> tuple[CaseView, bool]:
    """Take a case in. Returns its view, and whether it is a replay of an earlier identical submission."""
    applicant = submission.applicant
    enterprise = applicant if isinstance(applicant, EnterpriseApplicant) else None
    # The person: the resident herself, or the one acting for the enterprise. Same checks, same storage
    # (sealed, blind-indexed, redacted from logs); the organisation's name and USCC are public.
    person = enterprise.representative if enterprise else applicant
    remember_personal_values(person.name, person.id_number, person.phone, person.email)
    placement = place_submission(submission, principal, rules)
    now = clock.now()
    uscc = None
    if enterprise is not None:
        try:
            uscc = validate_uscc(enterprise.uscc)
        except InvalidUscc as exc:
            raise SubmissionRefused("invalid_uscc", str(exc), problem=exc.reason) from None
    try:
        id_number = validate_id_number(person.id_number, today=now.astimezone(SHANGHAI).date())
    except InvalidIdNumber as exc:
        raise SubmissionRefused("invalid_id_number", str(exc), problem=exc.reason,
                                **({"field": "applicant.representative.id_number"} if enterprise else {})) from None
    fingerprint = id_number_fingerprint(id_number, rules.keyring.blind_index_key)
    accepted = assess_submission(
        rules.catalogue, rules.calendar,
        community_code=placement.line_community_code,
        bundle_code=submission.bundle,
        matter_codes=submission.matters,
        provided=submission.materials.provided,
        deferred=submission.materials.deferred,
        channel=submission.channel.kind,
        today=now.astimezone(SHANGHAI).date(),
        deferral_working_days=rules.deferral_working_days,
        bad_credit=fingerprint in rules.bad_credit_fingerprints,
        applicant_kind="enterprise" if enterprise else "person",
    )
    for notice in accepted.deferred:
        if notice.due_date_provisional:
            log.warning("deferral due date computed without an official calendar for its year; "
                        "add the year to the calendar override file", material=notice.material_code)
    request_digest = hashlib.sha256(submission.model_dump_json().encode()).hexdigest()

    with unit_of_work as uow:
        if idempotency_key and placement.service_point_id is not None:
            # Before the point's opening hours: a retry of a case taken in just before closing time still
            # gets its case. (Elsewhere a retry is found by the key's insert below, without a look-up first.)
            replay = _replay(uow, submission.community_code, idempotency_key, request_digest, rules)
            if replay is not None:
                return replay, True
        if placement.service_point_id is not None:
            point_for_submission(rules.service_points, rules.calendar, point_id=placement.service_point_id,
                                 community_code=placement.line_community_code, matters=accepted.matters, now=now)
        case_id = new_id()
        structlog.contextvars.bind_contextvars(case_id=case_id)
        record = CaseRecord(
            id=case_id,
            case_number=case_number(now.astimezone(SHANGHAI).date(), case_id),
            community_code=accepted.community_code,
            bundle_code=accepted.bundle.code if accepted.bundle else None,
            channel=submission.channel.kind,
            agent_id=submission.channel.agent_id,
            description=submission.description,
            catalogue_version=rules.catalogue.version,
            submitted_by=principal.name,
            submitted_at=now,
            service_point_id=placement.service_point_id,
            accepting_unit_code=placement.accepting_unit_code,
            taken_in_community_code=placement.taken_in_community_code,
        )
        record.applicant = seal_applicant(
            rules.keyring, case_id,
            Applicant(name=person.name, id_number=id_number, phone=person.phone, email=person.email),
            id_fingerprint=fingerprint)
        record.applicant.case_id = case_id
        record.applicant.kind = "enterprise" if enterprise else "person"
        record.applicant.organisation_name = enterprise.organisation_name if enterprise else None
        record.applicant.uscc = uscc
        record.applicant.representative_role = enterprise.representative.role if enterprise else None
        record.items = [CaseItemRecord(case_id=case_id, matter_code=matter.code, position=position,
                                       status="submitted")
                        for position, matter in enumerate(accepted.matters)]
        record.deferred = [DeferredMaterialRecord(
            case_id=case_id, material_code=notice.material_code, material_name=notice.material_name,
            matter_codes=" ".join(notice.matter_codes), due_date=notice.due_date,
            due_date_provisional=notice.due_date_provisional, consequence=notice.consequence,
            due_working_days=notice.working_days)
            for notice in accepted.deferred]
        # Core inserts of the new rows (the case first: the others refer to it); nothing is read back.
        insert_rows(uow.session, [record, record.applicant, *record.items, *record.deferred])
        if idempotency_key:
            # The key last, INSERT … ON CONFLICT DO NOTHING: a retry (or a concurrent twin, once the first
            # commits) inserts nothing, and gets the first case instead; what was written here is rolled back.
            claimed = uow.session.execute(insert_ignoring_duplicates(uow.session, IdempotencyKeyRecord).values(
                community_code=submission.community_code, key=idempotency_key, request_digest=request_digest,
                case_id=case_id, created_at=now)).rowcount == 1
            if not claimed:
                uow.session.rollback()
                replay = _replay(uow, submission.community_code, idempotency_key, request_digest, rules)
                if replay is None:
                    raise RuntimeError("the Idempotency-Key was taken, yet no case holds it")
                return replay, True
        uow.publish(CaseSubmittedV1(
            case_id=case_id,
            case_number=record.case_number,
            community_code=accepted.community_code,
            catalogue_version=rules.catalogue.version,
            bundle_code=record.bundle_code,
            matter_codes=tuple(matter.code for matter in accepted.matters),
            channel=submission.channel.kind,
            agent_id=submission.channel.agent_id,
            applicant_masked_name=mask_name(person.name),
            deferred_materials=tuple(
                DeferredMaterial(matter_code=matter_code, material_code=notice.material_code,
                                 due_date=notice.due_date, due_date_provisional=notice.due_date_provisional)
                for notice in accepted.deferred for matter_code in notice.matter_codes),
            submitted_at=now,
            service_point_id=placement.service_point_id,
            accepting_unit_code=placement.accepting_unit_code,
            accepted_by=principal.name if placement.accepting_unit_code else None,
            received_material_codes=(tuple(sorted(set(submission.materials.provided)))
                                     if placement.accepting_unit_code else ()),
            # Which kinds of address there are (no address itself): notification plans no e-mail to nobody.
            resident_channels=tuple(channel for channel, address in (("sms", person.phone), ("email", person.email))
                                    if address),
        ))
        uow.commit()
        log.info("case submitted", case_number=record.case_number, matters=len(record.items),
                 deferred=len(record.deferred))
        return case_view(record, rules), False


def _replay(uow: UnitOfWork, community_code: str, key: str, request_digest: str,
            rules: IntakeRules) -> CaseView | None:
    existing = uow.session.get(IdempotencyKeyRecord, (community_code, key))
    if existing is None:
        return None
    if existing.request_digest != request_digest:
        raise SubmissionRefused("idempotency_key_reused",
                                "this Idempotency-Key was used for a different submission", status=422)
    return case_view(uow.session.get(CaseRecord, existing.case_id), rules)


def get_case(case_id: str, *, principal: Principal, unit_of_work: UnitOfWork, rules: IntakeRules) -> CaseView:
    with unit_of_work as uow:
        record = uow.session.get(CaseRecord, case_id)
        if record is None:
            record = uow.session.scalar(select(CaseRecord).where(CaseRecord.case_number == case_id))
        if record is None:
            raise NotFound("case_not_found", "no case with that id or number")
        may_see_case(principal, record, rules.catalogue)
        return case_view(record, rules)


def apply_item_event(event: CloudEvent, *, unit_of_work: UnitOfWork) -> bool:
    """Update the case's item from an item event; False when the event was already applied."""
    payload = event.payload()
    with unit_of_work as uow:
        if not uow.claim_message(ITEM_UPDATES_CONSUMER, event):
            return False
        # A return is followed by an item.routed for the next unit, stamped the same moment; the two may be
        # handled concurrently here, so only the routed event may set the placement.
        if isinstance(payload, ItemEvent) and payload.changes_item and not isinstance(payload, ItemReturnedV1):
            _apply_item_event(uow, payload, event)
        elif isinstance(payload, CaseCompletedV1):
            _apply_case_completed(uow, payload)
        uow.commit()
        return True


def _apply_item_event(uow: UnitOfWork, update: ItemEvent, event: CloudEvent) -> None:
    if not isinstance(update, ItemSupplementRequestedV1 | ItemSupplementSuppliedV1 | ItemDeadlineRevisedV1):
        _apply_placement(uow, update)
        return
    item = uow.session.get(CaseItemRecord, (update.case_id, update.matter_code))
    if item is None:
        raise PermanentError("item event names a case or matter intake does not hold")
    # Events may arrive out of order; an older one never overwrites a newer state.
    if item.updated_at is not None and item.updated_at > update.occurred_at:
        return
    item.item_id = update.item_id
    item.status = update.status
    item.level = update.level
    item.unit_code = update.unit_code
    item.department_code = update.department_code
    for deadline_field in ("legal_deadline", "promised_deadline", "deadline_provisional"):
        if deadline_field in type(update).model_fields:  # routed, released, supplement supplied
            setattr(item, deadline_field, getattr(update, deadline_field))
    item.updated_at = update.occurred_at
    if isinstance(update, ItemSupplementRequestedV1 | ItemSupplementSuppliedV1):
        _record_materials(uow, update)
    elif isinstance(update, ItemDeadlineRevisedV1) and update.supplement_due_date is not None:
        # The supplement request's due date was counted again (its year's holiday arrangement was loaded).
        for entry in uow.session.scalars(select(MaterialLedgerRecord).where(
                MaterialLedgerRecord.case_id == update.case_id, MaterialLedgerRecord.matter_code == update.matter_code,
                MaterialLedgerRecord.state == "requested")):
            entry.due_date = update.supplement_due_date


def _apply_placement(uow: UnitOfWork, update: ItemEvent) -> None:
    """An event that only moves the item (routed, claimed, resolved, …): one conditional UPDATE, no load and
    flush. Events may arrive out of order; an older one never overwrites a newer state."""
    items = CaseItemRecord.__table__
    mine = (items.c.case_id == update.case_id, items.c.matter_code == update.matter_code)
    values = dict(item_id=update.item_id, status=update.status, level=update.level, unit_code=update.unit_code,
                  department_code=update.department_code, updated_at=update.occurred_at)
    for deadline_field in ("legal_deadline", "promised_deadline", "deadline_provisional"):
        if deadline_field in type(update).model_fields:  # routed, released
            values[deadline_field] = getattr(update, deadline_field)
    changed = uow.session.execute(sql_update(items).where(
        *mine, or_(items.c.updated_at.is_(None), items.c.updated_at <= update.occurred_at)).values(**values)).rowcount
    if changed == 0 and uow.session.execute(select(items.c.case_id).where(*mine)).first() is None:
        raise PermanentError("item event names a case or matter intake does not hold")


def _record_materials(uow: UnitOfWork, update: ItemSupplementRequestedV1 | ItemSupplementSuppliedV1) -> None:
    """The material ledger the resident lookup reads: what staff asked for, and what was recorded as supplied."""
    requested = isinstance(update, ItemSupplementRequestedV1)
    for material_code in update.material_codes:
        key = (update.case_id, update.matter_code, material_code)
        entry = uow.session.get(MaterialLedgerRecord, key)
        if entry is None:
            entry = MaterialLedgerRecord(case_id=update.case_id, matter_code=update.matter_code,
                                         material_code=material_code, updated_at=update.occurred_at)
            uow.session.add(entry)
        elif entry.updated_at > update.occurred_at:
            continue
        entry.state = "requested" if requested else "supplied"
        entry.due_date = update.due_date if requested else None
        entry.updated_at = update.occurred_at


def _apply_case_completed(uow: UnitOfWork, completed: CaseCompletedV1) -> None:
    case = uow.session.get(CaseRecord, completed.case_id)
    if case is None:
        raise PermanentError("completed case is not one intake holds")
    case.completed_at = completed.completed_at
    case.delivery_json = completed.delivery.model_dump_json() if completed.delivery else None
    # The completion names each item's final status. Item events travel on other routing keys, so the last
    # item.resolved may arrive after it: the case must not read as complete with an item still open.
    for outcome in completed.outcomes:
        item = uow.session.get(CaseItemRecord, (completed.case_id, outcome.matter_code))
        if item is not None and (item.updated_at is None or item.updated_at <= completed.completed_at):
            item.item_id = outcome.item_id
            item.status = outcome.status
            item.updated_at = completed.completed_at


CONTACT_PURPOSES = {"sms": "phone", "email": "email"}


class UnknownContactPurpose(ValueError):
    pass


def applicant_contact(case_id: str, purpose: str, *, unit_of_work: UnitOfWork,
                      keyring: Keyring) -> dict | None:
    """The one contact detail a message to the resident needs, asked by case id over RPC: the phone for an
    SMS, the e-mail address for an e-mail. Never the name or the ID number, never both details at once.

    Personal data travels only in this point-to-point reply, never in an event, and is never logged.
    """
    field = CONTACT_PURPOSES.get(purpose)
    if field is None:
        raise UnknownContactPurpose(f"no contact detail is given for purpose {purpose!r}; "
                                    f"ask for one of {', '.join(sorted(CONTACT_PURPOSES))}")
    with unit_of_work as uow:
        record = uow.session.get(CaseRecord, case_id)
        if record is None:
            return None
        applicant = open_applicant(keyring, record.applicant)
        value = getattr(applicant, field)
        remember_personal_values(value)
        return {"case_id": record.id, field: value}


MAX_CONTACTS_PER_CALL = 500


def applicant_contacts(case_ids: list[str], purpose: str, *, unit_of_work: UnitOfWork,
                       keyring: Keyring) -> dict[str, str | None]:
    """``applicant_contact`` for many cases in one call (a notification sweep's batch): case id -> the one
    detail the purpose needs (None: the applicant gave none); a case intake does not hold is left out."""
    field = CONTACT_PURPOSES.get(purpose)
    if field is None:
        raise UnknownContactPurpose(f"no contact detail is given for purpose {purpose!r}; "
                                    f"ask for one of {', '.join(sorted(CONTACT_PURPOSES))}")
    wanted = sorted({str(case_id) for case_id in case_ids})
    if len(wanted) > MAX_CONTACTS_PER_CALL:
        raise UnknownContactPurpose(f"at most {MAX_CONTACTS_PER_CALL} cases per call")
    answers: dict[str, str | None] = {}
    with unit_of_work as uow:
        for applicant in uow.session.scalars(select(ApplicantRecord).where(ApplicantRecord.case_id.in_(wanted))):
            value = getattr(open_applicant(keyring, applicant), field)
            remember_personal_values(value)
            answers[applicant.case_id] = value
    return answers


def case_view(record: CaseRecord, rules: IntakeRules) -> CaseView:
    catalogue = rules.catalogue

    def unit_name(code: str | None) -> str | None:
        return catalogue.units[code].name if code in catalogue.units else None

    def department_name(code: str | None) -> str | None:
        return catalogue.departments[code].name if code in catalogue.departments else None

    def matter_name(code: str) -> str:
        return catalogue.matters[code].name if code in catalogue.matters else code

    return CaseView(
        case_id=record.id,
        case_number=record.case_number,
        community_code=record.community_code,
        service_point_id=record.service_point_id,
        accepting_unit_code=record.accepting_unit_code,
        bundle_code=record.bundle_code,
        catalogue_version=record.catalogue_version,
        channel=record.channel,
        submitted_at=record.submitted_at,
        applicant_name=mask_name(open_applicant(rules.keyring, record.applicant).name),
        applicant_kind=record.applicant.kind or "person",
        organisation_name=record.applicant.organisation_name,
        uscc=record.applicant.uscc,
        representative_role=record.applicant.representative_role,
        completed_at=record.completed_at,
        delivery=Delivery.model_validate_json(record.delivery_json) if record.delivery_json else None,
        items=[ItemView(
            matter_code=item.matter_code, matter_name=matter_name(item.matter_code), status=item.status,
            item_id=item.item_id, level=item.level, unit_code=item.unit_code, unit_name=unit_name(item.unit_code),
            department_code=item.department_code, department_name=department_name(item.department_code),
            promised_deadline=item.promised_deadline, legal_deadline=item.legal_deadline,
            deadline_provisional=item.deadline_provisional) for item in record.items],
        deferred_materials=[DeferredMaterialView(
            material_code=deferred.material_code, material_name=deferred.material_name,
            matter_codes=deferred.matter_codes.split(), due_date=deferred.due_date,
            due_date_provisional=deferred.due_date_provisional, consequence=deferred.consequence)
            for deferred in record.deferred],
    )


def catalogue_summary(catalogue: Catalogue) -> CatalogueSummary:
    def materials_of(matters) -> list[MaterialView]:
        seen: dict[str, MaterialView] = {}
        for matter in matters:
            for material in matter.materials:
                known = seen.get(material.code)
                # One set of materials for a bundle: deferrable only if every matter allows it.
                deferrable = material.deferrable and (known is None or known.deferrable)
                seen[material.code] = MaterialView(code=material.code, name=material.name, deferrable=deferrable)
        return list(seen.values())

    return CatalogueSummary(
        version=catalogue.version,
        matters=[MatterView(code=m.code, name=m.name, department=m.department, lowest_level=str(m.lowest_level),
                            kind=str(m.kind), legal_days=m.legal_days, promised_days=m.promised_days,
                            proxy_allowed=m.proxy_allowed, applicant_kind=str(m.applicant_kind),
                            prerequisites=list(m.prerequisites),
                            materials=materials_of([m])) for m in catalogue.matters.values()],
        bundles=[BundleView(code=b.code, name=b.name, matters=list(b.matters),
                            applicant_kind=str(catalogue.matter(b.matters[0]).applicant_kind),
                            materials=materials_of(catalogue.expand(bundle_code=b.code)))
                 for b in catalogue.bundles.values()],
    )
