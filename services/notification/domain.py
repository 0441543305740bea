"""Who is told what, over which channel, when, and what happens after an attempt: pure rules, no I/O.

The heart is ``RULES``, a table from event type to the messages it causes: a message kind (one template
per kind and channel), an audience, the template context, and when the message is urgent. Adding an
event (a deadline warning, an escalation, a 吹哨 call-in) is a few lines here plus its templates; an
event type with no rule is recorded as processed and otherwise ignored.

Time, randomness and the catalogue's names are passed in, so every rule is testable with fakes.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from shared.catalogue import Catalogue
from shared.events import (
    CaseCompletedV1,
    CaseSubmittedV1,
    DeferralReminderV1,
    Delivery,
    EventPayload,
    ItemEvent,
    ItemRejectedV1,
    ItemReleasedV1,
    ItemResolvedV1,
    ItemRoutedV1,
    ItemSupplementRequestedV1,
    ItemTerminatedV1,
)
from shared.identity import mask_phone
from shared.logging import redact_text
from shared.workdays import SHANGHAI

Audience = Literal["resident", "unit_staff", "department", "specialist"]

# The channels each audience is reached on. A resident's email is optional: a delivery is planned for it
# anyway and recorded as skipped when intake has no address (the notification service does not know
# the resident's contact details until it sends; see docs/notifications.md).
AUDIENCE_CHANNELS: Mapping[str, tuple[str, ...]] = {
    "resident": ("sms", "email"),
    "unit_staff": ("inbox",),
    "department": ("webhook",),
}
CHANNELS = ("sms", "email", "webhook", "inbox")
# Channels that deliver inside our own database, in the transaction that plans them.
LOCAL_CHANNELS = frozenset({"inbox"})

LEVEL_LABELS = {"community": "社区", "street": "街道", "district": "区"}
RATING_LEVELS = ("非常满意", "满意", "基本满意", "不满意", "非常不满意")
TERMINATION_REASONS = {
    "deferral_expired": "容缺材料未在承诺期限内补齐",
    "prerequisite_rejected": "前置事项未予办理",
    "prerequisite_terminated": "前置事项已终止办理",
}
OUTCOME_LABELS = {"resolved": "已办结", "rejected": "不予办理", "terminated": "已终止办理"}
ROUTE_REASONS = {"submitted": "", "returned": "原承办单位退回后重新转办", "escalated": "上报至上级办理"}

# A door delivery this close is told at once, even at night: held until morning, the notice could
# reach the resident after the social worker is already at the door.
URGENT_VISIT_WITHIN = timedelta(hours=12)


# ── Names ───────────────────────────────────────────────────────────────────────────────────────────


class Names(Protocol):
    """Display names for the codes events carry; a code the catalogue does not know is shown as is."""

    def matter(self, code: str) -> str: ...
    def unit(self, code: str) -> str: ...
    def department(self, code: str) -> str: ...
    def material(self, code: str) -> str: ...
    def reject_reason(self, code: str) -> str: ...


class CatalogueNames:
    def __init__(self, catalogue: Catalogue):
        self._catalogue = catalogue
        self._materials = {material.code: material.name
                           for matter in catalogue.matters.values() for material in matter.materials}
        self._reject_reasons = {code: reason.name
                                for code, reason in getattr(catalogue, "reject_reasons", {}).items()}

    def matter(self, code: str) -> str:
        matter = self._catalogue.matters.get(code)
        return matter.name if matter else code

    def unit(self, code: str) -> str:
        unit = self._catalogue.units.get(code)
        return unit.name if unit else code

    def department(self, code: str) -> str:
        department = self._catalogue.departments.get(code)
        return department.name if department else code

    def material(self, code: str) -> str:
        return self._materials.get(code, code)

    def reject_reason(self, code: str) -> str:
        return self._reject_reasons.get(code, code)


# ── Formatting for templates (dates the way a resident reads them, in China's time) ─────────────────


def day_text(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def local_day_text(moment: datetime) -> str:
    return day_text(moment.astimezone(SHANGHAI).date())


def local_time_text(moment: datetime) -> str:
    local = moment.astimezone(SHANGHAI)
    return f"{day_text(local.date())} {local:%H:%M}"


# ── Template contexts, one builder per message kind ────────────────────────────────────────────────


def _delivery(delivery: Delivery | None) -> dict | None:
    if delivery is None:
        return None
    return {"method": delivery.method, "place": delivery.place or "", "agent": delivery.agent_id or "",
            "time": local_time_text(delivery.scheduled_for) if delivery.scheduled_for else ""}


def _item_basics(event: ItemEvent, names: Names) -> dict:
    return {"case_number": event.case_number, "item_id": event.item_id, "matter": names.matter(event.matter_code),
            "unit": names.unit(event.unit_code), "department": names.department(event.department_code),
            "level": LEVEL_LABELS.get(event.level, event.level)}


def receipt_context(event: CaseSubmittedV1, names: Names) -> dict:
    return {
        "case_number": event.case_number,
        "submitted_at": local_time_text(event.submitted_at),
        "matters": [names.matter(code) for code in event.matter_codes],
        "deferred": [{"material": names.material(d.material_code), "matter": names.matter(d.matter_code),
                      "due": day_text(d.due_date)} for d in event.deferred_materials],
    }


def item_routed_context(event: ItemRoutedV1, names: Names) -> dict:
    return {**_item_basics(event, names), "promised": local_day_text(event.promised_deadline),
            "waiting_for": [names.matter(code) for code in event.waiting_for],
            "route_reason": ROUTE_REASONS[event.route_reason]}


def new_item_context(event: ItemRoutedV1 | ItemReleasedV1, names: Names) -> dict:
    route_reason = event.route_reason if isinstance(event, ItemRoutedV1) else "submitted"
    return {**_item_basics(event, names), "promised": local_day_text(event.promised_deadline),
            "legal": local_day_text(event.legal_deadline), "released": isinstance(event, ItemReleasedV1),
            "route_reason": ROUTE_REASONS[route_reason]}


def supplement_requested_context(event: ItemSupplementRequestedV1, names: Names) -> dict:
    return {**_item_basics(event, names), "materials": [names.material(code) for code in event.material_codes],
            "due": day_text(event.due_date), "clock_paused": event.clock_paused}


def deferral_reminder_context(event: DeferralReminderV1, names: Names) -> dict:
    return {"case_number": event.case_number, "material": names.material(event.material_code),
            "matters": [names.matter(code) for code in event.matter_codes], "due": day_text(event.due_date)}


def item_resolved_context(event: ItemResolvedV1, names: Names) -> dict:
    return {**_item_basics(event, names), "result": event.result, "delivery": _delivery(event.delivery)}


def item_rejected_context(event: ItemRejectedV1, names: Names) -> dict:
    return {**_item_basics(event, names), "reason": names.reject_reason(event.reason_code), "note": event.note}


def item_terminated_context(event: ItemTerminatedV1, names: Names) -> dict:
    return {**_item_basics(event, names), "reason": TERMINATION_REASONS.get(event.reason_code, event.reason_code)}


def case_completed_context(event: CaseCompletedV1, names: Names) -> dict:
    return {
        "case_number": event.case_number,
        "granted": [names.matter(o.matter_code) for o in event.outcomes if o.status == "resolved"],
        "not_granted": [{"matter": names.matter(o.matter_code), "status": OUTCOME_LABELS[o.status]}
                        for o in event.outcomes if o.status != "resolved"],
        "delivery": _delivery(event.delivery),
    }


def rating_invitation_context(event: CaseCompletedV1, names: Names) -> dict:
    return {"case_number": event.case_number, "levels": list(RATING_LEVELS)}


# ── Conditions ──────────────────────────────────────────────────────────────────────────────────────


def _always(_event) -> bool:
    return True


def _never(_event, _now) -> bool:
    return False


def in_queue(event: ItemEvent) -> bool:
    """The item is in a unit's queue (a routed item may instead wait for a prerequisite)."""
    return event.status == "queued"


