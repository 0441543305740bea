"""Notification handlers: an event in -> deliveries planned; a sweep -> due deliveries sent; staff queries.

Planning and sending are apart. The consumer only writes rows (one per recipient, channel and cause,
unique in the delivery log), so a redelivered event changes nothing and a slow gateway never holds up
the queue. A periodic sweep in every replica claims due rows under row locks, sends them, and records
each attempt. The staff inbox is our own table: its rows are written in the planning transaction.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import bindparam, func, insert, select, update

from services.notification import domain
from services.notification.adapters.channels import OutgoingMessage, Sender
from services.notification.adapters.orm import Delivery, DeliveryAttempt, InboxMessage, ReportCase
from services.notification.domain import (
    LOCAL_CHANNELS,
    Names,
    Outcome,
    QuietHours,
    RateLimiter,
    RetryPolicy,
    SendResult,
    WebhookSubscription,
)
from services.notification.rendering import MessageTemplates
from services.notification.schemas import AttemptView, DeliveryView, InboxEntry
from services.notification.sms_templates import SmsTemplates
from shared.auth import Principal
from shared.catalogue import Catalogue
from shared.clock import Clock, new_id
from shared.db import is_postgres
from shared.events import CloudEvent, ReportFiledV1
from shared.nameko_ext import is_outage
from shared.outbox import UnitOfWork, insert_ignoring_duplicates
from shared.refusal import Refusal

log = structlog.get_logger(__name__)

CONSUMER = "notification.events"


# ── Planning ────────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class NotificationRules:
    """What planning needs, built and checked once at start."""

    names: Names
    templates: MessageTemplates
    webhooks: tuple[WebhookSubscription, ...]
    within: Callable[[str, str], bool]
    quiet_hours: QuietHours
    sms_templates: SmsTemplates | None = None   # the provider templates of SMS kinds (None: free text only)


def handle_event(event: CloudEvent, *, unit_of_work: UnitOfWork, rules: NotificationRules) -> int:
    """Plan the messages an event causes (the inbox ones delivered at once); returns how many deliveries
    are new. An event type without a rule is only recorded as processed."""
    event_rules = domain.RULES.get(event.type)
    payload = event.payload() if event_rules else None  # an invalid payload is dead-lettered by the consumer
    with structlog.contextvars.bound_contextvars(event_id=event.id, event_type=event.type,
                                                 case_id=getattr(payload, "case_id", None),
                                                 item_id=getattr(payload, "item_id", None)):
        with unit_of_work as uow:
            if not uow.claim_message(CONSUMER, event):
                log.info("event already handled; redelivery ignored")
                return 0
            if not event_rules:
                uow.commit()
                log.debug("no notification rule for this event type")
                return 0
            now = uow.clock.now()
            about = _case_of(uow, event.type, payload, now)
            planned = domain.plan(event.type, payload, now=now, names=rules.names, webhooks=rules.webhooks,
                                  within=rules.within, quiet_hours=rules.quiet_hours, case_id=about.case_id)
            created = []
            for message in planned:
                delivery_id = _plan_one(uow, event, payload, message, rules, now, about)
                if delivery_id is not None:
                    created.append((message.kind, message.channel, message.hold_reason))
            uow.commit()
        log.info("notifications planned", deliveries=len(created),
                 kinds=sorted({kind for kind, _, _ in created}),
                 held=sum(1 for _, _, hold in created if hold))
        return len(created)


@dataclass(frozen=True)
class _About:
    case_id: str | None = None
    community_code: str | None = None


def _case_of(uow: UnitOfWork, event_type: str, payload, now: datetime) -> _About:
    """The case (and community) an event is about. A 办不成事 report names its case only when filed: remember
    it then, find it again when the report closes. A report about no case is about no resident."""
    if isinstance(payload, ReportFiledV1) and payload.case_id is not None:
        uow.session.execute(insert_ignoring_duplicates(uow.session, ReportCase).values(
            report_id=payload.report_id, case_id=payload.case_id, community_code=payload.community_code,
            created_at=now))
    if event_type in domain.REPORT_CASE_FROM_FILING:
        known = uow.session.get(ReportCase, payload.report_id)
        if known is None:
            log.info("report concerns no known case; no resident message", report_id=payload.report_id)
            return _About()
        return _About(known.case_id, known.community_code)
    return _About(getattr(payload, "case_id", None), getattr(payload, "community_code", None))


def _plan_one(uow: UnitOfWork, event: CloudEvent, payload, message: domain.PlannedMessage,
              rules: NotificationRules, now: datetime, about: _About) -> str | None:
    rendered = rules.templates.render(message.kind, message.channel, message.context)
    delivery_id = new_id()
    document = template_code = template_params = None
    if message.channel == "sms" and rules.sms_templates is not None:
        sms = rules.sms_templates.request(message.kind, message.context)
        template_code = sms.template_code
        template_params = json.dumps(sms.params, ensure_ascii=False, separators=(",", ":"))
    if message.channel == "webhook":
        document = json.dumps({"delivery_id": delivery_id, "kind": message.kind, "subject": rendered.subject,
                               "text": rendered.body, "event": event.model_dump(mode="json")},
                              ensure_ascii=False, separators=(",", ":"))
    local = message.channel in LOCAL_CHANNELS
    inserted = uow.session.execute(insert_ignoring_duplicates(uow.session, Delivery).values(
        id=delivery_id, recipient=message.recipient.key, channel=message.channel,
        cause=domain.cause_of(event.dedupe_key(), message.kind), kind=message.kind,
        audience=message.recipient.audience, event_type=event.type, case_id=message.recipient.case_id or about.case_id,
        item_id=getattr(payload, "item_id", None), community_code=about.community_code,
        subject=rendered.subject, body=rendered.body, document=document, template_code=template_code,
        template_params=template_params, urgent=message.urgent,
        status="sent" if local else "pending", hold_reason=message.hold_reason, attempts=1 if local else 0,
        next_attempt_at=None if local else message.not_before, created_at=now, sent_at=now if local else None,
        address_hint=message.recipient.key if local else None,
    )).rowcount == 1
    if not inserted:
        return None
    if local:  # Core inserts, as for the delivery: nothing here is read back through the session
        uow.session.execute(insert(InboxMessage.__table__).values(
            id=new_id(), delivery_id=delivery_id, unit_code=message.recipient.unit_code,
            department_code=message.recipient.department_code, kind=message.kind, subject=rendered.subject,
            body=rendered.body, case_id=about.case_id,
            case_number=getattr(payload, "case_number", None), item_id=getattr(payload, "item_id", None),
            created_at=now))
        uow.session.execute(insert(DeliveryAttempt.__table__).values(
            delivery_id=delivery_id, number=1, started_at=now, finished_at=now, outcome=Outcome.SENT.value,
            detail="written to the staff inbox"))
    return delivery_id


# ── Sending ─────────────────────────────────────────────────────────────────────────────────────────


class ContactUnavailable(Exception):
    """Intake could not be asked for the resident's contact details just now (try again later)."""


