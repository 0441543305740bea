"""The event catalogue (shared/event_catalogue.py): every payload class is in it, every example is valid by the
JSON Schema and by the model, the filter attributes are those the events really carry, and the AsyncAPI document
says the same."""

from __future__ import annotations

import json
import re
from typing import ClassVar

import jsonschema
import pytest

from shared.asyncapi import asyncapi_document, message_name
from shared.event_catalogue import (
    FILTER_ATTRIBUTE_FIELDS,
    FILTER_ATTRIBUTES,
    ExampleGap,
    _example_payload,
    envelope_schema,
    event_type,
    event_types,
    filter_attributes_of,
    known_event_types,
)
from shared.events import PAYLOAD_TYPES, CloudEvent, EventPayload, UnknownEventType
from tests.support.asyncapi_check import address_pattern, problems

ENTRIES = event_types()
BY_TYPE = {entry["type"]: entry for entry in ENTRIES}
FORMATS = jsonschema.Draft202012Validator.FORMAT_CHECKER


def validator(schema: dict) -> jsonschema.Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=FORMATS)


def payload_classes(base=EventPayload) -> set[type[EventPayload]]:
    """Every class in shared/events.py that names a type of its own (a concrete payload)."""
    found = set()
    for subclass in base.__subclasses__():
        if "event_type" in subclass.__dict__ and subclass.__module__ == "shared.events":
            found.add(subclass)
        found |= payload_classes(subclass)
    return found


def test_every_payload_class_is_in_the_catalogue_once_and_sorted():
    classes = payload_classes()
    assert len(classes) == len(PAYLOAD_TYPES) == 42
    assert {model.event_type for model in classes} == set(PAYLOAD_TYPES) == known_event_types() == set(BY_TYPE)
    assert [entry["type"] for entry in ENTRIES] == sorted(PAYLOAD_TYPES)
    assert json.loads(json.dumps(ENTRIES, ensure_ascii=False)) == ENTRIES  # JSON as it stands


def test_each_entry_names_its_type_version_routing_key_and_description():
    for model in PAYLOAD_TYPES.values():
        entry = BY_TYPE[model.event_type]
        assert entry["type"] == f"cn.sanji.{entry['name']}.v{entry['version']}"
        assert entry["routing_key"] == model.routing_key_template
        assert entry["schema"]["$id"] == f"urn:sanji:schema:{model.event_type}"
        assert entry["schema"]["properties"].keys() == model.model_fields.keys()
        # Its own docstring, not an inherited or empty one.
        assert model.__dict__.get("__doc__") and entry["description"] and entry["summary"], model.__name__
        assert entry["sources"] and all(source.startswith("/sanji/") for source in entry["sources"])
    routed = BY_TYPE["cn.sanji.item.routed.v1"]
    assert (routed["name"], routed["version"]) == ("item.routed", 1)
    assert routed["routing_key"] == "item.routed.{district_code}.{level}.{unit_code}.{department_code}"
    assert routed["sources"] == ["/sanji/routing"]


@pytest.mark.parametrize("type_", sorted(PAYLOAD_TYPES))
def test_the_example_is_valid_by_the_schema_and_by_the_model(type_):
    entry, model = BY_TYPE[type_], PAYLOAD_TYPES[type_]
    example = entry["example"]
    assert list(validator(entry["schema"]).iter_errors(example["data"])) == []
    assert list(validator(envelope_schema()).iter_errors(example)) == []
    # Round trip through pydantic: the envelope, then the typed payload, give the same JSON back.
    event = CloudEvent.model_validate(example)
    payload = event.payload()
    assert type(payload) is model
    assert payload.model_dump(mode="json") == example["data"]
    assert event.model_dump(mode="json") == example
    assert (event.type, event.subject, event.dataschema) == (type_, payload.subject(), entry["schema"]["$id"])
    assert event.source in entry["sources"]
    assert entry["example_routing_key"] == payload.routing_key()
    assert address_pattern(entry["routing_key"]).match(entry["example_routing_key"])
    # And the committed AsyncAPI document accepts it, as it does every event the services publish in the tests.
    assert problems(entry["example_routing_key"], example) == []