def door_visit_soon(event: ItemResolvedV1 | CaseCompletedV1, now: datetime) -> bool:
    delivery = event.delivery
    return (delivery is not None and delivery.method == "door" and delivery.scheduled_for is not None
            and delivery.scheduled_for - now <= URGENT_VISIT_WITHIN)


# ── The table ───────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Rule:
    kind: str                                           # names the templates: <kind>.<channel>.j2
    audience: Audience
    context: Callable[[EventPayload, Names], dict]
    when: Callable[[EventPayload], bool] = _always
    urgent: Callable[[EventPayload, datetime], bool] = _never


RULES: Mapping[str, tuple[Rule, ...]] = {
    CaseSubmittedV1.event_type: (
        Rule("receipt", "resident", receipt_context),
    ),
    ItemRoutedV1.event_type: (
        Rule("item_routed", "resident", item_routed_context),
        Rule("staff_new_item", "unit_staff", new_item_context, when=in_queue),
        Rule("department_new_item", "department", new_item_context, when=in_queue),
    ),
    ItemReleasedV1.event_type: (
        Rule("staff_new_item", "unit_staff", new_item_context),
        Rule("department_new_item", "department", new_item_context),
    ),
    ItemSupplementRequestedV1.event_type: (
        Rule("supplement_requested", "resident", supplement_requested_context),
    ),
    DeferralReminderV1.event_type: (
        Rule("deferral_reminder", "resident", deferral_reminder_context),
    ),
    ItemResolvedV1.event_type: (
        Rule("item_resolved", "resident", item_resolved_context, urgent=door_visit_soon),
    ),
    ItemRejectedV1.event_type: (
        Rule("item_rejected", "resident", item_rejected_context),
    ),
    ItemTerminatedV1.event_type: (
        Rule("item_terminated", "resident", item_terminated_context),
    ),
    CaseCompletedV1.event_type: (
        Rule("case_completed", "resident", case_completed_context, urgent=door_visit_soon),
        Rule("rating_invitation", "resident", rating_invitation_context),
    ),
}


