"""Every event on the bus against the subscriptions: in memory, then one transaction.

The consumer reads the revision counter (one row) in its transaction and reloads the subscriptions it matches
against only when a change was committed since (``ActiveSubscriptions``), so a subscription created, paused or
changed on any replica takes effect for the next event. For each event that matches, in ONE transaction: the
consumer's inbox row (a redelivered event is a no-op), the event once, and a delivery row per matching
subscription (unique on subscription and event). An event that matches nothing writes nothing (most events of a
city match no subscription). Disclosures are written later, when a delivery is handed over.

Paused and disabled subscriptions keep matching: their deliveries wait and go out when the owner resumes or
re-enables them. Deleted ones match nothing.

**Hand-off.** The deliveries to active webhooks are written already claimed (a claim token and a lease, as the
sweep's claim would leave them) and handed to the sender in memory, so a matched event goes out without the
sweep reading and claiming its rows again. A process that dies before sending leaves rows whose lease lapses:
the sweep of any replica takes them then (at least once, later). When the sender's hand-off queue is full the
rows are written pending instead, for the sweep.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import select

from services.subscriptions import filters as dialect
from services.subscriptions.adapters.orm import Delivery, MatchedEvent, Revision, Subscription
from services.subscriptions.delivery import WebhookJob
from services.subscriptions.mandate import Mandate
from shared.clock import new_id
from shared.events import CloudEvent
from shared.outbox import insert_ignoring_duplicates

log = structlog.get_logger(__name__)

CONSUMER = "subscriptions.match"


@dataclass(frozen=True)
class Candidate:
    id: str
    mandate: Mandate
    expressions: tuple
    sink_type: str = "webhook"
    status: str = "active"
    webhook_url: str | None = None

    @property
    def sends_now(self) -> bool:
        return self.sink_type == "webhook" and self.status == "active"

    def wants(self, attributes: dict) -> bool:
        return self.mandate.covers(attributes) and dialect.matches(self.expressions, attributes)


class ActiveSubscriptions:
    """The subscriptions to match against, reloaded when the revision counter moved."""

    def __init__(self):
        self._lock = threading.Lock()
        self._revision: int | None = None
        self._candidates: tuple[Candidate, ...] = ()

    def current(self, session) -> tuple[Candidate, ...]:
        revision = session.scalar(select(Revision.revision).where(Revision.id == 1))
        with self._lock:
            if revision is not None and revision == self._revision:
                return self._candidates
        candidates = tuple(load_candidates(session))
        with self._lock:
            self._revision, self._candidates = revision, candidates
        return candidates

    def sending_now(self) -> frozenset[str]:
        """The ids of the active webhook subscriptions as last loaded (no database read)."""
        with self._lock:
            return frozenset(candidate.id for candidate in self._candidates if candidate.sends_now)


def load_candidates(session):
    for row in session.scalars(select(Subscription).where(Subscription.status != "deleted")):
        try:
            expressions = dialect.parse_filters(json.loads(row.filters))
        except (ValueError, dialect.FilterInvalid):  # stored after checking: only a hand-edited row gets here
            log.error("a stored subscription's filters do not parse; it matches nothing", subscription_id=row.id)
            continue
        yield Candidate(row.id, Mandate(row.scope_kind, row.department, row.unit_code, row.unit_prefix,
                                        row.district_code), expressions, row.sink_type, row.status, row.webhook_url)


def handle_event(event: CloudEvent, *, unit_of_work, active: ActiveSubscriptions,
                 lease: timedelta | None = None) -> dict:
    """Match and record one event. With a ``lease``, the deliveries to active webhooks are claimed as they are
    written and come back as ``webhook_jobs`` for the sender (``delivery.send_webhooks``)."""
    document = event.model_dump(mode="json")
    attributes = dialect.event_attributes(document)
    with unit_of_work as uow:
        matched = [candidate for candidate in active.current(uow.session) if candidate.wants(attributes)]
        if not matched:
            # Nothing to write, so nothing to dedupe: a redelivery of this event matches nothing either (or a
            # subscription made since, which receives it as it would any event after its creation).
            return {"outcome": "unmatched", "subscriptions": 0}
        if not uow.claim_message(CONSUMER, event):
            return {"outcome": "duplicate"}
        now = uow.clock.now()
        send_now = [candidate for candidate in matched if candidate.sends_now] if lease is not None else []
        stored = record_matches(uow.session, event, document, attributes,
                                [candidate.id for candidate in matched if candidate not in send_now], now=now)
        jobs = _claimed_deliveries(uow.session, stored, send_now, now=now, lease=lease) if send_now else []
        uow.commit()
    return {"outcome": "matched", "subscriptions": len(matched),
            "streams": any(candidate.sink_type == "queue" for candidate in matched), "webhook_jobs": jobs}


def record_matches(session, event: CloudEvent, document: dict, attributes: dict, subscription_ids: list[str], *,
                   now) -> MatchedEvent:
    """The event once, and a pending delivery per subscription (both ignored when already there): what the live
    consumer and a replay (``replay.py``) write alike. Returns the event as stored (not added to the session)."""
    stored = MatchedEvent(event_id=event.id, source=event.source, event_type=event.type, event_time=event.time,
                          case_id=attributes["case"], community_code=_community(document.get("data") or {}, attributes),
                          body=event.model_dump_json(), received_at=now)
    session.execute(insert_ignoring_duplicates(session, MatchedEvent).values(
        {column: getattr(stored, column) for column in _EVENT_COLUMNS}))
    if subscription_ids:
        session.execute(insert_ignoring_duplicates(session, Delivery), [
            {"subscription_id": subscription_id, "event_id": event.id, "event_time": event.time,
             "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
            for subscription_id in subscription_ids])
    return stored


_EVENT_COLUMNS = ("event_id", "source", "event_type", "event_time", "case_id", "community_code", "body",
                  "received_at")


def _claimed_deliveries(session, event: MatchedEvent, candidates: list[Candidate], *, now,
                        lease: timedelta) -> list[WebhookJob]:
    """Deliveries written as the sweep's claim leaves them (``delivery.claim_webhooks``); a row already there (a
    replay wrote it) is left to the sweep."""
    token = new_id()
    written = session.execute(insert_ignoring_duplicates(session, Delivery).values([
        {"subscription_id": candidate.id, "event_id": event.event_id, "event_time": event.event_time,
         "status": "pending", "attempts": 0, "next_attempt_at": now + lease, "first_attempt_at": now,
         "claim_token": token, "created_at": now} for candidate in candidates])
        .returning(Delivery.seq, Delivery.subscription_id)).all()
    urls = {candidate.id: candidate.webhook_url for candidate in candidates}
    return [WebhookJob(seq, token, subscription_id, urls[subscription_id], event.event_id, event.body, 1,
                       event.event_type, event.case_id, event.community_code, lease_until=now + lease)
            for seq, subscription_id in written]


def _community(data: dict, attributes: dict) -> str | None:
    community = data.get("community_code")
    return community if isinstance(community, str) and community else attributes["unit"]
