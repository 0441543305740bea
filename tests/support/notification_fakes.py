"""Fakes for the notification tests: intake's contact RPC as a real nameko service, and event builders."""

from __future__ import annotations

from datetime import datetime

from nameko.rpc import rpc

from services.notification import samples
from shared.bus import EVENT_OWNERS
from shared.events import CloudEvent, EventPayload, source_of

RESIDENT_PHONE = "13987654321"
RESIDENT_EMAIL = "liu.jinhua@example.com"
RESIDENT_NAME = "刘金花"


def fake_intake(contacts: dict[str, dict]) -> type:
    """A service named ``intake`` answering ``applicant_contact`` from ``contacts`` (case id -> phone, email)."""

    class FakeIntake:
        name = "intake"

        @rpc
        def applicant_contact(self, case_id, purpose):
            contact = contacts.get(case_id)
            if contact is None:
                return None
            field = {"sms": "phone", "email": "email"}[purpose]  # intake's contract: one detail per purpose
            return {"case_id": case_id, field: contact.get(field)}

    return FakeIntake


def sample(event_type: str, index: int = 0, **changes) -> EventPayload:
    """The ``index``-th sample event of a type (services/notification/samples.py), with fields changed."""
    candidates = [event for event in samples.sample_events() if event.event_type == event_type]
    return type(candidates[index]).model_validate({**candidates[index].model_dump(), **changes})


def envelope(payload: EventPayload, at: datetime, source: str | None = None) -> tuple[CloudEvent, str]:
    """The event as its owner would publish it (by default from the first service that owns its type:
    consumers refuse an event whose source is not an owner's, shared/bus.py)."""
    if source is None:
        owner = next(service for service in ("routing", "intake", "escalation")
                     if service in EVENT_OWNERS[payload.event_type])
        source = source_of(owner)
    event = CloudEvent.wrap(payload, source=source, time=at)
    return event, payload.routing_key()