class BatchLookupUnsupported(Exception):
    """This intake answers only the one-case question (an older release during a rolling upgrade)."""


@dataclass(frozen=True)
class Contact:
    """A resident's addresses, held only while a message is sent; never logged, never stored."""

    phone: str | None = field(default=None, repr=False)
    email: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Dispatcher:
    """What sending needs, built once at start and shared by the sweeps of one process."""

    senders: Mapping[str, Sender]
    webhooks: Mapping[str, WebhookSubscription]
    limiter: RateLimiter
    retry: RetryPolicy
    quiet_hours: QuietHours
    rng: domain.Random
    batch_size: int
    lease: timedelta


@dataclass(frozen=True)
class Claimed:
    id: str
    channel: str
    recipient: str
    audience: str
    kind: str
    case_id: str | None
    subject: str
    body: str
    document: str | None
    urgent: bool
    attempt: int
    claim_token: str
    template_code: str | None = None
    template_params: str | None = None       # JSON object


@dataclass
class DispatchReport:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0
    stale: int = 0
    held: int = 0            # sent, their results kept in memory until the database takes them

    def count(self, status: str) -> None:
        name = {"pending": "retrying"}.get(status, status)
        setattr(self, name, getattr(self, name) + 1)


class UnrecordedAttempts:
    """Sends whose results could not be written because the database was unreachable just then: kept in this
    process and written first thing at the next sweeps. Without this, every message a sweep had handed to the
    provider before a database outage was sent again once its lease lapsed (the fault suite counted them).
    They are lost only with the process itself; then the lease lapses and the message goes again, the
    at-least-once case docs/notifications.md names."""

    def __init__(self):
        self._held: list[Attempted] = []
        self._lock = threading.Lock()

    def hold(self, attempts: list[Attempted]) -> None:
        with self._lock:
            self._held.extend(attempts)

    def take(self) -> list[Attempted]:
        with self._lock:
            held, self._held = self._held, []
        return held

    def __len__(self) -> int:
        return len(self._held)


