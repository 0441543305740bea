"""The subscriptions API's rules: create, list, change, delete, rotate secrets, the failure view, redelivery and
the disclosure audit. Every refusal is a ``Refusal`` raised before anything is written.

A subscriber sees only its own subscriptions (another's id answers 404, as if it did not exist). The mandate is
taken from the caller at creation and kept with the subscription (``scope``); a change of filters is checked
against the caller's mandate again.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from services.subscriptions import filters as dialect
from services.subscriptions.adapters.orm import (
    Attempt,
    Delivery,
    Disclosure,
    MatchedEvent,
    Revision,
    SigningSecret,
    Subscription,
)
from services.subscriptions.adapters.streams import SinkUnavailable, Streams
from services.subscriptions.mandate import EventTypes, Mandate, check_filters, jurisdiction_prefix, mandate_of
from services.subscriptions.schemas import (
    AttemptView,
    DeliveryPage,
    DeliveryView,
    DisclosureReport,
    DisclosureView,
    RedeliveryRequest,
    RedeliveryResult,
    Scope,
    SecretRotation,
    SinkView,
    SubscriptionChange,
    SubscriptionRequest,
    SubscriptionView,
)
from services.subscriptions.webhook_urls import Resolver, check_webhook_url
from shared.auth import Principal
from shared.bus import subscription_stream_name
from shared.clock import new_id
from shared.outbox import insert_ignoring_duplicates
from shared.refusal import Refusal
from shared.topology import SUBSCRIPTIONS_EXCHANGE_NAME
from shared.webhooks import new_webhook_secret

DELIVERY_STATUSES = ("pending", "retrying", "delivered", "given_up")
# The failure view by default: what has not been handed over.
UNDELIVERED = ("pending", "retrying", "given_up")
FAILED_ATTEMPTS_SHOWN = 20


@dataclass(frozen=True)
class Registry:
    """What the API's rules need besides a unit of work: the known event types, the broker, the name resolver."""

    known: EventTypes
    streams: Streams
    resolve: Resolver
    production: bool
    stream_max_age: str
    secret_grace: timedelta
    broker_user_prefix: str = ""


def _parse(document: list, mandate: Mandate, known: EventTypes) -> tuple:
    try:
        expressions = dialect.parse_filters(document)
    except dialect.FilterInvalid as exc:
        raise Refusal("invalid_filter", f"the filter is not valid: {exc.problem}", status=400, where=exc.where) \
            from None
    check_filters(mandate, expressions, known)
    return expressions


def bump_revision(session) -> None:
    """Tell every replica's consumer to reload the subscriptions (``matching.ActiveSubscriptions``)."""
    bumped = session.execute(update(Revision).where(Revision.id == 1).values(revision=Revision.revision + 1))
    if bumped.rowcount == 0:   # the row the migration inserted is gone (a table emptied by hand): put it back
        session.execute(insert_ignoring_duplicates(session, Revision).values(id=1, revision=1))


def _view(row: Subscription, secret: str | None = None) -> SubscriptionView:
    if row.sink_type == "queue":
        sink = SinkView(type="queue", stream=row.stream_name, broker_user=row.broker_user,
                        exchange=SUBSCRIPTIONS_EXCHANGE_NAME)
    else:
        sink = SinkView(type="webhook", url=row.webhook_url)
    return SubscriptionView(
        id=row.id, status=row.status, status_reason=row.status_reason, sink=sink, filters=json.loads(row.filters),
        description=row.description,
        scope=Scope(kind=row.scope_kind, department=row.department, unit_code=row.unit_code,
                    unit_prefix=row.unit_prefix, district_code=row.district_code),
        created_at=row.created_at, updated_at=row.updated_at, failing_since=row.failing_since, secret=secret)


