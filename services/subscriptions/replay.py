"""Replay from the event log (``shared.event_log``, the super stream partitioned by district): a subscriber asks
for its subscription's scope again from a time or from offsets, after downtime or to seed a new system.

**Asking** (``request_replay``): the caller must own the subscription, and its mandate is computed again from its
CURRENT token or person assertion, not taken from the subscription: a caller that no longer subscribes at all is
refused (403 ``subscriber_forbidden``), one whose mandate no longer covers the subscription's scope (moved to
another unit or department, narrowed) is refused (403 ``mandate_changed``), and the subscription's filters are
checked against it again (403 ``outside_mandate``). A start older than the log's retention
(``SANJI_EVENT_LOG_MAX_AGE``) or in the future is refused (422 ``replay_out_of_range``), as is a start offset in
another district's partition (403 ``outside_mandate``) and a second replay of a subscription while one runs
(409 ``replay_in_progress``). Nothing is written on a refusal. Otherwise a replay row is queued (202) and its
status and progress are read with ``GET /v1/subscriptions/{id}/replays/{replay_id}``.

**Running** (``claim_replay``, ``run_replay``; the replay loop of ``dependencies.Sinks``, on every replica): a
queued replay, or a running one whose lease lapsed (its replica died), is claimed ``FOR UPDATE SKIP LOCKED`` with a
lease. It reads the partition of the subscription's district from the start asked for (or from the positions a
lapsed run had reached) to the end of the log as it was when the read began, keeps the events inside both the
mandate it was asked under and the subscription's scope and filters, and in one transaction per batch writes what
the live consumer writes (``matching.record_matches``: the event once, a pending delivery) and queues again the
subscription's deliveries of those events that were already handed over or given up. So replayed events go out
through the same delivery path with the same idempotency id: a webhook gets the same ``webhook-id``, a stream gets
the event appended again with the same CloudEvent id (consumers dedupe on it). Each batch also records the
progress and renews the lease, and stops if another replica took the replay over.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from pydantic import ValidationError
from sqlalchemy import select, update

from services.subscriptions import filters as dialect
from services.subscriptions.adapters.orm import Delivery, Replay, Subscription
from services.subscriptions.mandate import EventTypes, Mandate, check_filters, mandate_of
from services.subscriptions.matching import record_matches
from services.subscriptions.schemas import ReplayRequest, ReplayView
from shared.auth import Principal
from shared.clock import new_id
from shared.db import is_postgres
from shared.events import CloudEvent
from shared.refusal import Refusal

log = structlog.get_logger(__name__)

UNFINISHED = ("queued", "running")
PARTITION_PREFIX = "sanji.event-log-"   # shared.event_log.partition_name; the log's streams are named so
# RabbitMQ's x-max-age units. A month and a year are not fixed lengths; the broker counts them as 30 and 365 days.
_MAX_AGE = re.compile(r"([1-9][0-9]*)([YMDhms])")
_UNIT = {"Y": timedelta(days=365), "M": timedelta(days=30), "D": timedelta(days=1), "h": timedelta(hours=1),
         "m": timedelta(minutes=1), "s": timedelta(seconds=1)}


def retention_of(max_age: str) -> timedelta:
    """How far back the log reaches, from its ``x-max-age`` (``30D``, ``720h``, ``1Y``)."""
    match = _MAX_AGE.fullmatch(max_age.strip())
    if match is None:
        raise ValueError(f"not a RabbitMQ max-age: {max_age!r}")
    return int(match.group(1)) * _UNIT[match.group(2)]


def stored_mandate(subscription: Subscription) -> Mandate:
    return Mandate(subscription.scope_kind, subscription.department, subscription.unit_code,
                   subscription.unit_prefix, subscription.district_code)


def check_mandate_still_covers(current: Mandate, stored: Mandate) -> None:
    """The caller's mandate now must still cover the scope the subscription was created under: the same
    department (or, for a supervisor, every department) and a jurisdiction that contains it."""
    department_ok = current.department is None or current.department == stored.department
    if current.kind != stored.kind or not department_ok or not stored.unit_prefix.startswith(current.unit_prefix):
        raise Refusal("mandate_changed", "your mandate no longer covers this subscription's scope, so it cannot "
                      "be replayed; subscribe again under your current mandate", status=403,
                      scope=current.as_scope(), subscription_scope=stored.as_scope())


def check_window(request: ReplayRequest, *, now: datetime, retention: timedelta) -> None:
    if request.from_time is not None:
        if request.from_time > now:
            raise Refusal("replay_out_of_range", "from_time is in the future", status=422, attribute="from_time")
        oldest = now - retention
        if request.from_time < oldest:
            raise Refusal("replay_out_of_range", f"from_time is older than the event log keeps (it keeps "
                          f"{retention.days} days: from {oldest.isoformat()})", status=422, attribute="from_time",
                          oldest=oldest.isoformat())
    if request.until is not None and request.until <= now - retention:
        raise Refusal("replay_out_of_range", "until is before anything the event log keeps", status=422,
                      attribute="until")


def partition_offsets(from_offsets: dict[str, int] | None, mandate: Mandate) -> dict[str, int] | None:
    """``from_offsets`` keyed by partition name; only the partition of the subscription's district."""
    if from_offsets is None:
        return None
    own = PARTITION_PREFIX + mandate.district_code
    offsets = {}
    for name, offset in from_offsets.items():
        partition = name if name.startswith(PARTITION_PREFIX) else PARTITION_PREFIX + name
        if partition != own:
            raise Refusal("outside_mandate", f"from_offsets names {name!r}: this subscription replays only "
                          f"{own}", status=403, attribute="from_offsets", scope=mandate.as_scope())
        offsets[partition] = offset
    return offsets