def dispatch_due(*, unit_of_work_factory: Callable[[], UnitOfWork], clock: Clock, dispatcher: Dispatcher,
                 contacts: Callable[[str, str], Contact | None],
                 run_all: Callable[[Callable, Iterable], Iterable] = map,
                 contacts_of_cases: Callable[[list[str], str], dict[str, Contact]] | None = None,
                 unrecorded: UnrecordedAttempts | None = None) -> DispatchReport:
    """Claim the due deliveries, send each, record the attempts. ``run_all`` maps the sends (a green
    pool's ``imap`` in the service, so a slow provider does not hold up the others); the attempts of the
    batch are then recorded in one transaction (one per message was most of the sweep's cost)."""
    report = DispatchReport()
    if unrecorded is not None:
        _record_or_hold(unit_of_work_factory, unrecorded.take(), dispatcher=dispatcher, report=report,
                        unrecorded=unrecorded)
    claimed = claim_due(unit_of_work_factory, now=clock.now(), dispatcher=dispatcher)
    report.claimed = len(claimed)
    if not claimed:
        return report
    lookups = _ContactCache(contacts)
    if contacts_of_cases is not None:  # one question to intake per purpose for the whole batch
        lookups.prefetch(claimed, contacts_of_cases)

    def send(delivery: Claimed) -> Attempted:
        started = clock.now()
        result, hint = attempt(delivery, dispatcher=dispatcher, contacts=lookups, now=started)
        return Attempted(delivery, result, hint, started, clock.now())

    _record_or_hold(unit_of_work_factory, list(run_all(send, claimed)), dispatcher=dispatcher, report=report,
                    unrecorded=unrecorded)
    return report


def _record_or_hold(unit_of_work_factory: Callable[[], UnitOfWork], attempts: list[Attempted], *,
                    dispatcher: Dispatcher, report: DispatchReport, unrecorded: UnrecordedAttempts | None) -> None:
    """Record the attempts; if the database cannot be reached, keep them for the next sweep (and stop this
    one: nothing more can be claimed) instead of losing what was sent."""
    if not attempts:
        return
    try:
        statuses = record_attempts(unit_of_work_factory, attempts, dispatcher=dispatcher)
    except Exception as exc:
        if unrecorded is None or not is_outage(exc):
            raise
        unrecorded.hold(attempts)
        report.held = len(unrecorded)
        log.warning("database unreachable: keeping the results of the sends to record at the next sweep",
                    held=report.held, error=type(exc).__name__)
        raise
    for status in statuses:
        report.count(status)


def claim_due(unit_of_work_factory: Callable[[], UnitOfWork], *, now: datetime,
              dispatcher: Dispatcher) -> list[Claimed]:
    """Take due deliveries out of other sweeps' reach for the lease, within each provider's rate limit.

    On PostgreSQL the rows are selected ``FOR UPDATE SKIP LOCKED``, so replicas sweeping at the same
    moment claim different rows; once committed, the moved ``next_attempt_at`` keeps them claimed.
    """
    claimed: list[Claimed] = []
    with unit_of_work_factory() as uow:
        for channel in dispatcher.senders:
            allowed = dispatcher.limiter.take(channel, dispatcher.batch_size, now.timestamp())
            if allowed == 0:
                continue
            query = (select(Delivery)
                     .where(Delivery.status == "pending", Delivery.channel == channel,
                            Delivery.next_attempt_at <= now)
                     .order_by(Delivery.next_attempt_at)
                     .limit(allowed))
            if is_postgres(uow.session.get_bind()):
                query = query.with_for_update(skip_locked=True)
            rows = uow.session.scalars(query).all()
            dispatcher.limiter.give_back(channel, allowed - len(rows))
            for row in rows:
                row.attempts += 1
                row.claim_token = new_id()
                row.next_attempt_at = now + dispatcher.lease
                claimed.append(Claimed(id=row.id, channel=row.channel, recipient=row.recipient,
                                       audience=row.audience, kind=row.kind, case_id=row.case_id,
                                       subject=row.subject, body=row.body, document=row.document,
                                       urgent=row.urgent, attempt=row.attempts, claim_token=row.claim_token,
                                       template_code=row.template_code, template_params=row.template_params))
        uow.commit()
    return claimed


