"""The AsyncAPI 3.0 document for the events on the bus, generated from the payload models themselves."""

from __future__ import annotations

from pydantic.json_schema import models_json_schema

from shared.events import PAYLOAD_TYPES, CloudEvent
from shared.topology import EVENTS_EXCHANGE_NAME

SUBSCRIPTION_EXAMPLES = {
    "cn.sanji.item.routed.v1": [
        "item.*.320113000000.*.*.police  (栖霞区 公安: its items at every level)",
        "item.*.*.street.320113003000.*  (迈皋桥街道: everything at the street's desks)",
    ],
}


def asyncapi_document(version: str = "1.0.0") -> dict:
    payload_models = sorted(PAYLOAD_TYPES.values(), key=lambda model: model.event_type)
    refs, definitions = models_json_schema([(model, "serialization") for model in payload_models]
                                           + [(CloudEvent, "serialization")],
                                           ref_template="#/components/schemas/{model}")
    channels, operations, messages = {}, {}, {}
    for model in payload_models:
        event_type = model.event_type
        name = event_type.removeprefix("cn.sanji.").replace(".", "_")
        address = model.routing_key_template
        parameters = {part[1:-1]: {"description": f"the event's {part[1:-1]}"}
                      for part in address.split(".") if part.startswith("{")}
        messages[name] = {
            "name": event_type,
            "title": model.__doc__.strip().splitlines()[0] if model.__doc__ else event_type,
            "contentType": "application/cloudevents+json",
            "payload": {"allOf": [refs[(CloudEvent, "serialization")],
                                  {"type": "object", "properties": {
                                      "type": {"const": event_type},
                                      "data": refs[(model, "serialization")]}}]},
        }
        channel = {"address": address, "parameters": parameters,
                   "messages": {name: {"$ref": f"#/components/messages/{name}"}},
                   "bindings": {"amqp": {"is": "routingKey",
                                         "exchange": {"name": EVENTS_EXCHANGE_NAME, "type": "topic",
                                                      "durable": True, "autoDelete": False}}}}
        if event_type in SUBSCRIPTION_EXAMPLES:
            channel["description"] = "Bind with a topic pattern, e.g. " + "; ".join(SUBSCRIPTION_EXAMPLES[event_type])
        channels[name] = channel
        operations[f"receive_{name}"] = {"action": "receive", "channel": {"$ref": f"#/channels/{name}"}}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Sanji events", "version": version,
                 "description": "CloudEvents 1.0 (structured JSON) on the topic exchange "
                                f"{EVENTS_EXCHANGE_NAME}. Events carry codes and ids, never personal data. "
                                "Delivery is at least once: dedupe on source + id."},
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": definitions.get("$defs", {})},
    }
