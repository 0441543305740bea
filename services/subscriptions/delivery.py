"""Handing matched events over: into the subscriptions' streams, and to their webhooks.

**Streams.** Pending deliveries of active queue subscriptions are published, oldest first, into the
subscription's stream with publisher confirms, in batches taken ``FOR UPDATE SKIP LOCKED`` on PostgreSQL; a
batch is marked delivered (and disclosed) in the transaction that took it, after the broker confirmed every
publish. A crash between the confirm and the commit publishes the batch again: at least once, consumers dedupe
on the CloudEvent id.

**Webhooks.** Due deliveries of active webhook subscriptions are claimed in a short transaction (``SKIP LOCKED``
on PostgreSQL, then a lease: ``next_attempt_at`` moves past the lease and a claim token is set), so two replicas
never send the same delivery at once and no transaction stays open while a receiver answers. Most deliveries never
wait for that sweep: the live consumer writes them claimed and hands them over in memory (``matching.py``,
"Hand-off"); the sweep takes retries, lapsed leases and resumed subscriptions. They are sent concurrently; each
result is recorded only if the claim still holds. A 2xx is delivered (and disclosed); anything
else is retried by ``retry_policy``, given up after its span, and an endpoint failing every attempt for the
disable span is disabled with the reason.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import bindparam, func, insert, select, update

from services.subscriptions.adapters.orm import Attempt, Delivery, Disclosure, MatchedEvent, Subscription
from services.subscriptions.adapters.webhooks import CallResult
from services.subscriptions.registry import bump_revision, signing_secrets_of
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
    attempt: int
    # What a delivered job's disclosure says, read with the claim so that recording reads nothing again.
    event_type: str
    case_id: str | None
    community_code: str | None
    # Past this the claim may be taken again (by the sweep of any replica): a job handed over in memory and not
    # sent by then is dropped, not sent twice.
    lease_until: datetime


def claim_webhooks(unit_of_work_factory, *, now: datetime, batch_size: int, lease: timedelta,
                   also_sign_for=()) -> tuple[list[WebhookJob], dict[str, tuple[str, ...]]]:
    """Take up to ``batch_size`` due deliveries of active webhooks (one locked read, one UPDATE for the lease), and
    the signing secrets of their subscriptions and of ``also_sign_for`` (jobs handed over in memory).

    Columns, not ORM objects, and one claim token for the batch: at hundreds of deliveries a second the ORM's
    objects and per-row flush cost more than the statements (``make bench-fanout``)."""
    with unit_of_work_factory() as uow:
        session = uow.session
        rows = []
        if batch_size > 0:
            query = (select(Delivery.seq, Delivery.attempts, Subscription.id, Subscription.webhook_url,
                            MatchedEvent.event_id, MatchedEvent.body, MatchedEvent.event_type, MatchedEvent.case_id,
                            MatchedEvent.community_code)
                     .join(Subscription, Subscription.id == Delivery.subscription_id)
                     .join(MatchedEvent, MatchedEvent.event_id == Delivery.event_id)
                     .where(Subscription.sink_type == "webhook", Subscription.status == "active",
                            Delivery.status.in_(("pending", "retrying")), Delivery.next_attempt_at <= now)
                     .order_by(Delivery.next_attempt_at, Delivery.seq).limit(batch_size))
            rows = session.execute(_locked(query, session, Delivery)).all()
        token = new_id()
        if rows:
            session.execute(update(Delivery).where(Delivery.seq.in_([row.seq for row in rows]))
                            .values(claim_token=token, next_attempt_at=now + lease,
                                    first_attempt_at=func.coalesce(Delivery.first_attempt_at, now))
                            .execution_options(synchronize_session=False))
        secrets = signing_secrets_of(session, {row.id for row in rows} | set(also_sign_for), now)
        jobs = [WebhookJob(row.seq, token, row.id, row.webhook_url, row.event_id, row.body, row.attempts + 1,
                           row.event_type, row.case_id, row.community_code, lease_until=now + lease)
                for row in rows]
        uow.commit()
    return jobs, secrets


def record_results(unit_of_work_factory, results: list[tuple[WebhookJob, CallResult, datetime]], *,
                   policy: RetryPolicy, rng: random.Random) -> dict[str, int]:
    """Every result whose claim still holds (a redelivery or a lapsed lease took the others), in one transaction:
    its attempt, the delivery's state, and for a 2xx the disclosure; a failure is retried, given up or disables
    the endpoint (``_record_failures``)."""
    counts = {"delivered": 0, "failed": 0, "given_up": 0, "disabled": 0}
    if not results:
        return counts
    with unit_of_work_factory() as uow:
        session = uow.session
        tokens = dict(session.execute(_locked(select(Delivery.seq, Delivery.claim_token).where(
            Delivery.seq.in_([job.delivery_seq for job, _, _ in results])), session)).all())
        held = sorted((entry for entry in results if tokens.get(entry[0].delivery_seq) == entry[0].claim_token),
                      key=lambda entry: entry[2])
        delivered = [entry for entry in held if entry[1].delivered]
        if delivered:
            _record_deliveries(session, delivered)
            counts["delivered"] = len(delivered)
        failed = [entry for entry in held if not entry[1].delivered]
        if failed:
            # Only failed attempts are kept (the failure view's): a delivery's row says when it was delivered.
            session.execute(insert(Attempt.__table__), [
                {"delivery_seq": job.delivery_seq, "number": job.attempt, "attempted_at": at, "outcome": "failed",
                 "status_code": result.status_code, "error": result.error, "duration_ms": result.duration_ms}
                for job, result, at in failed])
            counts.update(_record_failures(session, failed, policy=policy, rng=rng))
        uow.commit()
    return counts


def _record_deliveries(session, delivered: list[tuple[WebhookJob, CallResult, datetime]]) -> None:
    deliveries = Delivery.__table__
    session.execute(
        update(deliveries).where(deliveries.c.seq == bindparam("b_seq")).values(
            status="delivered", attempts=bindparam("b_attempt"), last_attempt_at=bindparam("b_at"),
            delivered_at=bindparam("b_at"), next_attempt_at=None, claim_token=None,
            last_status_code=bindparam("b_status_code"), last_error=None),
        [{"b_seq": job.delivery_seq, "b_attempt": job.attempt, "b_at": at, "b_status_code": result.status_code}
         for job, result, at in delivered])
    # An endpoint that answered is not failing any more (a no-op, by index, for the healthy ones).
    session.execute(update(Subscription).where(
        Subscription.id.in_({job.subscription_id for job, _, _ in delivered}),
        Subscription.failing_since.is_not(None)).values(failing_since=None)
        .execution_options(synchronize_session=False))
    owners = {row.id: row for row in session.execute(select(
        Subscription.id, Subscription.owner, Subscription.owner_kind, Subscription.department).where(
        Subscription.id.in_({job.subscription_id for job, _, _ in delivered if job.case_id is not None})))}
    disclosures = [{"case_id": job.case_id, "subscription_id": job.subscription_id,
                    "subscriber": owners[job.subscription_id].owner,
                    "subscriber_kind": owners[job.subscription_id].owner_kind,
                    "department": owners[job.subscription_id].department, "sink_type": "webhook",
                    "event_id": job.event_id, "event_type": job.event_type, "community_code": job.community_code,
                    "disclosed_at": at}
                   for job, _, at in delivered if job.case_id is not None]
    if disclosures:
        session.execute(insert(Disclosure.__table__), disclosures)


def _record_failures(session, failed: list[tuple[WebhookJob, CallResult, datetime]], *, policy: RetryPolicy,
                     rng: random.Random) -> dict[str, int]:
    counts = {"failed": 0, "given_up": 0, "disabled": 0}
    subscriptions = {row.id: row for row in session.scalars(select(Subscription).where(
        Subscription.id.in_({job.subscription_id for job, _, _ in failed})))}
    deliveries = {row.seq: row for row in session.scalars(select(Delivery).where(
        Delivery.seq.in_([job.delivery_seq for job, _, _ in failed])))}
    for job, result, at in failed:
        delivery, subscription = deliveries[job.delivery_seq], subscriptions[job.subscription_id]
        delivery.attempts, delivery.last_attempt_at, delivery.claim_token = job.attempt, at, None
        delivery.last_status_code, delivery.last_error = result.status_code, result.error
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
        bump_revision(session)
    return counts


def release_claims(unit_of_work_factory, jobs: list[WebhookJob], *, now: datetime) -> None:
    """Make claimed jobs that will not be sent due again now (the claim token still matching: not taken since)."""
    with unit_of_work_factory() as uow:
        deliveries = Delivery.__table__
        uow.session.execute(
            update(deliveries).where(deliveries.c.seq == bindparam("b_seq"),
                                     deliveries.c.claim_token == bindparam("b_token"))
            .values(claim_token=None, next_attempt_at=now),
            [{"b_seq": job.delivery_seq, "b_token": job.claim_token} for job in jobs])
        uow.commit()


def send_webhooks(unit_of_work_factory, *, caller, policy: RetryPolicy, rng: random.Random,
                  now: Callable[[], datetime], batch_size: int, lease: timedelta, run_all,
                  handed: list[WebhookJob] = (), claim: bool = True) -> dict[str, int]:
    """Send the jobs ``handed`` over in memory (their rows claimed when they were written) and, to fill the batch
    (when ``claim``), claim due deliveries; send them concurrently (``run_all(function, jobs)``), record every
    result."""
    started = now()
    jobs = [job for job in handed if job.lease_until > started]   # a lapsed lease: the sweep has the row again
    if not jobs and not claim:
        return {"delivered": 0, "failed": 0, "given_up": 0, "disabled": 0}
    claimed, secrets = claim_webhooks(unit_of_work_factory, now=started,
                                      batch_size=batch_size - len(jobs) if claim else 0,
                                      lease=lease, also_sign_for={job.subscription_id for job in jobs})
    jobs += claimed
    if not jobs:
        return {"delivered": 0, "failed": 0, "given_up": 0, "disabled": 0}

    def send(job: WebhookJob):
        return job, caller.call(job.url, job.event_id, job.body, secrets.get(job.subscription_id, ())), now()

    return record_results(unit_of_work_factory, list(run_all(send, jobs)), policy=policy, rng=rng)
