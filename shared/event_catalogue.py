"""The event catalogue: every event type on the bus, from the payload models that validate the events.

For each type: its CloudEvents ``type``, ``name`` and ``version``, whether a later version supersedes it, its
description (the model's docstring), its routing-key template, the JSON Schema of its ``data`` (pydantic's, in
serialization mode: what the relay publishes), the attributes a subscription filter may use for it, and an
example event (envelope and data) that the schema and the model both accept. The AsyncAPI document
(``shared/asyncapi.py``) is built from these entries, and ``sanji write-docs`` commits them as
``docs/event-types.json``; a service serves them as they are (``event_types()`` is JSON as it stands).
"""

from __future__ import annotations

import inspect
import json
import re
import types
import typing
import uuid
from datetime import date, datetime
from functools import cache

from pydantic.fields import FieldInfo

from shared.bus import EVENT_OWNERS
from shared.event_examples import EXAMPLE_DATE, EXAMPLE_TIME, FIELD_EXAMPLES, TYPE_EXAMPLES
from shared.events import (
    PAYLOAD_TYPES,
    TYPE_PREFIX,
    CloudEvent,
    EventPayload,
    UnknownEventType,
    dataschema_of,
    source_of,
)

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_TYPE = re.compile(r"^" + re.escape(TYPE_PREFIX) + r"(?P<name>[a-z][a-z-]*(?:\.[a-z][a-z-]*)+)\.v(?P<version>\d+)$")

# The attributes a subscription filter may name, in this order. ``type`` and ``source`` are on every envelope,
# ``subject`` on the envelope of every type whose payload names one; the others are read from ``data``, from the
# first of these fields the event carries (so a case event's unit is its community, and the district is the
# district of the unit where the event has no district code of its own). The subscription filter reads an
# event's attributes the same way: a type carries an attribute when its model has one of the fields.
FILTER_ATTRIBUTES = ("type", "source", "subject", "matter", "level", "unit", "district", "department", "case")
FILTER_ATTRIBUTE_FIELDS: dict[str, tuple[str, ...]] = {
    "matter": ("matter_code",),
    "level": ("level",),
    "unit": ("unit_code", "community_code", "district_code"),
    "district": ("district_code", "unit_code", "community_code"),
    "department": ("department_code",),
    "case": ("case_id",),
}


class ExampleGap(LookupError):
    """A required field that ``shared/event_examples.py`` gives no value for (or an example value for a field no
    model of the type has): the tables are incomplete, not the model."""


def _name_and_version(event_type: str) -> tuple[str, int]:
    match = _TYPE.match(event_type)
    if match is None:
        raise ValueError(f"{event_type!r} is not a cn.sanji.<noun>.<verb>.v<N> type")
    return match["name"], int(match["version"])


def _allows_none(field: FieldInfo) -> bool:
    annotation = field.annotation
    return (typing.get_origin(annotation) in (typing.Union, types.UnionType)
            and type(None) in typing.get_args(annotation))


def _carries_subject(model: type[EventPayload]) -> bool:
    return model.subject is not EventPayload.subject


def _filter_attribute_fields(model: type[EventPayload]) -> dict[str, list[str]]:
    """Each filter attribute the type carries, with the ``data`` fields (in order) its value is read from."""
    carried: dict[str, list[str]] = {"type": [], "source": []}
    if _carries_subject(model):
        carried["subject"] = []
    for attribute, fields in FILTER_ATTRIBUTE_FIELDS.items():
        present = [name for name in fields if name in model.model_fields]
        if present:
            carried[attribute] = present
    return {attribute: carried[attribute] for attribute in FILTER_ATTRIBUTES if attribute in carried}


def _optional_filter_attributes(model: type[EventPayload], carried: dict[str, list[str]]) -> list[str]:
    """The carried attributes that an event of the type may still lack: every field they are read from may be
    null (a 体验官 finding without an item, a report not yet tied to a case)."""
    return [attribute for attribute, fields in carried.items()
            if fields and all(_allows_none(model.model_fields[name]) for name in fields)]


def _fallback(model: type[EventPayload], name: str, field: FieldInfo):
    annotation = field.annotation
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)[0]
    if annotation is bool:
        return False
    if annotation is datetime:
        return EXAMPLE_TIME.isoformat().replace("+00:00", "Z")
    if annotation is date:
        return EXAMPLE_DATE.isoformat()
    if _allows_none(field):
        return None
    raise ExampleGap(f"{model.event_type}: no example value for the required field {name!r} "
                     "(add it to shared/event_examples.py)")


def _example_payload(model: type[EventPayload], name: str) -> EventPayload:
    for_type = TYPE_EXAMPLES.get(name, {})
    data = {}
    for field_name, field in model.model_fields.items():
        if field_name in for_type:
            data[field_name] = for_type[field_name]
        elif field.examples:
            data[field_name] = field.examples[0]
        elif field_name in FIELD_EXAMPLES:
            data[field_name] = FIELD_EXAMPLES[field_name]
        elif field.is_required():
            data[field_name] = _fallback(model, field_name, field)
    # The model is the judge: an example it refuses fails here, at build time (and in the tests).
    return model.model_validate(data)


