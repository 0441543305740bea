"""B, the raw broker baseline: what plain kombu gets through this broker on this machine.

A producer publishes 1 KB persistent JSON messages to a durable queue, waiting for each publisher
confirm; a consumer acks each one, at the same time. B is the number of messages per second consumed.
"""

from __future__ import annotations

import json
import threading
import time

from kombu import Connection, Exchange, Producer, Queue

PAYLOAD = json.dumps({"padding": "x" * 1000}).encode()[:1024]


def measure_raw_throughput(amqp_uri: str, seconds: float) -> dict:
    exchange = Exchange("bench.raw", type="direct", durable=True)
    queue = Queue("bench.raw", exchange=exchange, routing_key="bench.raw", durable=True)
    with Connection(amqp_uri) as setup:
        bound = queue(setup.default_channel)
        bound.declare()
        bound.purge()
    consumed = 0
    stop = threading.Event()

    def consume():
        nonlocal consumed
        with Connection(amqp_uri) as connection:
            def on_message(body, message):
                nonlocal consumed
                message.ack()
                consumed += 1

            with connection.Consumer(queue, callbacks=[on_message], accept=["json"]) as consumer:
                consumer.qos(prefetch_count=100)
                while not stop.is_set():
                    try:
                        connection.drain_events(timeout=0.5)
                    except TimeoutError:
                        continue

    consumer_thread = threading.Thread(target=consume, daemon=True)
    consumer_thread.start()
    time.sleep(0.5)
    published = 0
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        producer = Producer(connection.channel(), exchange=exchange)
        started = time.monotonic()
        consumed_at_start = consumed
        while time.monotonic() - started < seconds:
            producer.publish(PAYLOAD, routing_key="bench.raw", content_type="application/json",
                             content_encoding="utf-8", delivery_mode=2)
            published += 1
        elapsed = time.monotonic() - started
        consumed_in_window = consumed - consumed_at_start
    stop.set()
    consumer_thread.join(timeout=5)
    with Connection(amqp_uri) as cleanup:
        queue(cleanup.default_channel).delete()
        exchange(cleanup.default_channel).delete()
    return {"published": published, "consumed": consumed_in_window, "seconds": round(elapsed, 2),
            "msgs_per_s": round(consumed_in_window / elapsed, 1)}
