"""Every event on the bus against the subscriptions: in memory, then one transaction.

The consumer reads the revision counter (one row) in its transaction and reloads the subscriptions it matches
against only when a change was committed since (``ActiveSubscriptions``), so a subscription created, paused or
changed on any replica takes effect for the next event. For each event, in ONE transaction: the consumer's inbox
row (a redelivered event is a no-op), the event once, and a delivery row per matching subscription (unique on
subscription and event). Disclosures are written later, when a delivery is handed over.

Paused and disabled subscriptions keep matching: their deliveries wait and go out when the owner resumes or
re-enables them. Deleted ones match nothing.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import structlog
from sqlalchemy import select

from services.subscriptions import filters as dialect
from services.subscriptions.adapters.orm import Delivery, MatchedEvent, Revision, Subscription
from services.subscriptions.mandate import Mandate
from shared.events import CloudEvent
from shared.outbox import insert_ignoring_duplicates

log = structlog.get_logger(__name__)

CONSUMER = "subscriptions.match"


@dataclass(frozen=True)
class Candidate:
    id: str
    mandate: Mandate
    expressions: tuple

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


def load_candidates(session):
    for row in session.scalars(select(Subscription).where(Subscription.status != "deleted")):
        try:
            expressions = dialect.parse_filters(json.loads(row.filters))
        except (ValueError, dialect.FilterInvalid):  # stored after checking: only a hand-edited row gets here
            log.error("a stored subscription's filters do not parse; it matches nothing", subscription_id=row.id)
            continue
        yield Candidate(row.id, Mandate(row.scope_kind, row.department, row.unit_code, row.unit_prefix,
                                        row.district_code), expressions)


def handle_event(event: CloudEvent, *, unit_of_work, active: ActiveSubscriptions) -> dict:
    document = event.model_dump(mode="json")
    attributes = dialect.event_attributes(document)
    with unit_of_work as uow:
        if not uow.claim_message(CONSUMER, event):
            return {"outcome": "duplicate"}
        matched = [candidate.id for candidate in active.current(uow.session) if candidate.wants(attributes)]
        if matched:
            now = uow.clock.now()
            data = document.get("data") or {}
            uow.session.execute(insert_ignoring_duplicates(uow.session, MatchedEvent).values(
                event_id=event.id, source=event.source, event_type=event.type, event_time=event.time,
                case_id=attributes["case"], community_code=_community(data, attributes),
                body=event.model_dump_json(), received_at=now))
            uow.session.execute(insert_ignoring_duplicates(uow.session, Delivery), [
                {"subscription_id": subscription_id, "event_id": event.id, "event_time": event.time,
                 "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
                for subscription_id in matched])
        uow.commit()
    return {"outcome": "matched", "subscriptions": len(matched)}


def _community(data: dict, attributes: dict) -> str | None:
    community = data.get("community_code")
    return community if isinstance(community, str) and community else attributes["unit"]
