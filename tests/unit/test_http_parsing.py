"""The common request-parsing layer refuses what no schema of ours accepts, before it can hurt: fast checks of
``shared.http`` (the same inputs go over real HTTP in tests/integration/test_hostile_input.py)."""

from __future__ import annotations

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from shared.http import MAX_JSON_DEPTH, ApiError, check_url, page_of, parse_json


def refusal(raw: bytes) -> tuple[int, str, str]:
    with pytest.raises(ApiError) as caught:
        parse_json(raw)
    error = caught.value
    fields = [e["field"] for e in error.details.get("errors", [])]
    return error.status, error.reason, ",".join(fields)


@pytest.mark.parametrize("raw, expected", [
    (b"[" * 10_000 + b"]" * 10_000, (400, "malformed_json", "")),
    (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, (400, "malformed_json", "")),
    (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), (400, "malformed_json", "")),
    (b'{"n": ' + b"9" * 5000 + b"}", (422, "validation_failed", "")),
    (b'{"n": -' + b"9" * 19 + b"}", (422, "validation_failed", "")),
    (b'{"n": 1e400}', (422, "validation_failed", "")),
    (b'{"n": NaN}', (400, "malformed_json", "")),
    (b'{"n": -Infinity}', (400, "malformed_json", "")),
    (b'{"applicant": {"name": "\\u5218\\u0000"}}', (422, "validation_failed", "applicant.name")),
    (b'{"list": ["ok", "\\ud800"]}', (422, "validation_failed", "list.1")),
    (b'{"k\\u0007": 1}', (422, "validation_failed", "<key>")),
    (b'{"note": "bell\\u0007"}', (422, "validation_failed", "note")),
    (b'{"note": "\x00"}', (400, "malformed_json", "")),
    (b'\xff\xfe{}', (400, "malformed_json", "")),
    (b'{"a": ', (400, "malformed_json", "")),
])
def test_hostile_documents_are_refused_with_a_reason(raw, expected):
    assert refusal(raw) == expected


def test_ordinary_documents_pass_brackets_in_strings_do_not_count_and_line_breaks_are_text():
    deep_looking = '{"note": "' + "[" * 1000 + '"}'
    assert parse_json(deep_looking.encode()) == {"note": "[" * 1000}
    nested = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse_json(nested.encode()) is not None
    assert parse_json('{"note": "第一行\\n第二行\\t完", "n": 123456789012345678, "f": 1.5}'.encode()) == {
        "note": "第一行\n第二行\t完", "n": 123456789012345678, "f": 1.5}
    assert parse_json(b'{"escaped": "a \\" [ quote"}') == {"escaped": 'a " [ quote'}


def request_for(query: str) -> Request:
    return Request(EnvironBuilder(path="/v1/items", query_string=query).get_environ())


@pytest.mark.parametrize("query", ["offset=" + "9" * 5000, "limit=" + "9" * 13, "offset=10000001", "offset=-1",
                                   "limit=0", "limit=201", "limit=ten", "limit=1e3"])
def test_paging_out_of_range_is_a_bad_query(query):
    with pytest.raises(ApiError) as caught:
        page_of(request_for(query))
    assert (caught.value.status, caught.value.reason) == (400, "invalid_query")


def test_paging_in_range():
    assert page_of(request_for("")) == (50, 0)
    assert page_of(request_for("limit=200&offset=10000000")) == (200, 10_000_000)


@pytest.mark.parametrize("query, path_parameters, expected", [
    ("", {"item_id": "a\x00b"}, (404, "not_found")),
    ("", {"item_id": "x" * 129}, (404, "not_found")),
    ("status=a%00b", {}, (400, "invalid_query")),
    ("a%00=1", {}, (400, "invalid_query")),
    ("matter=" + "m" * 257, {}, (400, "invalid_query")),
])
def test_ids_and_filters_with_control_characters_or_absurd_lengths_are_refused(query, path_parameters, expected):
    with pytest.raises(ApiError) as caught:
        check_url(request_for(query), path_parameters)
    assert (caught.value.status, caught.value.reason) == expected


def test_ordinary_ids_and_filters_pass():
    check_url(request_for("status=queued&matter=residence-permit&overdue=true"),
              {"item_id": "0c5bf0bb-6c25-47a4-afbf-9146bbb3aaaf", "action_name": "claim"})