def test_the_schema_is_no_formality():
    entry = BY_TYPE["cn.sanji.case.submitted.v1"]
    check = validator(entry["schema"])
    data = entry["example"]["data"]
    assert list(check.iter_errors({**data, "id_number": "11010519491231002X"}))  # extra="forbid"
    assert list(check.iter_errors({key: value for key, value in data.items() if key != "case_id"}))
    assert list(check.iter_errors({**data, "community_code": "3201"}))
    assert list(check.iter_errors({**data, "submitted_at": "yesterday"}))  # formats are checked


def test_the_examples_carry_no_personal_data():
    text = json.dumps([entry["example"] for entry in ENTRIES], ensure_ascii=False)
    assert not re.search(r"\b\d{17}[\dXx]\b", text)  # an ID number
    assert not re.search(r"\b1[3-9]\d{9}\b", text)   # a mobile phone
    masked = {entry["example"]["data"]["applicant_masked_name"] for entry in ENTRIES
              if "applicant_masked_name" in entry["example"]["data"]}
    assert masked == {"刘**"}


def test_a_required_field_without_an_example_value_is_named():
    class GapV1(EventPayload):
        """A type whose required text the example tables do not know."""

        event_type: ClassVar[str] = "cn.sanji.gap.found.v1"
        routing_key_template: ClassVar[str] = "gap.found"
        mystery_text: str

    with pytest.raises(ExampleGap, match="mystery_text"):
        _example_payload(GapV1, "gap.found")


def test_filter_attributes_of_a_few_types_checked_by_hand():
    everything = ("type", "source", "subject", "matter", "level", "unit", "district", "department", "case")
    assert filter_attributes_of("cn.sanji.item.routed.v1") == everything
    assert filter_attributes_of("cn.sanji.whistle.called.v1") == everything
    # A case is not at a level nor with a department; its matters are a list, not the matter attribute.
    assert filter_attributes_of("cn.sanji.case.submitted.v1") == ("type", "source", "subject", "unit", "district",
                                                                  "case")
    # An order up the line names only its district (the unit attribute is then the district itself).
    assert filter_attributes_of("cn.sanji.escalation.ordered.v1") == ("type", "source", "subject", "unit",
                                                                      "district")
    assert filter_attributes_of("cn.sanji.report.assigned.v1") == ("type", "source", "subject", "unit", "district")
    assert filter_attributes_of("cn.sanji.report.contact-recorded.v1") == ("type", "source", "subject", "unit",
                                                                           "district", "department")
    assert BY_TYPE["cn.sanji.report.filed.v1"]["optional_filter_attributes"] == ["matter", "level", "department",
                                                                                 "case"]
    assert BY_TYPE["cn.sanji.rectification.opened.v2"]["optional_filter_attributes"] == ["matter", "case"]
    assert BY_TYPE["cn.sanji.case.submitted.v1"]["filter_attribute_fields"] == {
        "unit": ["community_code"], "district": ["community_code"], "case": ["case_id"]}
    assert filter_attributes_of("item.routed") == everything  # by name as well


def attributes_of(example: dict) -> set[str]:
    """The filter attributes an event actually has a value for, read as FILTER_ATTRIBUTE_FIELDS says."""
    present = {name for name in ("type", "source", "subject") if example.get(name)}
    data = example["data"]
    present |= {attribute for attribute, fields in FILTER_ATTRIBUTE_FIELDS.items()
                if any(isinstance(data.get(name), str) and data.get(name) for name in fields)}
    return present


@pytest.mark.parametrize("type_", sorted(PAYLOAD_TYPES))
def test_the_filter_attributes_are_those_the_events_carry(type_):
    entry = BY_TYPE[type_]
    attributes = set(entry["filter_attributes"])
    assert tuple(entry["filter_attributes"]) == filter_attributes_of(type_)
    assert [name for name in FILTER_ATTRIBUTES if name in attributes] == entry["filter_attributes"]
    assert set(entry["optional_filter_attributes"]) <= attributes
    assert attributes - set(entry["optional_filter_attributes"]) <= attributes_of(entry["example"]) <= attributes
    # An event with null in every field its schema allows null in still has every attribute that is not optional.
    nullable = [name for name, schema in entry["schema"]["properties"].items()
                if {"type": "null"} in schema.get("anyOf", [])]
    nulled = {**entry["example"], "data": {**entry["example"]["data"], **dict.fromkeys(nullable)}}
    PAYLOAD_TYPES[type_].model_validate(nulled["data"])
    assert attributes - set(entry["optional_filter_attributes"]) <= attributes_of(nulled)