class _ContactCache:
    """One question to intake per case, purpose and sweep, however many messages of the case are sent at
    once: the first sender asks, the others wait for its answer (or its failure)."""

    def __init__(self, contacts: Callable[[str, str], Contact | None]):
        self._contacts = contacts
        self._answers: dict[tuple[str, str], Contact | None | ContactUnavailable] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}

    def prefetch(self, claimed: list[Claimed], contacts_of_cases: Callable[[list[str], str], dict[str, Contact]]):
        """Ask once per purpose for every resident message of the batch (a case intake does not hold is
        answered None, as the single question would; a failure is every one's answer, as it would be)."""
        wanted: dict[str, set[str]] = {}
        for delivery in claimed:
            if delivery.audience == "resident" and delivery.channel in ("sms", "email"):
                wanted.setdefault(delivery.channel, set()).add(delivery.recipient.partition(":")[2])
        for purpose, case_ids in wanted.items():
            try:
                answers = contacts_of_cases(sorted(case_ids), purpose)
            except BatchLookupUnsupported:
                return  # each send asks the one-case question, as before
            except ContactUnavailable as exc:
                answers = exc
            for case_id in case_ids:
                self._answers[(case_id, purpose)] = (answers if isinstance(answers, ContactUnavailable)
                                                     else answers.get(case_id))

    def __call__(self, case_id: str, purpose: str) -> Contact | None:
        key = (case_id, purpose)
        with self._locks.setdefault(key, threading.Lock()):
            if key not in self._answers:
                try:
                    self._answers[key] = self._contacts(case_id, purpose)
                except ContactUnavailable as exc:
                    self._answers[key] = exc
        answer = self._answers[key]
        if isinstance(answer, ContactUnavailable):
            raise answer
        return answer


def attempt(delivery: Claimed, *, dispatcher: Dispatcher, contacts: Callable[[str, str], Contact | None],
            now: datetime) -> tuple[SendResult, str | None]:
    """One try at one delivery: find the address, send. Returns the result and a masked address hint."""
    try:
        to, secrets = _address(delivery, dispatcher=dispatcher, contacts=contacts)
    except _NoAddress as missing:
        return missing.result, None
    hint = domain.address_hint(delivery.channel, to)
    message = OutgoingMessage(delivery_id=delivery.id, to=to, subject=delivery.subject, body=delivery.body,
                              sent_at=now, document=delivery.document, secrets=secrets,
                              template_code=delivery.template_code, attempt=delivery.attempt,
                              template_params=json.loads(delivery.template_params or "null"))
    try:
        return dispatcher.senders[delivery.channel].send(message), hint
    except Exception as exc:  # noqa: BLE001 - an adapter bug must not stop the sweep; the text may hold an address
        log.error("channel adapter raised", delivery_id=delivery.id, channel=delivery.channel,
                  error=type(exc).__name__)
        return SendResult(Outcome.TRANSIENT, f"adapter error ({type(exc).__name__})"), hint


class _NoAddress(Exception):
    def __init__(self, result: SendResult):
        self.result = result


