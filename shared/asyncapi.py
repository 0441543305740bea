"""The AsyncAPI 3.0 document for the events on the bus, generated from the payload models themselves."""

from __future__ import annotations

from pydantic.json_schema import models_json_schema

from shared.bus import EVENT_OWNERS
from shared.events import PAYLOAD_TYPES, CloudEvent
from shared.topology import CONSUMER_QUEUES, EVENTS_EXCHANGE_NAME

SUBSCRIPTION_EXAMPLES = {
    "cn.sanji.item.routed.v1": [
        "item.*.320113000000.*.*.police  (栖霞区 公安: its items at every level)",
        "item.*.*.street.320113003000.*  (迈皋桥街道: everything at the street's desks)",
    ],
}


def _may_match(binding: list[str], key: list[str]) -> bool:
    """Whether a topic binding (``*`` one word, ``#`` any number) receives some routing key of a template whose
    ``{field}`` words stand for any word."""
    if not binding:
        return not key
    head, rest = binding[0], binding[1:]
    if head == "#":
        return any(_may_match(rest, key[skip:]) for skip in range(len(key) + 1))
    if not key:
        return False
    word = key[0]
    return (head == "*" or word.startswith("{") or head == word) and _may_match(rest, key[1:])


def consumer_queues_of(routing_key_template: str) -> list[str]:
    """The Sanji services' queues bound to a type's routing key."""
    key = routing_key_template.split(".")
    return [queue.name for queue in CONSUMER_QUEUES
            if any(_may_match(binding.split("."), key) for binding in queue.binding_keys)]


def consumers_of(routing_key_template: str) -> list[str]:
    """The Sanji services' queues bound to a type's routing key, as ``queue (service)``."""
    return [f"{queue} ({queue.split('.', 1)[0]})" for queue in consumer_queues_of(routing_key_template)]


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
        description = []
        if event_type in SUBSCRIPTION_EXAMPLES:
            description.append("Bind with a topic pattern, e.g. " + "; ".join(SUBSCRIPTION_EXAMPLES[event_type]) + ".")
        consumers = consumers_of(address)
        description.append("Consumed by: " + ", ".join(consumers) + "." if consumers
                           else "No Sanji service consumes it (for department systems and dashboards).")
        channel["description"] = " ".join(description)
        channels[name] = channel
        message_ref = [{"$ref": f"#/channels/{name}/messages/{name}"}]
        # Who sends it (shared/bus.py: the broker lets only these users publish its routing key) ...
        for service in sorted(EVENT_OWNERS[event_type]):
            operations[f"{service}_sends_{name}"] = {
                "action": "send", "channel": {"$ref": f"#/channels/{name}"}, "messages": message_ref,
                "title": f"{service} publishes {event_type}",
                "summary": f"The {service} service publishes it (through its outbox relay, as broker user "
                           f"sanji-{service}).",
            }
        # ... and which Sanji queues receive it (department systems bind queues of their own).
        for queue in consumer_queues_of(address):
            operations[f"{queue.replace('.', '_').replace('-', '_')}_receives_{name}"] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{name}"}, "messages": message_ref,
                "title": f"{queue} receives {event_type}",
                "summary": f"The {queue.split('.', 1)[0]} service consumes it from queue {queue}.",
                "bindings": {"amqp": {"ack": True}},
            }
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
