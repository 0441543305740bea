"""Every event the services publish, in any test, checked against docs/asyncapi.json.

The outbox relay is what puts the services' events on the bus. During the test run its producer is wrapped
(``watch_the_relay``), and each message it publishes is validated, envelope and ``data``, against the payload
schema of its channel in the committed AsyncAPI document, and its routing key against the channel's address.
A message that does not match fails the test that produced it (``PUBLISHED.take_problems``). At the end the
run says how many messages of how many event types were checked.
"""

from __future__ import annotations

import json
import re
import threading
from functools import cache

import jsonschema

from shared.config import REPO_ROOT


@cache
def asyncapi() -> dict:
    return json.loads((REPO_ROOT / "docs" / "asyncapi.json").read_text(encoding="utf-8"))


@cache
def _channels() -> dict[str, dict]:
    return {channel["messages"][name]["$ref"].rsplit("/", 1)[1]: channel
            for channel in asyncapi()["channels"].values() for name in channel["messages"]}


@cache
def message_validator(name: str) -> jsonschema.Validator:
    """A validator of one message's payload; its `#/components/...` references resolve in the document."""
    schema = {**asyncapi(), "$schema": "https://json-schema.org/draft/2020-12/schema",
              "$ref": f"#/components/messages/{name}/payload"}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def address_pattern(address: str) -> re.Pattern:
    return re.compile("^" + re.sub(r"\\\{[a-z_]+\\\}", "[^.]+", re.escape(address)) + "$")


def problems(routing_key: str, body: dict) -> list[str]:
    """Why a published message does not match the document (empty when it does)."""
    name = str(body.get("type", "")).removeprefix("cn.sanji.").replace(".", "_")
    channels = _channels()
    if name not in channels:
        return [f"{body.get('type')}: no channel in docs/asyncapi.json"]
    found = [f"{body['type']}: {'/'.join(map(str, error.absolute_path))}: {error.message}"
             for error in message_validator(name).iter_errors(body)]
    if not address_pattern(channels[name]["address"]).match(routing_key):
        found.append(f"{body['type']}: routing key {routing_key} is not of address {channels[name]['address']}")
    return found


class PublishedEvents:
    """What the relays published in this run: counts per type, and the problems not yet reported."""

    def __init__(self):
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self._problems: list[str] = []

    def check(self, routing_key: str, body) -> None:
        try:
            document = json.loads(body)
        except (TypeError, ValueError):
            found = [f"{routing_key}: the body is not JSON"]
            document = {}
        else:
            found = problems(routing_key, document)
        with self._lock:
            self.counts[str(document.get("type"))] = self.counts.get(str(document.get("type")), 0) + 1
            self._problems.extend(found)

    def take_problems(self) -> list[str]:
        with self._lock:
            found, self._problems = self._problems, []
        return found


PUBLISHED = PublishedEvents()


class _CheckingProducer:
    def __init__(self, producer):
        self._producer = producer

    def publish(self, body, *args, routing_key=None, **kwargs):
        PUBLISHED.check(routing_key, body)
        return self._producer.publish(body, *args, routing_key=routing_key, **kwargs)

    def __getattr__(self, name):
        return getattr(self._producer, name)


def watch_the_relay(monkeypatch_target) -> None:
    """Wrap OutboxRelay's producer so that each publish is checked first (``monkeypatch_target``: a
    pytest MonkeyPatch that lasts the session)."""
    from shared.relay import OutboxRelay

    ensure = OutboxRelay._ensure_producer

    def checking(self):
        return _CheckingProducer(ensure(self))

    monkeypatch_target.setattr(OutboxRelay, "_ensure_producer", checking)