def template_keys(rules: Mapping[str, tuple[Rule, ...]] = RULES) -> set[tuple[str, str]]:
    """Every (kind, channel) the table can produce: each needs a template."""
    return {(rule.kind, channel) for event_rules in rules.values() for rule in event_rules
            for channel in AUDIENCE_CHANNELS[rule.audience]}


def sample_renderings(events: Iterable[EventPayload], names: Names,
                      rules: Mapping[str, tuple[Rule, ...]] = RULES) -> list[tuple[str, str, dict]]:
    """(kind, channel, context) for every rule each sample event meets, its condition aside: what the
    start-up check renders every template with."""
    return [(rule.kind, channel, rule.context(event, names))
            for event in events for rule in rules.get(event.event_type, ())
            for channel in AUDIENCE_CHANNELS[rule.audience]]


def event_types_without_samples(events: Iterable[EventPayload],
                                rules: Mapping[str, tuple[Rule, ...]] = RULES) -> set[str]:
    return set(rules) - {event.event_type for event in events}


# ── Recipients ──────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class WebhookSubscription:
    """A department system that takes its messages as signed HTTP POSTs instead of from the bus."""

    name: str
    url: str
    secret: str = field(repr=False)
    department: str | None = None   # only items of this department; None: every department
    scope: str | None = None        # only items at this unit or below it; None: everywhere
    kinds: tuple[str, ...] = ()     # only these message kinds; empty: every department kind

    def wants(self, kind: str, event: EventPayload, within: Callable[[str, str], bool]) -> bool:
        if self.kinds and kind not in self.kinds:
            return False
        if self.department is not None and getattr(event, "department_code", None) != self.department:
            return False
        if self.scope is not None:
            unit = getattr(event, "unit_code", None) or getattr(event, "community_code", None)
            return unit is not None and within(unit, self.scope)
        return True


@dataclass(frozen=True)
class Recipient:
    key: str                        # unique per person or system: resident:<case>, unit:<unit>:<dept>, webhook:<name>
    audience: Audience
    unit_code: str | None = None
    department_code: str | None = None


def recipients_for(rule: Rule, event: EventPayload, *, webhooks: Iterable[WebhookSubscription],
                   within: Callable[[str, str], bool]) -> list[Recipient]:
    if rule.audience == "resident":
        return [Recipient(f"resident:{event.case_id}", "resident")]
    if rule.audience == "unit_staff":
        return [Recipient(f"unit:{event.unit_code}:{event.department_code}", "unit_staff",
                          unit_code=event.unit_code, department_code=event.department_code)]
    if rule.audience == "department":
        return [Recipient(f"webhook:{hook.name}", "department", department_code=getattr(event, "department_code", None))
                for hook in webhooks if hook.wants(rule.kind, event, within)]
    raise ValueError(f"no recipients defined for audience {rule.audience!r}")


