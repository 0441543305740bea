"""The AsyncAPI 3.0 document for the events on the bus, built from the event catalogue (shared/event_catalogue.py):
the same types, the same JSON Schemas of their data and the same examples, from the payload models themselves."""

from __future__ import annotations

from shared.bus import EVENT_OWNERS
from shared.event_catalogue import envelope_schema, event_types
from shared.events import PAYLOAD_TYPES
from shared.topology import CONSUMER_QUEUES, EVENTS_EXCHANGE_NAME

COMPONENT_SCHEMAS = "#/components/schemas/"

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


def _refs_to_components(node):
    if isinstance(node, dict):
        return {key: (COMPONENT_SCHEMAS + value.removeprefix("#/$defs/") if key == "$ref" else
                      _refs_to_components(value)) for key, value in node.items()}
    if isinstance(node, list):
        return [_refs_to_components(value) for value in node]
    return node


def _as_component(schema: dict, name: str, components: dict) -> dict:
    """A catalogue schema (standalone, with its own ``$defs``) as the component ``name``: its definitions become
    components too, and its references point at them. Two types sharing a nested model share its component."""
    component = _refs_to_components({key: value for key, value in schema.items()
                                     if key not in ("$schema", "$id", "$defs")})
    for def_name, definition in schema.get("$defs", {}).items():
        _as_component(definition, def_name, components)
    if components.setdefault(name, component) != component:
        raise ValueError(f"two different schemas are both named {name}")
    return {"$ref": COMPONENT_SCHEMAS + name}


def message_name(event_type: str) -> str:
    """``cn.sanji.item.routed.v1`` → ``item_routed_v1``: the type's message and channel in the document."""
    return event_type.removeprefix("cn.sanji.").replace(".", "_")


def asyncapi_document(version: str = "1.0.0") -> dict:
    schemas: dict[str, dict] = {}
    envelope_ref = _as_component(envelope_schema(), "CloudEvent", schemas)
    channels, operations, messages = {}, {}, {}
    for entry in event_types():
        event_type = entry["type"]
        name = message_name(event_type)
        address = entry["routing_key"]
        parameters = {part[1:-1]: {"description": f"the event's {part[1:-1]}"}
                      for part in address.split(".") if part.startswith("{")}
        description = entry["description"] or entry["summary"]
        if entry["deprecated"]:
            description += f"\n\nDeprecated: superseded by {entry['superseded_by']}, published beside it."
        description += ("\n\nA subscription filter may use: " + ", ".join(entry["filter_attributes"]) + ".")
        messages[name] = {
            "name": event_type,
            "title": f"{entry['name']} v{entry['version']}",
            "summary": entry["summary"],
            "description": description,
            "contentType": "application/cloudevents+json",
            "payload": {"allOf": [envelope_ref,
                                  {"type": "object", "properties": {
                                      "type": {"const": event_type},
                                      "data": _as_component(entry["schema"], PAYLOAD_TYPES[event_type].__name__,
                                                            schemas)}}]},
            "examples": [{"name": "example", "summary": f"routing key {entry['example_routing_key']}",
                          "payload": entry["example"]}],
        }
        if entry["deprecated"]:
            messages[name]["deprecated"] = True
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
        "components": {"messages": messages, "schemas": dict(sorted(schemas.items()))},
    }
