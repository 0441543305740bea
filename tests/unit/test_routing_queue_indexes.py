"""The staff queue's indexes hold the open items: the list they are written with is the lifecycle's, and a
cursor survives its round trip while anything else is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.routing.adapters.orm import OPEN_STATUS_LIST, RoutedItem
from services.routing.item_actions import QueuePosition
from services.routing.lifecycle import OPEN_STATUSES
from services.routing.migrations import routing_0006_queue_indexes as migration
from services.routing.queue_cursor import BadCursor, decode_cursor, encode_cursor


def test_the_partial_indexes_name_exactly_the_open_statuses():
    assert list(OPEN_STATUS_LIST) == sorted(OPEN_STATUSES)
    assert migration._OPEN.text == "status IN (" + ", ".join(f"'{s}'" for s in sorted(OPEN_STATUSES)) + ")"
    predicates = {index.name: str(index.dialect_options["postgresql"]["where"])
                  for index in RoutedItem.__table__.indexes if index.dialect_options["postgresql"]["where"] is not None}
    assert predicates and all(predicate.startswith(migration._OPEN.text) for predicate in predicates.values())


def test_the_jurisdiction_columns_follow_the_unit():
    item = RoutedItem(unit_code="320113003021")
    assert (item.district_prefix, item.street_prefix) == ("320113", "320113003")
    item.unit_code = "320102000000"
    assert (item.district_prefix, item.street_prefix) == ("320102", "320102000")


def test_a_cursor_round_trips_and_nothing_else_is_one():
    position = QueuePosition(datetime(2026, 12, 3, 9, 30, tzinfo=UTC), "3f2b0c4e-1d2a-4c5b-9e8f-0a1b2c3d4e5f")
    assert decode_cursor(encode_cursor(position)) == position
    for bad in ("", "x" * 121, "%%%", "MjAyNi0xMi0wM1QwOTozMDowMHwx",
                "MjAyNi0xMi0wM1QwOTozMDowMCswMDowMHwnOyBkcm9wIHRhYmxl"):
        with pytest.raises(BadCursor):
            decode_cursor(bad)