# ── Quiet hours ─────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class QuietHours:
    """A nightly window in local time (22:00–08:00 Asia/Shanghai by default) when residents get no SMS."""

    start: time = time(22, 0)
    end: time = time(8, 0)
    tz: tzinfo = SHANGHAI

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"22:00-08:00"``; ``"off"`` (or an empty window) disables quiet hours."""
        text = text.strip()
        if text.lower() in ("off", "none", ""):
            return cls(time(0), time(0))
        match = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", text)
        if not match:
            raise ValueError(f"quiet hours {text!r}: write them as HH:MM-HH:MM (e.g. 22:00-08:00) or 'off'")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        try:
            return cls(time(h1, m1), time(h2, m2))
        except ValueError:
            raise ValueError(f"quiet hours {text!r}: not a time of day") from None

    @property
    def enabled(self) -> bool:
        return self.start != self.end

    def contains(self, moment: datetime) -> bool:
        if not self.enabled:
            return False
        local = moment.astimezone(self.tz).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def release(self, moment: datetime) -> datetime:
        """``moment`` itself outside the window; inside it, the window's end (the next morning)."""
        if not self.contains(moment):
            return moment
        local = moment.astimezone(self.tz)
        day = local.date() if local.time() < self.end else local.date() + timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=self.tz).astimezone(UTC)


def quiet_hours_apply(channel: str, audience: str) -> bool:
    """Only residents' phones are kept quiet: email waits in an inbox anyway, staff read their own queue."""
    return channel == "sms" and audience == "resident"


def schedule(moment: datetime, *, channel: str, audience: str, urgent: bool,
             quiet_hours: QuietHours) -> tuple[datetime, str | None]:
    """When a message may go out, and why it waits (or None)."""
    if urgent or not quiet_hours_apply(channel, audience) or not quiet_hours.contains(moment):
        return moment, None
    return quiet_hours.release(moment), "quiet_hours"


# ── Planning: an event in, the messages it causes out ───────────────────────────────────────────────


@dataclass(frozen=True)
class PlannedMessage:
    kind: str
    recipient: Recipient
    channel: str
    context: dict
    urgent: bool
    not_before: datetime
    hold_reason: str | None


def plan(event_type: str, event: EventPayload, *, now: datetime, names: Names,
         webhooks: Iterable[WebhookSubscription], within: Callable[[str, str], bool],
         quiet_hours: QuietHours, rules: Mapping[str, tuple[Rule, ...]] = RULES) -> list[PlannedMessage]:
    planned = []
    for rule in rules.get(event_type, ()):
        if not rule.when(event):
            continue
        context = rule.context(event, names)
        urgent = rule.urgent(event, now)
        for recipient in recipients_for(rule, event, webhooks=webhooks, within=within):
            for channel in AUDIENCE_CHANNELS[recipient.audience]:
                not_before, hold_reason = schedule(now, channel=channel, audience=recipient.audience,
                                                   urgent=urgent, quiet_hours=quiet_hours)
                planned.append(PlannedMessage(rule.kind, recipient, channel, context, urgent, not_before,
                                              hold_reason))
    return planned


MAX_CAUSE_CHARS = 255


def cause_of(event_key: str, kind: str) -> str:
    """The cause in the delivery log's unique key (recipient, channel, cause): the event and the message kind.

    An event key too long for the column (ids are chosen by the publisher) is replaced by its SHA-256,
    which keeps the key unique and the same on every redelivery."""
    cause = f"{event_key}/{kind}"
    if len(cause) <= MAX_CAUSE_CHARS:
        return cause
    return f"sha256:{hashlib.sha256(event_key.encode()).hexdigest()}/{kind}"


# ── Sending: outcomes, retries, rate limits ─────────────────────────────────────────────────────────


class Outcome(StrEnum):
    SENT = "sent"
    TRANSIENT = "transient"       # worth another try later: timeout, connection refused, 5xx, 429
    PERMANENT = "permanent"       # never going to work: 4xx, invalid number, refused address
    SKIPPED = "skipped"           # nothing to send to (the resident gave no email address)


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    detail: str = ""
    provider_ref: str | None = None


