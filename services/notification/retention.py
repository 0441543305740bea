"""What notification's retention pass prunes, besides the kernel's outbox and processed-message records.

- Finished deliveries (``sent``, or ``skipped``: nothing to send to) other than the inbox's, with their attempts,
  ``SANJI_NOTIFICATION_RETENTION_DAYS`` after they were planned. A delivery's row is also the second guard of
  "once per recipient, channel and cause" (its unique key): while it is there, a duplicate of its event whose
  processed-message record is already gone still inserts nothing. ``failed`` rows (a resident who never got the
  message) stay for the operators; ``pending`` ones are still owed.
- Staff inbox messages, with their delivery and its attempt, ``SANJI_NOTIFICATION_INBOX_RETENTION_DAYS`` after
  they were written (the inbox is what staff read, so it is kept longer).

The age is the delivery's ``created_at``: the moment its event was first handled, from which the bound on a late
duplicate is counted (docs/reliability.md, "Retention").
"""

from __future__ import annotations

from collections.abc import Mapping

from services.notification.adapters.orm import Delivery, DeliveryAttempt, InboxMessage
from services.notification.variables import NotificationVariables
from shared.retention import Prunable, retention_of

FINISHED = ("sent", "skipped")


def retention_targets(config: Mapping) -> list[Prunable]:
    variables = NotificationVariables.read(config)
    deliveries = Delivery.__table__
    attempts, inbox = DeliveryAttempt.__table__.c.delivery_id, InboxMessage.__table__.c.delivery_id
    finished = deliveries.c.status.in_(FINISHED)
    return [
        Prunable(deliveries, (deliveries.c.id,), deliveries.c.created_at, retention_of(variables.retention_days),
                 condition=finished & (deliveries.c.channel != "inbox"), dependents=(attempts,),
                 label="notification_deliveries"),
        Prunable(deliveries, (deliveries.c.id,), deliveries.c.created_at,
                 retention_of(variables.inbox_retention_days),
                 condition=finished & (deliveries.c.channel == "inbox"), dependents=(attempts, inbox),
                 label="notification_inbox"),
    ]
