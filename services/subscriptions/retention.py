"""What the subscriptions service's retention pass prunes, besides the kernel's outbox and processed-message records.

- Delivered deliveries (to a stream or a webhook), with their attempts, ``SANJI_SUBSCRIPTIONS_RETENTION_DAYS``
  after they were matched. A delivery's row is also the second guard of "once per subscription and event" (its
  unique key): while it is there, a duplicate of its event whose processed-message record is already gone still
  inserts nothing. ``given_up`` rows stay: they are the subscriber's failure view and what a redelivery of a
  range sends again; ``pending`` and ``retrying`` ones are still owed.
- Matched events (the body sent to the subscribers) no delivery refers to any more, as long after they arrived.
  A replay that matches such an event again writes it again.

What a department was handed is not here but in the disclosure log (``subscriptions_disclosures``), which is an
audit record and is kept. docs/reliability.md, "Retention", says why each bound is safe.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import exists, select

from services.subscriptions.adapters.orm import Attempt, Delivery, MatchedEvent
from services.subscriptions.settings import SubscriptionsVariables
from shared.retention import Prunable, retention_of


def retention_targets(config: Mapping) -> list[Prunable]:
    retention = retention_of(SubscriptionsVariables.read(config).retention_days)
    deliveries, events = Delivery.__table__, MatchedEvent.__table__
    still_needed = exists(select(deliveries.c.seq).where(deliveries.c.event_id == events.c.event_id))
    return [
        Prunable(deliveries, (deliveries.c.seq,), deliveries.c.created_at, retention,
                 condition=deliveries.c.status == "delivered", dependents=(Attempt.__table__.c.delivery_seq,),
                 label="subscriptions_deliveries"),
        # after the deliveries (targets are pruned in order), so a pass removes an event its last delivery freed
        Prunable(events, (events.c.event_id,), events.c.received_at, retention, condition=~still_needed,
                 label="subscriptions_events"),
    ]