def _view(row: Replay) -> ReplayView:
    return ReplayView(id=row.id, subscription_id=row.subscription_id, status=row.status, from_time=row.from_time,
                      from_offsets=json.loads(row.from_offsets) if row.from_offsets else None, until=row.until,
                      requested_at=row.requested_at, started_at=row.started_at, finished_at=row.finished_at,
                      events_read=row.events_read, events_matched=row.events_matched,
                      positions=json.loads(row.positions) if row.positions else {}, error=row.error)


def request_replay(principal: Principal, subscription_id: str, request: ReplayRequest, *, unit_of_work,
                   known: EventTypes, retention: timedelta, now: datetime) -> ReplayView:
    current = mandate_of(principal)   # 403 subscriber_forbidden: no mandate any more
    check_window(request, now=now, retention=retention)
    with unit_of_work as uow:
        query = select(Subscription).where(Subscription.id == subscription_id, Subscription.owner == principal.name,
                                           Subscription.status != "deleted").with_for_update()
        subscription = uow.session.scalars(query).first()
        if subscription is None:
            raise Refusal("not_found", "you have no subscription with that id", status=404)
        stored = stored_mandate(subscription)
        check_mandate_still_covers(current, stored)
        check_filters(current, dialect.parse_filters(json.loads(subscription.filters)), known)
        offsets = partition_offsets(request.from_offsets, stored)
        running = uow.session.scalar(select(Replay.id).where(Replay.subscription_id == subscription_id,
                                                             Replay.status.in_(UNFINISHED)).limit(1))
        if running is not None:
            raise Refusal("replay_in_progress", f"replay {running} of this subscription has not finished; follow it "
                          "or wait for it", status=409, replay_id=running)
        row = Replay(id=new_id(), subscription_id=subscription_id, requested_by=principal.actor,
                     mandate=json.dumps(current.as_scope()), from_time=request.from_time,
                     from_offsets=json.dumps(offsets) if offsets is not None else None, until=request.until,
                     status="queued", positions=None, events_read=0, events_matched=0, error=None, claim_token=None,
                     lease_until=None, requested_at=now, started_at=None, finished_at=None, updated_at=now)
        uow.session.add(row)
        uow.commit()
        return _view(row)


def get_replay(principal: Principal, subscription_id: str, replay_id: str, *, unit_of_work) -> ReplayView:
    with unit_of_work as uow:
        row = uow.session.execute(select(Replay).join(Subscription, Subscription.id == Replay.subscription_id).where(
            Replay.id == replay_id, Replay.subscription_id == subscription_id,
            Subscription.owner == principal.name)).scalars().first()
        if row is None:
            raise Refusal("not_found", "this subscription of yours has no replay with that id", status=404)
        return _view(row)


# ── running ──────────────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class ClaimedReplay:
    id: str
    claim_token: str
    subscription_id: str
    district_code: str
    mandates: tuple[Mandate, ...]      # the caller's when it asked, and the subscription's scope: both must cover
    expressions: tuple
    since: datetime | None
    offsets: dict[str, int] | None      # where to start (the positions reached, when taking a lapsed run over)
    until: datetime | None
    events_read: int
    events_matched: int

    def wants(self, attributes: dict) -> bool:
        return all(mandate.covers(attributes) for mandate in self.mandates) \
            and dialect.matches(self.expressions, attributes)


