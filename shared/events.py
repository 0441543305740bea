"""Events on the bus: a CloudEvents 1.0 envelope around versioned pydantic payloads.

Every payload class names its CloudEvents ``type`` (``cn.sanji.<noun>.<verb>.v<N>``) and how its AMQP
routing key is built, so a department can bind exactly what it owns with a plain topic pattern.
Events carry codes and ids, never personal data: there is no field for an ID number or a phone, and
``extra="forbid"`` keeps one from slipping in.

A breaking change to a payload is a new class with ``.v2``; both versions are published side by side
until every subscriber has moved.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import ClassVar, Literal

from kombu.serialization import register
from pydantic import BaseModel, ConfigDict, Field

from shared.clock import new_id

CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"
TYPE_PREFIX = "cn.sanji."


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# Structured-mode CloudEvents over AMQP: the whole envelope is the body, with its own content type.
register("cloudevents", _dumps, json.loads, content_type=CLOUDEVENTS_CONTENT_TYPE, content_encoding="utf-8")


class EventPayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: ClassVar[str]

    def routing_key(self) -> str:
        raise NotImplementedError

    def subject(self) -> str:
        raise NotImplementedError


Level = Literal["community", "street", "district"]


class DeferredMaterial(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    matter_code: str
    material_code: str
    due_date: date


def item_routing_key(verb: str, district_code: str, level: str, unit_code: str, department_code: str) -> str:
    """``item.<verb>.<district>.<level>.<unit>.<department>``, so that with one topic pattern

    - a district department binds ``item.*.320113000000.*.*.police`` (its items at every level),
    - a street binds ``item.*.*.street.320113003000.*`` (everything at its own desks),
    - a dashboard binds ``item.routed.#``.
    """
    return f"item.{verb}.{district_code}.{level}.{unit_code}.{department_code}"


class CaseSubmittedV1(EventPayload):
    """A resident's case was taken in: one submission, one or more matters."""

    event_type: ClassVar[str] = TYPE_PREFIX + "case.submitted.v1"

    case_id: str
    case_number: str
    community_code: str = Field(pattern=r"^\d{12}$")
    catalogue_version: str
    bundle_code: str | None
    matter_codes: tuple[str, ...] = Field(min_length=1)
    channel: Literal["kiosk", "window", "proxy"]
    agent_id: str | None = None
    applicant_masked_name: str = Field(description="Masked, e.g. 刘**; never the full name")
    deferred_materials: tuple[DeferredMaterial, ...] = ()
    submitted_at: datetime

    def routing_key(self) -> str:
        return f"case.submitted.{self.community_code}"

    def subject(self) -> str:
        return self.case_id


class ItemRoutedV1(EventPayload):
    """One matter of a case reached the queue of the unit and department entitled to handle it."""

    event_type: ClassVar[str] = TYPE_PREFIX + "item.routed.v1"

    item_id: str
    case_id: str
    case_number: str
    matter_code: str
    department_code: str
    level: Level
    unit_code: str = Field(pattern=r"^\d{12}$")
    district_code: str = Field(pattern=r"^\d{12}$", description="the district whose line the item is in")
    community_code: str = Field(pattern=r"^\d{12}$")
    status: Literal["queued", "waiting"] = Field(
        description="waiting: a prerequisite matter in the same case is not resolved yet"
    )
    waiting_for: tuple[str, ...] = ()
    legal_deadline: datetime
    promised_deadline: datetime
    deadline_provisional: bool = Field(
        description="True when the working-day calendar did not cover a year the deadline spans"
    )
    catalogue_version: str
    routed_at: datetime

    def routing_key(self) -> str:
        return item_routing_key("routed", self.district_code, self.level, self.unit_code, self.department_code)

    def subject(self) -> str:
        return self.item_id


PAYLOAD_TYPES: dict[str, type[EventPayload]] = {
    payload.event_type: payload for payload in (CaseSubmittedV1, ItemRoutedV1)
}


class CloudEvent(BaseModel):
    """The CloudEvents 1.0 envelope. ``source`` + ``id`` identify an event; consumers dedupe on them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    specversion: Literal["1.0"] = "1.0"
    id: str
    source: str
    type: str
    subject: str | None = None
    time: datetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str | None = None
    data: dict

    @classmethod
    def wrap(cls, payload: EventPayload, *, source: str, time: datetime, event_id: str | None = None):
        return cls(
            id=event_id or new_id(),
            source=source,
            type=payload.event_type,
            subject=payload.subject(),
            time=time,
            dataschema=f"urn:sanji:schema:{payload.event_type}",
            data=payload.model_dump(mode="json"),
        )

    def payload(self) -> EventPayload:
        """The typed payload; raises ``UnknownEventType`` or a pydantic ``ValidationError``."""
        try:
            payload_type = PAYLOAD_TYPES[self.type]
        except KeyError:
            raise UnknownEventType(self.type) from None
        return payload_type.model_validate(self.data)

    def dedupe_key(self) -> str:
        return f"{self.source}#{self.id}"


class UnknownEventType(ValueError):
    def __init__(self, event_type: str):
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


def source_of(service: str) -> str:
    return f"/sanji/{service}"