def _address(delivery: Claimed, *, dispatcher: Dispatcher,
             contacts: Callable[[str, str], Contact | None]) -> tuple[str, tuple[str, ...]]:
    if delivery.audience == "resident" and delivery.channel in ("sms", "email"):
        try:
            # Intake answers only the detail this channel needs: the phone for an SMS, the e-mail for an e-mail.
            contact = contacts(delivery.recipient.partition(":")[2], delivery.channel)  # resident:<case id>
        except ContactUnavailable as exc:
            raise _NoAddress(SendResult(Outcome.TRANSIENT, f"contact details unavailable: {exc}")) from None
        if contact is None:
            raise _NoAddress(SendResult(Outcome.PERMANENT, "intake has no applicant for this case"))
        if delivery.channel == "sms":
            if not contact.phone:
                raise _NoAddress(SendResult(Outcome.PERMANENT, "no phone number on record"))
            return contact.phone, ()
        if delivery.channel == "email":
            if not contact.email:
                raise _NoAddress(SendResult(Outcome.SKIPPED, "no email address on record"))
            return contact.email, ()
    if delivery.channel == "webhook":
        name = delivery.recipient.partition(":")[2]
        hook = dispatcher.webhooks.get(name)
        if hook is None:
            raise _NoAddress(SendResult(Outcome.PERMANENT, f"webhook {name} is no longer configured"))
        return hook.url, hook.secrets
    raise _NoAddress(SendResult(Outcome.PERMANENT, f"no address for {delivery.audience} on {delivery.channel}"))


@dataclass(frozen=True)
class Attempted:
    """One send of a claimed delivery, to be recorded."""

    delivery: Claimed
    result: SendResult
    hint: str | None           # the masked address it went to
    started: datetime
    finished: datetime


def record_attempts(unit_of_work_factory: Callable[[], UnitOfWork], attempts: list[Attempted], *,
                    dispatcher: Dispatcher) -> list[str]:
    """Write the attempts and the deliveries' new states in one transaction; returns each one's status
    ("stale" when the claim had expired and another sweep owns the row: only the attempt is recorded)."""
    deliveries = Delivery.__table__
    # Core statements on the connection, not the ORM's bulk update: its session synchronisation was most of
    # the cost, and these rows are not loaded in the session anyway.
    conditional_update = update(deliveries).where(deliveries.c.id == bindparam("delivery_id"),
                                                  deliveries.c.claim_token == bindparam("token"))
    planned = []
    for done in attempts:
        delivery, result = done.delivery, done.result
        detail = domain.scrub(result.detail, 500)
        state = domain.after_attempt(result, attempt=delivery.attempt, now=done.finished, policy=dispatcher.retry,
                                     rng=dispatcher.rng, channel=delivery.channel, audience=delivery.audience,
                                     urgent=delivery.urgent, quiet_hours=dispatcher.quiet_hours)
        values = dict(status=state.status, next_attempt_at=state.next_attempt_at, hold_reason=state.hold_reason,
                      last_error=domain.scrub(state.error, 500) if state.error else None, claim_token=None)
        if done.hint:
            values["address_hint"] = done.hint
        if state.status == "sent":
            values["sent_at"] = done.finished
        planned.append((done, detail, state, values))
    statuses = []
    with unit_of_work_factory() as uow:
        connection = uow.session.connection()
        connection.execute(insert(DeliveryAttempt.__table__), [
            dict(delivery_id=done.delivery.id, number=done.delivery.attempt, started_at=done.started,
                 finished_at=done.finished, outcome=done.result.outcome.value, detail=detail or None,
                 provider_ref=done.result.provider_ref) for done, detail, _, _ in planned])
        for done, _, state, values in planned:
            changed = connection.execute(conditional_update.values(**values),
                                         {"delivery_id": done.delivery.id, "token": done.delivery.claim_token}).rowcount
            statuses.append(state.status if changed == 1 else "stale")
        uow.commit()
    for (done, detail, state, _), status in zip(planned, statuses, strict=True):
        delivery = done.delivery
        fields = dict(delivery_id=delivery.id, case_id=delivery.case_id, channel=delivery.channel,
                      kind=delivery.kind, attempt=delivery.attempt, outcome=done.result.outcome.value)
        if status == "sent":
            log.info("notification sent", **fields)
        elif status == "pending":
            log.warning("notification failed; will retry", **fields, detail=detail, retry_at=state.next_attempt_at)
        elif status == "stale":
            log.warning("claim expired before the attempt was recorded; another sweep owns the delivery", **fields)
        else:
            log.warning(f"notification {status}", **fields, detail=detail)
    return statuses


# ── Staff queries ───────────────────────────────────────────────────────────────────────────────────