def claim_replay(unit_of_work_factory, *, now: datetime, lease: timedelta) -> ClaimedReplay | None:
    with unit_of_work_factory() as uow:
        query = (select(Replay, Subscription).join(Subscription, Subscription.id == Replay.subscription_id)
                 .where((Replay.status == "queued") | ((Replay.status == "running") & (Replay.lease_until <= now)))
                 .order_by(Replay.requested_at).limit(1))
        if is_postgres(uow.session.get_bind()):
            query = query.with_for_update(skip_locked=True, of=Replay)
        found = uow.session.execute(query).first()
        if found is None:
            return None
        replay, subscription = found
        if subscription.status == "deleted":
            replay.status, replay.error, replay.finished_at, replay.updated_at = \
                "failed", "the subscription was deleted", now, now
            uow.commit()
            return None
        token = new_id()
        replay.status, replay.claim_token, replay.lease_until, replay.updated_at = "running", token, now + lease, now
        replay.started_at = replay.started_at or now
        asked = json.loads(replay.mandate)
        positions = json.loads(replay.positions) if replay.positions else None
        offsets = positions or (json.loads(replay.from_offsets) if replay.from_offsets else None)
        claimed = ClaimedReplay(
            id=replay.id, claim_token=token, subscription_id=subscription.id,
            district_code=subscription.district_code,
            mandates=(Mandate(asked["kind"], asked["department"], asked["unit_code"], asked["unit_prefix"],
                              asked["district_code"]), stored_mandate(subscription)),
            expressions=dialect.parse_filters(json.loads(subscription.filters)), since=replay.from_time,
            offsets=offsets, until=replay.until, events_read=replay.events_read,
            events_matched=replay.events_matched)
        uow.commit()
        return claimed


ReadLog = Callable[..., Iterator]   # shared.event_log.read_event_log bound to a connection


def run_replay(claimed: ClaimedReplay, *, unit_of_work_factory, read_log: ReadLog, now: Callable[[], datetime],
               lease: timedelta, batch_size: int, on_queued: Callable[[], None] = lambda: None) -> str:
    """Read the log and queue the matches, batch by batch; the replay's final status (or ``lost``: another replica
    took it over)."""
    progress = {"read": claimed.events_read, "matched": claimed.events_matched,
                "positions": dict(claimed.offsets or {})}
    batch: list = []
    try:
        entries = read_log(districts=[claimed.district_code], since=claimed.since, from_offsets=claimed.offsets,
                           until=claimed.until)
        for entry in entries:
            batch.append(entry)
            if len(batch) >= batch_size:
                if not _queue_batch(claimed, batch, progress, unit_of_work_factory, now=now(), lease=lease):
                    return "lost"
                batch = []
                on_queued()
        if not _queue_batch(claimed, batch, progress, unit_of_work_factory, now=now(), lease=lease, final=True):
            return "lost"
        on_queued()
        return "done"
    except Exception as exc:  # noqa: BLE001 - a broker or log failure ends this run; the replay says why
        log.warning("replay failed", replay_id=claimed.id, error=type(exc).__name__, exc_info=True)
        with unit_of_work_factory() as uow:
            row = uow.session.get(Replay, claimed.id)
            if row is not None and row.claim_token == claimed.claim_token:
                at = now()
                row.status, row.error, row.finished_at, row.updated_at = \
                    "failed", f"reading the event log failed ({type(exc).__name__}); ask again", at, at
                row.claim_token, row.lease_until = None, None
                uow.commit()
        return "failed"


def _queue_batch(claimed: ClaimedReplay, batch: list, progress: dict, unit_of_work_factory, *, now: datetime,
                 lease: timedelta, final: bool = False) -> bool:
    with unit_of_work_factory() as uow:
        query = select(Replay).where(Replay.id == claimed.id, Replay.claim_token == claimed.claim_token)
        if is_postgres(uow.session.get_bind()):
            query = query.with_for_update()
        row = uow.session.scalars(query).first()
        if row is None or row.status != "running":
            return False
        matched_ids = []
        for entry in batch:
            progress["read"] += 1
            progress["positions"][entry.partition] = entry.offset + 1
            try:
                event = CloudEvent.model_validate(entry.event)
            except ValidationError:
                log.warning("skipping an event log entry that is not a CloudEvent", replay_id=claimed.id,
                            partition=entry.partition, offset=entry.offset)
                continue
            document = event.model_dump(mode="json")
            attributes = dialect.event_attributes(document)
            if not claimed.wants(attributes):
                continue
            record_matches(uow.session, event, document, attributes, [claimed.subscription_id], now=now)
            matched_ids.append(event.id)
        if matched_ids:
            # Already handed over (or given up): queued again, the same id, as a redelivery does. Those still on
            # their way (pending, retrying) are left as they are.
            uow.session.execute(update(Delivery).where(
                Delivery.subscription_id == claimed.subscription_id, Delivery.event_id.in_(matched_ids),
                Delivery.status.in_(("delivered", "given_up"))).values(
                status="pending", attempts=0, next_attempt_at=now, first_attempt_at=None, claim_token=None,
                delivered_at=None))
        progress["matched"] += len(matched_ids)
        row.events_read, row.events_matched = progress["read"], progress["matched"]
        row.positions = json.dumps(progress["positions"])
        row.updated_at = now
        if final:
            row.status, row.finished_at, row.claim_token, row.lease_until = "done", now, None, None
        else:
            row.lease_until = now + lease
        uow.commit()
    return True