def _example(model: type[EventPayload], name: str) -> tuple[dict, str]:
    payload = _example_payload(model, name)
    source = source_of(sorted(EVENT_OWNERS[model.event_type])[0])
    event = CloudEvent.wrap(payload, source=source, time=EXAMPLE_TIME,
                            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, dataschema_of(model.event_type))))
    return event.model_dump(mode="json"), payload.routing_key()


def _schema(model: type[EventPayload], deprecated: bool) -> dict:
    schema = model.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
    head = {"$schema": JSON_SCHEMA_DIALECT, "$id": dataschema_of(model.event_type)}
    if deprecated:
        head["deprecated"] = True
    return {**head, **schema}


def _summary(description: str) -> str:
    return " ".join(description.split("\n\n", 1)[0].split())


def _check_example_tables(versions: dict[str, list[int]]) -> None:
    for name, values in TYPE_EXAMPLES.items():
        if name not in versions:
            raise ExampleGap(f"shared/event_examples.py: {name!r} is no event type")
        fields = {field for version in versions[name]
                  for field in PAYLOAD_TYPES[f"{TYPE_PREFIX}{name}.v{version}"].model_fields}
        if unknown := set(values) - fields:
            raise ExampleGap(f"shared/event_examples.py: {name} has no field {sorted(unknown)}")


@cache
def _catalogue() -> tuple[dict, ...]:
    versions: dict[str, list[int]] = {}
    for event_type in PAYLOAD_TYPES:
        name, version = _name_and_version(event_type)
        versions.setdefault(name, []).append(version)
    _check_example_tables(versions)
    entries = []
    for event_type in sorted(PAYLOAD_TYPES):
        model = PAYLOAD_TYPES[event_type]
        name, version = _name_and_version(event_type)
        latest = max(versions[name])
        description = inspect.cleandoc(model.__dict__.get("__doc__") or "")
        carried = _filter_attribute_fields(model)
        example, routing_key = _example(model, name)
        entries.append({
            "type": event_type,
            "name": name,
            "version": version,
            "deprecated": version < latest,
            "superseded_by": f"{TYPE_PREFIX}{name}.v{latest}" if version < latest else None,
            "summary": _summary(description),
            "description": description,
            "routing_key": model.routing_key_template,
            "sources": [source_of(service) for service in sorted(EVENT_OWNERS[event_type])],
            "schema": _schema(model, deprecated=version < latest),
            "filter_attributes": list(carried),
            "optional_filter_attributes": _optional_filter_attributes(model, carried),
            "filter_attribute_fields": {attribute: fields for attribute, fields in carried.items() if fields},
            "example": example,
            "example_routing_key": routing_key,
        })
    return tuple(entries)


@cache
def _as_json() -> tuple[str, dict[str, str]]:
    """The catalogue as JSON text, whole and by type: each caller gets fresh objects from it (cheaper than a deep
    copy, and nothing a caller changes reaches the next one)."""
    entries = _catalogue()
    return json.dumps(entries, ensure_ascii=False), {entry["type"]: json.dumps(entry, ensure_ascii=False)
                                                     for entry in entries}


def _resolve(type_or_name: str) -> str | None:
    """The full type of ``cn.sanji.item.routed.v1``, ``item.routed.v1`` or ``item.routed`` (its latest version)."""
    full = type_or_name if type_or_name.startswith(TYPE_PREFIX) else TYPE_PREFIX + type_or_name
    if full in PAYLOAD_TYPES:
        return full
    versions = [entry["type"] for entry in _catalogue() if entry["name"] == type_or_name]
    return max(versions, key=lambda event_type: _name_and_version(event_type)[1]) if versions else None


def event_types() -> list[dict]:
    """Every event type, sorted by type; JSON as it stands (a copy: the caller may change it)."""
    return json.loads(_as_json()[0])


def event_type(type_or_name: str) -> dict | None:
    """One type's entry, by full type, by name and version (``item.routed.v1``) or by name alone (its latest
    version); None for a type there is not."""
    full = _resolve(type_or_name)
    if full is None:
        return None
    return json.loads(_as_json()[1][full])


def known_event_types() -> frozenset[str]:
    """The full CloudEvents types of every event on the bus."""
    return frozenset(PAYLOAD_TYPES)


def filter_attributes_of(type_or_name: str) -> tuple[str, ...]:
    """The attributes a subscription filter may use for a type (see ``FILTER_ATTRIBUTES``); raises
    ``UnknownEventType`` for a type there is not."""
    full = _resolve(type_or_name)
    if full is None:
        raise UnknownEventType(type_or_name)
    return tuple(_filter_attribute_fields(PAYLOAD_TYPES[full]))


def envelope_schema() -> dict:
    """The JSON Schema of the CloudEvents envelope (``data`` being any object; each type's entry has its own)."""
    return CloudEvent.model_json_schema(mode="serialization", ref_template="#/$defs/{model}")