class Refused(Refusal):
    def __init__(self, status: int, reason: str, message: str):
        super().__init__(reason, message, status=status)


def _require_staff(principal: Principal) -> None:
    if principal.kind not in ("staff", "department"):
        raise Refused(403, "staff_only", "only staff and department systems may read notifications")


def units_in_scope(catalogue: Catalogue, scope: str) -> list[str]:
    return [code for code in catalogue.units if catalogue.is_within(code, scope)]


def inbox(principal: Principal, *, unit: str | None, limit: int, offset: int, unit_of_work: UnitOfWork,
          catalogue: Catalogue) -> tuple[list[InboxEntry], int]:
    """The inbox of the caller's unit and the units below it (or of one of them, ``unit``), newest first.
    A department system sees its own department's messages only; a 办不成事 specialist sees the reports
    assigned to them, and staff and departments do not see those."""
    if principal.kind != "specialist":
        _require_staff(principal)
    scope = principal.unit_code
    if unit is not None:
        if unit not in catalogue.units:
            raise Refused(422, "unknown_unit", "no unit has that code")
        if not catalogue.is_within(unit, principal.unit_code):
            raise Refused(403, "unit_forbidden", "that unit is outside your jurisdiction")
        scope = unit
    conditions = [InboxMessage.unit_code.in_(units_in_scope(catalogue, scope))]
    if principal.kind == "specialist":  # each inbox row joins its delivery (by primary key) for the recipient
        conditions += [Delivery.audience == "specialist", Delivery.recipient == f"specialist:{principal.name}"]
    else:
        conditions.append(Delivery.audience != "specialist")
    if principal.kind == "department":
        if principal.department is None:
            return [], 0  # a department token that names no department sees nothing, not everything
        conditions.append(InboxMessage.department_code == principal.department)
    with unit_of_work as uow:
        joined = InboxMessage.__table__.join(Delivery.__table__, Delivery.id == InboxMessage.delivery_id)
        total = uow.session.scalar(select(func.count()).select_from(joined).where(*conditions))
        rows = uow.session.scalars(select(InboxMessage).select_from(joined).where(*conditions)
                                   .order_by(InboxMessage.created_at.desc(), InboxMessage.id)
                                   .limit(limit).offset(offset)).all()
        return [InboxEntry.model_validate(row, from_attributes=True) for row in rows], total


def delivery_log(principal: Principal, case_id: str, *, unit_of_work: UnitOfWork,
                 catalogue: Catalogue) -> list[DeliveryView]:
    """Every delivery of a case with its attempts, for staff whose jurisdiction holds the case's community (so
    every unit its items can be placed at: the community's own line).

    Staff only: the log holds what the resident was told by SMS and e-mail. A department system reads its own
    messages in the inbox and through its webhooks, never a resident's; a specialist reads the reports assigned
    to them in the inbox."""
    if principal.kind != "staff":
        raise Refused(403, "staff_only", "the delivery log is for staff of the case's jurisdiction; a department "
                      "system reads its own messages in /v1/inbox")
    with unit_of_work as uow:
        deliveries = uow.session.scalars(select(Delivery).where(Delivery.case_id == case_id)
                                         .order_by(Delivery.created_at, Delivery.kind, Delivery.channel)).all()
        if not deliveries:
            raise Refused(404, "unknown_case", "no notification was planned for that case")
        # Every community the case's deliveries name (a 督办 or 吹哨 message may name none) must be the caller's.
        communities = {d.community_code for d in deliveries if d.community_code}
        if not communities or not all(community in catalogue.units and catalogue.is_within(
                community, principal.unit_code) for community in communities):
            raise Refused(403, "case_forbidden", "the case belongs to a community outside your jurisdiction")
        attempts = uow.session.scalars(select(DeliveryAttempt)
                                       .where(DeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
                                       .order_by(DeliveryAttempt.seq)).all()
        by_delivery: dict[str, list[AttemptView]] = {}
        for row in attempts:
            by_delivery.setdefault(row.delivery_id, []).append(AttemptView.model_validate(row, from_attributes=True))
        return [DeliveryView.model_validate(
            {**{name: getattr(delivery, name) for name in DeliveryView.model_fields if name != "attempts"},
             "attempts": by_delivery.get(delivery.id, [])}) for delivery in deliveries]