def create(principal: Principal, request: SubscriptionRequest, *, unit_of_work, registry: Registry,
           now: datetime) -> SubscriptionView:
    mandate = mandate_of(principal)
    expressions = _parse(request.filters, mandate, registry.known)
    subscription_id = new_id()
    stream = broker_user = url = secret = None
    if request.sink.type == "queue":
        if principal.kind != "department" or principal.person:
            raise Refusal("queue_sink_unavailable", "only a department system (its own token, with its own broker "
                          "user) consumes a stream; subscribe with a webhook instead", status=422)
        broker_user = registry.broker_user_prefix + principal.name   # shared.bus.department_desks names it so
        stream = subscription_stream_name(broker_user, subscription_id)
    else:
        url = check_webhook_url(request.sink.url, production=registry.production, resolve=registry.resolve)
        secret = new_webhook_secret()
    row = Subscription(
        id=subscription_id, owner=principal.name, owner_kind=principal.kind, scope_kind=mandate.kind,
        department=mandate.department, unit_code=mandate.unit_code, unit_prefix=mandate.unit_prefix,
        district_code=mandate.district_code, sink_type=request.sink.type, webhook_url=url, stream_name=stream,
        broker_user=broker_user, filters=json.dumps(dialect.to_document(expressions), ensure_ascii=False),
        description=request.description, status="active", status_reason=None, failing_since=None,
        created_at=now, updated_at=now)
    if stream is not None:
        try:
            registry.streams.declare(stream, subscription_id, registry.stream_max_age)
        except SinkUnavailable as exc:
            raise Refusal("sink_unavailable", f"{exc}; nothing was created, try again", status=503) from None
    try:
        with unit_of_work as uow:
            uow.session.add(row)
            if secret is not None:
                uow.session.flush()
                uow.session.add(SigningSecret(subscription_id=subscription_id, secret=secret, created_at=now,
                                              expires_at=None))
            bump_revision(uow.session)
            uow.commit()
    except Exception:
        if stream is not None:  # no subscription: no stream either
            try:
                registry.streams.delete(stream)
            except SinkUnavailable:
                pass
        raise
    return _view(row, secret=secret)


def _own(session, principal: Principal, subscription_id: str, *, for_update: bool = False) -> Subscription:
    query = select(Subscription).where(Subscription.id == subscription_id, Subscription.owner == principal.name,
                                       Subscription.status != "deleted")
    if for_update:
        query = query.with_for_update()
    row = session.scalars(query).first()
    if row is None:
        raise Refusal("not_found", "you have no subscription with that id", status=404)
    return row


def list_own(principal: Principal, *, unit_of_work) -> list[SubscriptionView]:
    with unit_of_work as uow:
        rows = uow.session.scalars(select(Subscription).where(Subscription.owner == principal.name,
                                                              Subscription.status != "deleted")
                                   .order_by(Subscription.created_at, Subscription.id)).all()
        return [_view(row) for row in rows]


def get(principal: Principal, subscription_id: str, *, unit_of_work) -> SubscriptionView:
    with unit_of_work as uow:
        return _view(_own(uow.session, principal, subscription_id))


def change(principal: Principal, subscription_id: str, request: SubscriptionChange, *, unit_of_work,
           registry: Registry, now: datetime) -> SubscriptionView:
    if request.status is None and request.filters is None and request.description is None:
        raise Refusal("validation_failed", "say what to change: status, filters or description", status=422)
    expressions = None
    if request.filters is not None:
        expressions = _parse(request.filters, mandate_of(principal), registry.known)
    with unit_of_work as uow:
        row = _own(uow.session, principal, subscription_id, for_update=True)
        if expressions is not None:
            row.filters = json.dumps(dialect.to_document(expressions), ensure_ascii=False)
        if request.description is not None:
            row.description = request.description
        if request.status is not None and request.status != row.status:
            if request.status == "active":
                # Resumed or re-enabled: what waited is due now, and the endpoint's failure count starts again.
                row.failing_since = None
                uow.session.execute(update(Delivery).where(
                    Delivery.subscription_id == row.id, Delivery.status.in_(("pending", "retrying")))
                    .values(next_attempt_at=now, claim_token=None))
            row.status, row.status_reason = request.status, None
        row.updated_at = now
        bump_revision(uow.session)
        uow.commit()
        return _view(row)


