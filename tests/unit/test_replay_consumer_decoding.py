"""examples/replay_consumer.py takes the body out of a stored stream message itself (rstream's own decoder builds
every section as Python objects, several times slower): the same body as rstream's decoder, for every shape."""

from __future__ import annotations

import json

import pytest
from rstream import AMQPMessage, Properties, amqp_decoder

from examples.replay_consumer import amqp_body, event_of

EVENT = {"specversion": "1.0", "id": "5b0c…", "type": "cn.sanji.item.routed.v1", "data": {"unit": "馨合家园社区"}}
BODY = json.dumps(EVENT, ensure_ascii=False).encode()

# What RabbitMQ 3.10 stores for an AMQP 0-9-1 publish of b"x" * 10 to a stream through the default exchange
# (read back over the stream protocol): message annotations, then one data section.
BROKER_CONVERTED = b'\x00Sr\xc1"\x04\xa3\rx-routing-key\xa1\x02s1\xa3\nx-exchange\xa1\x00\x00Su\xa0\nxxxxxxxxxx'


def _decoded_body(data: bytes) -> bytes:
    body = amqp_decoder(data).body
    return b"".join(body) if isinstance(body, list) else bytes(body)


@pytest.mark.parametrize("message", [
    AMQPMessage(body=BODY),
    AMQPMessage(body=BODY, properties=Properties(message_id="e-1", content_type="application/cloudevents+json",
                                                 user_id=b"sanji-routing")),
    AMQPMessage(body=BODY * 300, properties=Properties(message_id="long"),  # a body past 255 bytes: vbin32
                application_properties={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01", "n": 7}),
])
def test_the_body_is_the_one_rstreams_decoder_finds(message):
    data = bytes(message)
    assert amqp_body(data) == _decoded_body(data)


def test_a_message_the_broker_converted_from_amqp_0_9_1():
    assert amqp_body(BROKER_CONVERTED) == b"x" * 10 == _decoded_body(BROKER_CONVERTED)


def test_an_event_is_its_json_and_a_raw_publish_is_its_own_body():
    assert event_of(bytes(AMQPMessage(body=BODY))) == EVENT
    assert amqp_body(BODY) == BODY


def test_a_truncated_or_foreign_encoding_is_refused_not_misread():
    with pytest.raises((ValueError, IndexError)):
        amqp_body(b"\x00Su\x01")
    with pytest.raises(ValueError):
        amqp_body(BROKER_CONVERTED[:-3])
