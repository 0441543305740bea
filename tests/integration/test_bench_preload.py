"""The bench's preload (bench/preload_items.py) writes what the services' migrations expect: COPY bypasses the
services, so a column a migration adds (routing's queue prefixes) or a count a service keeps (items per status)
must be filled by the preload itself, or `make bench` fails before it measures anything."""

from __future__ import annotations

import psycopg2.extensions
import pytest
from sqlalchemy import create_engine, text

from bench.preload_items import load_items
from shared.db import create_db_engine, normalise_url

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)   # COPY is PostgreSQL's
def test_preloaded_items_carry_their_queue_prefixes_and_are_counted_per_status(database_url):
    create_db_engine(database_url).dispose()   # as a service would: PostgreSQL made cooperative (psycogreen)
    cooperative = psycopg2.extensions.get_wait_callback()
    assert cooperative is not None
    load_items(database_url, 60, say=lambda _: None)
    # The preload ran without it, and gave it back: a process that preloads goes on cooperatively (without it,
    # two green threads of one process waiting on each other's row lock block the process for good).
    assert psycopg2.extensions.get_wait_callback() is cooperative
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            items, prefixed = connection.execute(text(
                "SELECT count(*), count(*) FILTER (WHERE district_prefix = substr(unit_code, 1, 6) "
                "AND street_prefix = substr(unit_code, 1, 9)) FROM routing_items")).one()
            counted = dict(connection.execute(text("SELECT status, items FROM routing_item_status_counts")).all())
            actual = dict(connection.execute(text(
                "SELECT status, count(*) FROM routing_items GROUP BY status")).all())
    finally:
        engine.dispose()
    assert (items, prefixed) == (60, 60)
    assert counted == actual and sum(counted.values()) == 60