def delete(principal: Principal, subscription_id: str, *, unit_of_work, registry: Registry,
           now: datetime) -> dict:
    with unit_of_work as uow:
        row = _own(uow.session, principal, subscription_id)
        stream = row.stream_name
    if stream is not None:  # the stream first: a subscription that still exists can be deleted again
        try:
            registry.streams.delete(stream)
        except SinkUnavailable as exc:
            raise Refusal("sink_unavailable", f"{exc}; the subscription is unchanged, try again", status=503) \
                from None
    with unit_of_work as uow:
        row = _own(uow.session, principal, subscription_id, for_update=True)
        row.status, row.status_reason, row.updated_at = "deleted", "deleted by its owner", now
        bump_revision(uow.session)
        uow.commit()
    return {"id": subscription_id, "status": "deleted"}


def rotate_secret(principal: Principal, subscription_id: str, *, unit_of_work, registry: Registry,
                  now: datetime) -> SecretRotation:
    with unit_of_work as uow:
        row = _own(uow.session, principal, subscription_id, for_update=True)
        if row.sink_type != "webhook":
            raise Refusal("not_a_webhook", "only a webhook subscription has signing secrets", status=409)
        valid_until = now + registry.secret_grace
        for old in uow.session.scalars(select(SigningSecret).where(SigningSecret.subscription_id == row.id)):
            if old.expires_at is None or old.expires_at > valid_until:
                old.expires_at = valid_until
        secret = new_webhook_secret()
        uow.session.add(SigningSecret(subscription_id=row.id, secret=secret, created_at=now, expires_at=None))
        row.updated_at = now
        uow.commit()
    return SecretRotation(subscription_id=subscription_id, secret=secret, previous_valid_until=valid_until)


def signing_secrets(session, subscription_id: str, now: datetime) -> tuple[str, ...]:
    """The secrets that sign a request now: the current one first, then those still in their grace period."""
    rows = session.scalars(select(SigningSecret).where(
        SigningSecret.subscription_id == subscription_id,
        (SigningSecret.expires_at.is_(None)) | (SigningSecret.expires_at > now))
        .order_by(SigningSecret.seq.desc())).all()
    return tuple(row.secret for row in rows)


def deliveries(principal: Principal, subscription_id: str, *, status: str | None, limit: int, offset: int,
               unit_of_work) -> DeliveryPage:
    if status is not None and status not in DELIVERY_STATUSES:
        raise Refusal("invalid_query", f"status is one of {', '.join(DELIVERY_STATUSES)}", status=400)
    with unit_of_work as uow:
        _own(uow.session, principal, subscription_id)
        counts = dict(uow.session.execute(select(Delivery.status, func.count()).where(
            Delivery.subscription_id == subscription_id).group_by(Delivery.status)).all())
        wanted = (status,) if status else UNDELIVERED
        where = (Delivery.subscription_id == subscription_id, Delivery.status.in_(wanted))
        total = uow.session.scalar(select(func.count()).select_from(Delivery).where(*where))
        rows = uow.session.execute(select(Delivery, MatchedEvent.event_type).join(
            MatchedEvent, MatchedEvent.event_id == Delivery.event_id).where(*where)
            .order_by(Delivery.seq).limit(limit).offset(offset)).all()
        attempts: dict[int, list[Attempt]] = {}
        if rows:
            for attempt in uow.session.scalars(select(Attempt).where(
                    Attempt.delivery_seq.in_([delivery.seq for delivery, _ in rows]), Attempt.outcome == "failed")
                    .order_by(Attempt.seq)):
                attempts.setdefault(attempt.delivery_seq, []).append(attempt)
        views = [DeliveryView(
            event_id=delivery.event_id, event_type=event_type, event_time=delivery.event_time, status=delivery.status,
            attempts=delivery.attempts, next_attempt_at=delivery.next_attempt_at,
            first_attempt_at=delivery.first_attempt_at, last_attempt_at=delivery.last_attempt_at,
            last_status_code=delivery.last_status_code, last_error=delivery.last_error,
            delivered_at=delivery.delivered_at,
            failed_attempts=[AttemptView(number=a.number, attempted_at=a.attempted_at, outcome=a.outcome,
                                         status_code=a.status_code, error=a.error, duration_ms=a.duration_ms)
                             for a in attempts.get(delivery.seq, [])[-FAILED_ATTEMPTS_SHOWN:]])
            for delivery, event_type in rows]
    return DeliveryPage(subscription_id=subscription_id, status=status, total=total or 0,
                        counts={name: int(counts.get(name, 0)) for name in DELIVERY_STATUSES}, deliveries=views)


