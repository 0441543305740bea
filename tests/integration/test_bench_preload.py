"""The bench's preload (bench/preload_items.py) writes what the services' migrations expect: COPY bypasses the
services, so a column a migration adds (routing's queue prefixes) or a count a service keeps (items per status)
must be filled by the preload itself, or `make bench` fails before it measures anything."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text

from bench.preload_items import load_items
from shared.db import normalise_url

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)   # COPY is PostgreSQL's
def test_preloaded_items_carry_their_queue_prefixes_and_are_counted_per_status(database_url):
    load_items(database_url, 60, say=lambda _: None)
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
