"""Handing matched events over: into the subscriptions' streams, and to their webhooks.

**Streams.** Pending deliveries of active queue subscriptions are published, oldest first, into the
subscription's stream with publisher confirms, in batches taken ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; a
batch is marked delivered (and disclosed) in the transaction that took it, after the broker confirmed every
publish. A crash between the confirm and the commit publishes the batch again: at least once, consumers dedupe
on the CloudEvent id.

**Webhooks.** Due deliveries of active webhook subscriptions are claimed in a short transaction (``SKIP LOCKED``
on PostgreSQL, then a lease: ``next_attempt_at`` moves past the lease and a claim token is set), so two replicas
never send the same delivery at once and no transaction stays open while a receiver answers. They are sent
concurrently; each result is recorded only if the claim still holds. A 2xx is delivered (and disclosed); anything
else is retried by ``retry_policy``, given up after its span, and an endpoint failing every attempt for the
disable span is disabled with the reason.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select

from services.subscriptions.adapters.orm import Attempt, Delivery, Disclosure, MatchedEvent, Subscription
from services.subscriptions.adapters.webhooks import CallResult
from services.subscriptions.registry import bump_revision, signing_secrets
from services.subscriptions.retry_policy import RetryPolicy
from shared.clock import new_id
from shared.db import is_postgres

log = structlog.get_logger(__name__)


def _disclosure(subscription: Subscription, event: MatchedEvent, at: datetime) -> Disclosure | None:
    if event.case_id is None:  # not about a resident's case: nothing to audit per case
        return None
    return Disclosure(case_id=event.case_id, subscription_id=subscription.id, subscriber=subscription.owner,
                      subscriber_kind=subscription.owner_kind, department=subscription.department,
                      sink_type=subscription.sink_type, event_id=event.event_id, event_type=event.event_type,
                      community_code=event.community_code, disclosed_at=at)


def _locked(query, session, *entities):
    if is_postgres(session.get_bind()):
        return query.with_for_update(skip_locked=True, of=entities or None)
    return query


def publish_streams(unit_of_work_factory, *, streams, now: Callable[[], datetime], batch_size: int) -> int:
    """Publish pending stream deliveries until none is left (or the broker fails: raises, rows stay pending)."""
    published = 0
    while True:
        with unit_of_work_factory() as uow:
            query = (select(Delivery, Subscription, MatchedEvent)
                     .join(Subscription, Subscription.id == Delivery.subscription_id)
                     .join(MatchedEvent, MatchedEvent.event_id == Delivery.event_id)
                     .where(Subscription.sink_type == "queue", Subscription.status == "active",
                            Delivery.status == "pending")
                     .order_by(Delivery.seq).limit(batch_size))
            rows = uow.session.execute(_locked(query, uow.session, Delivery)).all()
            if not rows:
                return published
            for _, subscription, event in rows:
                streams.publish(subscription.id, event.event_id, event.event_type, event.body)
            at = now()
            for delivery, subscription, event in rows:
                delivery.status, delivery.attempts, delivery.delivered_at = "delivered", delivery.attempts + 1, at
                delivery.first_attempt_at = delivery.first_attempt_at or at
                delivery.last_attempt_at, delivery.next_attempt_at, delivery.last_error = at, None, None
                disclosure = _disclosure(subscription, event, at)
                if disclosure is not None:
                    uow.session.add(disclosure)
            uow.commit()
            published += len(rows)
        if len(rows) < batch_size:
            return published


@dataclass(frozen=True)
class WebhookJob:
    delivery_seq: int
    claim_token: str
    subscription_id: str
    url: str
    event_id: str
    body: str
    secrets: tuple[str, ...]
    attempt: int


def claim_webhooks(unit_of_work_factory, *, now: datetime, batch_size: int, lease: timedelta) -> list[WebhookJob]:
    with unit_of_work_factory() as uow:
        query = (select(Delivery, Subscription, MatchedEvent)
                 .join(Subscription, Subscription.id == Delivery.subscription_id)
                 .join(MatchedEvent, MatchedEvent.event_id == Delivery.event_id)
                 .where(Subscription.sink_type == "webhook", Subscription.status == "active",
                        Delivery.status.in_(("pending", "retrying")), Delivery.next_attempt_at <= now)
                 .order_by(Delivery.next_attempt_at, Delivery.seq).limit(batch_size))
        rows = uow.session.execute(_locked(query, uow.session, Delivery)).all()
        secrets: dict[str, tuple[str, ...]] = {}
        jobs = []
        for delivery, subscription, event in rows:
            if subscription.id not in secrets:
                secrets[subscription.id] = signing_secrets(uow.session, subscription.id, now)
            token = new_id()
            delivery.claim_token, delivery.next_attempt_at = token, now + lease
            delivery.first_attempt_at = delivery.first_attempt_at or now
            jobs.append(WebhookJob(delivery.seq, token, subscription.id, subscription.webhook_url, event.event_id,
                                   event.body, secrets[subscription.id], delivery.attempts + 1))
        uow.commit()
    return jobs


def record_results(unit_of_work_factory, results: list[tuple[WebhookJob, CallResult, datetime]], *,
                   policy: RetryPolicy, rng: random.Random) -> dict[str, int]:
    counts = {"delivered": 0, "failed": 0, "given_up": 0, "disabled": 0}
    if not results:
        return counts
    with unit_of_work_factory() as uow:
        subscriptions = {row.id: row for row in uow.session.scalars(select(Subscription).where(
            Subscription.id.in_({job.subscription_id for job, _, _ in results})))}
        for job, result, at in sorted(results, key=lambda entry: entry[2]):
            delivery = uow.session.scalars(select(Delivery).where(
                Delivery.seq == job.delivery_seq, Delivery.claim_token == job.claim_token)).first()
            if delivery is None:   # the claim lapsed (a redelivery, or the lease expired): not ours to record
                continue
            subscription = subscriptions[job.subscription_id]
            uow.session.add(Attempt(delivery_seq=delivery.seq, number=job.attempt, attempted_at=at,
                                    outcome="delivered" if result.delivered else "failed",
                                    status_code=result.status_code, error=result.error,
                                    duration_ms=result.duration_ms))
            delivery.attempts, delivery.last_attempt_at, delivery.claim_token = job.attempt, at, None
            delivery.last_status_code, delivery.last_error = result.status_code, result.error
            if result.delivered:
                delivery.status, delivery.delivered_at, delivery.next_attempt_at = "delivered", at, None
                subscription.failing_since = None
                event = uow.session.get(MatchedEvent, job.event_id)
                disclosure = _disclosure(subscription, event, at)
                if disclosure is not None:
                    uow.session.add(disclosure)
                counts["delivered"] += 1
                continue
            counts["failed"] += 1
            if policy.gives_up(delivery.first_attempt_at or at, at):
                delivery.status, delivery.next_attempt_at = "given_up", None
                counts["given_up"] += 1
            else:
                delivery.status = "retrying"
                delivery.next_attempt_at = at + policy.delay(job.attempt, rng)
            subscription.failing_since = subscription.failing_since or at
            if subscription.status == "active" and policy.disables(subscription.failing_since, at):
                subscription.status = "disabled"
                subscription.status_reason = (f"every attempt failed since {subscription.failing_since.isoformat()} "
                                              f"(last: {result.error}); re-enable with PATCH status=active")
                subscription.updated_at = at
                counts["disabled"] += 1
                log.warning("webhook subscription disabled: its endpoint kept failing",
                            subscription_id=subscription.id, failing_since=subscription.failing_since.isoformat())
        if counts["disabled"]:
            bump_revision(uow.session)
        uow.commit()
    return counts


def send_webhooks(unit_of_work_factory, *, caller, policy: RetryPolicy, rng: random.Random,
                  now: Callable[[], datetime], batch_size: int, lease: timedelta, run_all) -> dict[str, int]:
    """Claim due deliveries, send them concurrently (``run_all(function, jobs)``), record every result."""
    jobs = claim_webhooks(unit_of_work_factory, now=now(), batch_size=batch_size, lease=lease)
    if not jobs:
        return {"delivered": 0, "failed": 0, "given_up": 0, "disabled": 0}

    def send(job: WebhookJob):
        return job, caller.call(job.url, job.event_id, job.body, job.secrets), now()

    return record_results(unit_of_work_factory, list(run_all(send, jobs)), policy=policy, rng=rng)