def classify_http_status(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.SENT
    if status in (408, 425, 429) or status >= 500:
        return Outcome.TRANSIENT
    return Outcome.PERMANENT


class Random(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    max_attempts: int = 8

    def delay(self, attempt: int, rng: Random) -> timedelta:
        """Exponential backoff with "equal jitter": half the step fixed, half random, never over the cap.

        The fixed half keeps retries apart; the random half keeps a crowd of messages that failed
        together (a gateway outage) from coming back together.
        """
        step = min(self.cap_seconds, self.base_seconds * 2 ** max(attempt - 1, 0))
        return timedelta(seconds=step / 2 + rng.uniform(0, step / 2))


@dataclass(frozen=True)
class NextState:
    status: Literal["pending", "sent", "failed", "skipped"]
    next_attempt_at: datetime | None
    hold_reason: str | None = None
    error: str | None = None


def after_attempt(result: SendResult, *, attempt: int, now: datetime, policy: RetryPolicy, rng: Random,
                  channel: str, audience: str, urgent: bool, quiet_hours: QuietHours) -> NextState:
    """Where a delivery stands after its ``attempt``-th try."""
    if result.outcome is Outcome.SENT:
        return NextState("sent", None)
    if result.outcome is Outcome.SKIPPED:
        return NextState("skipped", None, error=result.detail)
    if result.outcome is Outcome.PERMANENT:
        return NextState("failed", None, error=result.detail)
    if attempt >= policy.max_attempts:
        return NextState("failed", None, error=f"gave up after {attempt} attempts: {result.detail}")
    retry_at, hold_reason = schedule(now + policy.delay(attempt, rng), channel=channel, audience=audience,
                                     urgent=urgent, quiet_hours=quiet_hours)
    return NextState("pending", retry_at, hold_reason=hold_reason, error=result.detail)


class TokenBucket:
    """At most ``rate`` messages a second on average, ``burst`` at once. Times are seconds (any origin)."""

    def __init__(self, rate: float, burst: float | None = None, now: float = 0.0):
        if rate <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._tokens = self.burst
        self._at = now

    def _refill(self, now: float) -> None:
        if now > self._at:  # a clock that stepped back adds nothing
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now

    def available(self, now: float) -> int:
        self._refill(now)
        return math.floor(self._tokens + 1e-9)

    def take(self, count: int, now: float) -> int:
        """Take up to ``count`` tokens; returns how many were granted."""
        granted = min(count, self.available(now))
        self._tokens -= granted
        return granted


class RateLimiter:
    """One token bucket per provider (channel); a channel without a configured rate is not limited."""

    def __init__(self, rates: Mapping[str, float], now: float = 0.0):
        self._buckets = {channel: TokenBucket(rate, now=now) for channel, rate in rates.items()}

    def take(self, channel: str, wanted: int, now: float) -> int:
        bucket = self._buckets.get(channel)
        return wanted if bucket is None else bucket.take(wanted, now)

    def give_back(self, channel: str, count: int) -> None:
        """Return tokens taken for rows that turned out not to be there."""
        bucket = self._buckets.get(channel)
        if bucket is not None and count > 0:
            bucket._tokens = min(bucket.burst, bucket._tokens + count)


def parse_rate_limits(text: str) -> dict[str, float]:
    """``"sms=20,email=10,webhook=50"`` (messages per second, per provider)."""
    rates: dict[str, float] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        channel, _, value = part.partition("=")
        channel = channel.strip()
        if channel not in CHANNELS or channel in LOCAL_CHANNELS:
            raise ValueError(f"rate limit {part!r}: the channel must be one of sms, email, webhook")
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"rate limit {part!r}: write channel=messages-per-second, e.g. sms=20") from None
        if not rate > 0:
            raise ValueError(f"rate limit {part!r}: must be positive")
        rates[channel] = rate
    return rates


# ── Addresses and what may be written down about them ───────────────────────────────────────────────

_MAINLAND_MOBILE = re.compile(r"1[3-9]\d{9}", re.ASCII)
_EMAIL = re.compile(r"[^\s@<>()\[\],;:\"]+@[^\s@<>()\[\],;:\"]+\.[^\s@<>()\[\],;:\"]+")


def normalise_mobile(number: str) -> str | None:
    """A mainland mobile number as 11 digits, or None if it is not one (the message fails at once)."""
    digits = re.sub(r"[\s\-()]", "", number or "")
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix):]
            break
    return digits if _MAINLAND_MOBILE.fullmatch(digits) else None


def plausible_email(address: str) -> bool:
    return bool(address) and _EMAIL.fullmatch(address.strip()) is not None


def mask_email(address: str) -> str:
    local, _, domain = address.strip().partition("@")
    return (local[:1] + "***@" + domain) if domain else "***"


def address_hint(channel: str, address: str) -> str:
    """What the delivery log keeps of an address: enough to recognise it, not enough to use it."""
    if channel == "sms":
        return mask_phone(address)
    if channel == "email":
        return mask_email(address)
    return safe_url(address)[:128]


def safe_url(url: str) -> str:
    """A URL without the credentials or query string it may carry, for logs and the delivery log."""
    parts = urlsplit(url)
    if not parts.hostname:
        return parts.scheme + "://…" if parts.scheme else "…"
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def scrub(text: str, limit: int = 300) -> str:
    """A provider's error text, safe to store and log: phone, ID numbers and email addresses removed."""
    return _EMAIL.sub("[email redacted]", redact_text(str(text)))[:limit]