def test_a_superseded_version_is_deprecated_and_names_its_successor():
    for name in ("rectification.opened", "rectification.closed"):
        old, new = BY_TYPE[f"cn.sanji.{name}.v1"], BY_TYPE[f"cn.sanji.{name}.v2"]
        assert (old["deprecated"], old["superseded_by"], old["schema"].get("deprecated")) == (
            True, f"cn.sanji.{name}.v2", True)
        assert (new["deprecated"], new["superseded_by"], "deprecated" in new["schema"]) == (False, None, False)
        assert old["routing_key"] == new["routing_key"]  # published side by side
    assert sum(entry["deprecated"] for entry in ENTRIES) == 2


def test_one_type_by_full_type_by_name_and_version_or_by_name():
    assert event_type("cn.sanji.item.routed.v1") == BY_TYPE["cn.sanji.item.routed.v1"]
    assert event_type("item.routed.v1")["type"] == "cn.sanji.item.routed.v1"
    assert event_type("rectification.opened")["type"] == "cn.sanji.rectification.opened.v2"  # the latest
    assert event_type("rectification.opened.v1")["type"] == "cn.sanji.rectification.opened.v1"
    for unknown in ("cn.sanji.item.routed.v9", "item", "item.routed.", "", "cn.sanji."):
        assert event_type(unknown) is None
        with pytest.raises(UnknownEventType):
            filter_attributes_of(unknown)


def test_the_caller_gets_a_copy():
    event_types()[0]["schema"]["properties"].clear()
    event_type("item.routed")["example"]["data"]["item_id"] = "changed"
    assert event_types() == ENTRIES
    assert event_type("item.routed")["example"]["data"]["item_id"] != "changed"


def resolved(schema, components: dict, defs: dict):
    """An AsyncAPI component schema with its references to other components gathered back as ``$defs``."""
    if isinstance(schema, list):
        return [resolved(value, components, defs) for value in schema]
    if not isinstance(schema, dict):
        return schema
    if set(schema) == {"$ref"}:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        if name not in defs:
            defs[name] = None
            defs[name] = resolved(components[name], components, defs)
        return {"$ref": f"#/$defs/{name}"}
    return {key: resolved(value, components, defs) for key, value in schema.items()}


def test_the_asyncapi_document_says_what_the_catalogue_says():
    document = asyncapi_document()
    components = document["components"]["schemas"]
    assert set(document["components"]["messages"]) == {message_name(entry["type"]) for entry in ENTRIES}
    for entry in ENTRIES:
        message = document["components"]["messages"][message_name(entry["type"])]
        assert message["name"] == entry["type"]
        assert message["examples"][0]["payload"] == entry["example"]
        assert message.get("deprecated", False) == entry["deprecated"]
        assert document["channels"][message_name(entry["type"])]["address"] == entry["routing_key"]
        envelope, data = message["payload"]["allOf"]
        assert data["properties"]["type"] == {"const": entry["type"]}
        defs: dict = {}
        top = resolved(data["properties"]["data"], components, defs)
        standalone = defs.pop(top["$ref"].removeprefix("#/$defs/"))
        expected = {key: value for key, value in entry["schema"].items() if key not in ("$schema", "$id")}
        assert ({**standalone, "$defs": defs} if defs else standalone) == expected
        assert resolved(envelope, components, {}) == {"$ref": "#/$defs/CloudEvent"}
    assert components["CloudEvent"] == envelope_schema()


def test_every_data_field_a_filter_reads_is_a_field_of_some_event():
    fields = {name for model in PAYLOAD_TYPES.values() for name in model.model_fields}
    assert {name for names in FILTER_ATTRIBUTE_FIELDS.values() for name in names} <= fields