def redeliver(principal: Principal, subscription_id: str, request: RedeliveryRequest, *, unit_of_work,
              now: datetime) -> RedeliveryResult:
    """Queue the subscription's deliveries of a time range (event time, from inclusive, to exclusive) or of some
    event ids again, whatever their state: the same ``webhook-id`` (the event id), so a receiver that had them
    dedupes. Only events this subscription matched: redelivery never widens what it was given."""
    with unit_of_work as uow:
        _own(uow.session, principal, subscription_id)
        where = [Delivery.subscription_id == subscription_id]
        unknown: list[str] = []
        if request.event_ids is not None:
            wanted = list(dict.fromkeys(request.event_ids))
            known = set(uow.session.scalars(select(Delivery.event_id).where(
                Delivery.subscription_id == subscription_id, Delivery.event_id.in_(wanted))))
            unknown = [event_id for event_id in wanted if event_id not in known]
            where.append(Delivery.event_id.in_(wanted))
        else:
            where += [Delivery.event_time >= request.from_, Delivery.event_time < request.to]
        result = uow.session.execute(update(Delivery).where(*where).values(
            status="pending", attempts=0, next_attempt_at=now, first_attempt_at=None, claim_token=None,
            delivered_at=None))
        uow.commit()
    return RedeliveryResult(subscription_id=subscription_id, redelivered=result.rowcount or 0,
                            unknown_event_ids=unknown)


def disclosures(principal: Principal, case_id: str, *, unit_of_work) -> DisclosureReport:
    """Who was handed events of a case, and when. Admins see every row; staff (supervisors) the rows of cases in
    their jurisdiction; a department system its own; nobody else anything."""
    query = select(Disclosure).where(Disclosure.case_id == case_id)
    if "admin" in principal.roles:
        pass
    elif principal.kind == "department":
        query = query.where(Disclosure.subscriber == principal.name)
    elif principal.kind == "staff":
        query = query.where(Disclosure.community_code.startswith(jurisdiction_prefix(principal.unit_code)))
    else:
        raise Refusal("disclosure_forbidden", "the disclosure audit is for supervisors, admins and the department "
                      "systems themselves", status=403)
    with unit_of_work as uow:
        rows = uow.session.scalars(query.order_by(Disclosure.seq)).all()
        return DisclosureReport(case_id=case_id, disclosures=[DisclosureView(
            subscriber=row.subscriber, subscriber_kind=row.subscriber_kind, department=row.department,
            subscription_id=row.subscription_id, sink=row.sink_type, event_id=row.event_id,
            event_type=row.event_type, disclosed_at=row.disclosed_at) for row in rows])


CSV_COLUMNS = ("case_id", "disclosed_at", "subscriber", "subscriber_kind", "department", "subscription_id", "sink",
               "event_type", "event_id")


def disclosures_csv(report: DisclosureReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in report.disclosures:
        writer.writerow((report.case_id, row.disclosed_at.isoformat(), row.subscriber, row.subscriber_kind,
                         row.department or "", row.subscription_id, row.sink, row.event_type, row.event_id))
    return out.getvalue()


Now = Callable[[], datetime]
