"""Bad input, every service: each running service is fuzzed from its own served OpenAPI document with schemathesis,
then sent the hostile requests a probe found (10,000-deep JSON, 5,000-digit numbers, NUL characters, unpaired
surrogates, huge strings and bodies, wrong content types), over real HTTP against the real broker and database.

Every answer must be a 4xx problem (application/problem+json with a machine-readable ``reason``) or a success,
never a 5xx and never a hang, and a refused request writes nothing: every table the HTTP API writes is counted
before and after. (``processed_messages`` is left out of the count: only consumers write it, and a service may
be taking in its own events in the background while the fuzzing goes on.)

The fuzzing is reproducible (``derandomize``) and bounded: about 150 generated requests per service, in both the
positive (fits the schema) and negative (violates it) modes, half of them aimed at ids that exist.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from sqlalchemy import create_engine, func, inspect, select, table, text

from services.escalation.service import EscalationService
from services.intake.service import IntakeService
from services.notification.service import NotificationService
from services.routing.service import RoutingService
from shared.clock import FrozenClock, new_id
from shared.db import normalise_url
from shared.events import CaseSubmittedV1, CloudEvent, ItemRoutedV1
from shared.nameko_ext import ClockProvider
from tests.support.bus import publish_raw
from tests.support.cases import XINHE_COMMUNITY, migrant_bundle
from tests.support.notification_fakes import envelope, sample
from tests.support.notification_harness import publish
from tests.support.routing_harness import at
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

GENERATED_PER_SERVICE = 150
TIMEOUT = 10  # seconds; a request that takes longer is a hang
NOT_WRITTEN_BY_HTTP = {"processed_messages", "alembic_version"}
TOKENS = {"intake": "Bearer dev-kiosk-xinhe", "routing": "Bearer dev-staff-qixia",
          "escalation": "Bearer dev-specialist-qixia", "notification": "Bearer dev-staff-qixia",
          "subscriptions": "Bearer dev-dept-qixia-housing"}
NOW = at(2026, 11, 30, 9, 0)


class RowCounter:
    """Rows per table, in one statement; ``close()`` gives its connection back (the PostgreSQL server is shared)."""

    def __init__(self, database_url: str):
        self.engine = create_engine(normalise_url(database_url))
        with self.engine.connect() as connection:
            self.tables = sorted(set(inspect(connection).get_table_names()) - NOT_WRITTEN_BY_HTTP)

        # One statement for every table: the fuzzer counts around each refused request.
        self.statement = select(*(select(func.count()).select_from(table(name)).scalar_subquery().label(name)
                                  for name in self.tables))

    def __call__(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return dict(connection.execute(self.statement).one()._mapping)

    def close(self) -> None:
        self.engine.dispose()


@pytest.fixture
def rows(database_url):
    counter = RowCounter(database_url)
    yield counter
    counter.close()


@dataclass
class Served:
    name: str
    base: str
    token: str
    known: dict[str, str] = field(default_factory=dict)   # path or query parameter -> an id that exists

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": self.token, **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.base}{path}", headers=headers, timeout=TIMEOUT, **kwargs)


def _start(service_class, name, container_factory, make_service_config, port, **overrides):
    container = container_factory(service_class, make_service_config(name, web_port=port, **overrides))
    container.start()
    return container


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def served(request, container_factory, make_service_config, web_config_port, rabbit_config, tmp_path, clock,
           database_url):
    """One running service (the test's parameter), with a few things in it whose ids the requests can aim at."""
    name = request.param
    frozen = clock
    base = f"http://127.0.0.1:{web_config_port}"
    amqp = rabbit_config["AMQP_URI"]
    if name == "intake":
        _start(IntakeService, name, container_factory, make_service_config, web_config_port)
        service = Served(name, base, TOKENS[name])
        created = service.request("POST", "/v1/cases", json=migrant_bundle(),
                                  headers={"Idempotency-Key": "hostile-seed"})
        assert created.status_code == 201, created.text
        service.known = {"case_id": created.json()["case_id"]}
    elif name == "routing":
        class RoutingOnFrozenClock(RoutingService):
            clock = ClockProvider(frozen)

        # No fold of the status counts in the background: its writes would look like a refused request's.
        container = _start(RoutingOnFrozenClock, name, container_factory, make_service_config, web_config_port,
                           SANJI_STATUS_FOLD_SECONDS=3600)
        from nameko.testing.services import entrypoint_waiter

        case_id = new_id()
        payload = CaseSubmittedV1(case_id=case_id, case_number="SJTEST-HOSTILE", community_code=XINHE_COMMUNITY,
                                  catalogue_version="test", bundle_code=None, matter_codes=("residence-permit",),
                                  channel="kiosk", applicant_masked_name="刘**", submitted_at=NOW)
        with entrypoint_waiter(container, "on_case_submitted"):
            publish_raw(amqp, CloudEvent.wrap(payload, source="/sanji/intake", time=NOW).model_dump_json(),
                        payload.routing_key())
        service = Served(name, base, TOKENS[name])
        items = service.request("GET", "/v1/items").json()["items"]
        service.known = {"item_id": items[0]["item_id"]}
    elif name == "escalation":
        class EscalationOnFrozenClock(EscalationService):
            clock = ClockProvider(frozen)

        _start(EscalationOnFrozenClock, name, container_factory, make_service_config, web_config_port,
               SANJI_ESCALATION_SWEEP_SECONDS=3600)
        service = Served(name, base, TOKENS[name])
        filed = service.request("POST", "/v1/failure-reports", json={
            "community_code": XINHE_COMMUNITY, "report_class": "simple", "cause_code": "attitude"})
        assert filed.status_code == 201, filed.text
        service.known = {"report_id": filed.json()["report_id"]}
    elif name == "subscriptions":
        from services.subscriptions.service import SubscriptionsService

        _start(SubscriptionsService, name, container_factory, make_service_config, web_config_port,
               SANJI_SUBSCRIPTIONS_SWEEP_SECONDS=3600)
        service = Served(name, base, TOKENS[name])
        created = service.request("POST", "/v1/subscriptions", json={
            "sink": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}})
        assert created.status_code == 201, created.text
        service.known = {"subscription_id": created.json()["id"], "case_id": new_id()}
    else:
        container = _start(NotificationService, name, container_factory, make_service_config, web_config_port,
                           SANJI_NOTIFICATION_SWEEP_SECONDS=3600, SANJI_VAR_DIR=str(tmp_path / "var"),
                           SANJI_NOTIFICATION_QUIET_HOURS="off")   # SMS tried at once at any hour of the run
        routed = sample(ItemRoutedV1.event_type, 0)
        publish(container, amqp, *envelope(routed, NOW))
        # Planning wakes the sweep, which makes each delivery's first attempt in the background: let it finish
        # before the requests are sent, or its writes look like a refused request's.
        wait_until(lambda: _first_attempts_made(database_url), timeout=30, what="the seeded deliveries' first attempts")
        service = Served(name, base, TOKENS[name])
        service.known = {"case_id": routed.case_id}
    return service


def _first_attempts_made(database_url: str) -> bool:
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            planned, waiting = connection.execute(text(
                "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM notification_attempts a "
                "WHERE a.delivery_id = d.id)) FROM notification_deliveries d WHERE d.channel <> 'inbox'")).one()
    finally:
        engine.dispose()
    return planned > 0 and waiting == 0


ALL_SERVICES = ["intake", "routing", "escalation", "notification", "subscriptions"]


def problem_of(response) -> dict:
    """The problem document of a refusal (a requests or a schemathesis response), checked for its shape."""
    content_type = response.headers.get("content-type") or response.headers.get("Content-Type")
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/problem+json"), response.headers
    problem = json.loads(response.content)
    assert isinstance(problem.get("reason"), str) and problem["status"] == response.status_code
    return problem


# ── Fuzzing each service's OpenAPI ──────────────────────────────────────────────────────────────────


def label_of(operation) -> str:
    return f"{operation.method.upper()} {operation.path}"


@pytest.mark.timeout(300)  # about 150 requests; on a busy two-core machine they may take a while
@pytest.mark.parametrize("served", ALL_SERVICES, indirect=True)
def test_fuzzing_the_openapi_gets_no_5xx_no_hang_and_refusals_write_nothing(served, rows):
    schema = schemathesis.openapi.from_url(f"{served.base}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    taking_input = [op for op in operations if op.path_parameters or op.query or op.body or op.headers]
    per_run = max(3, GENERATED_PER_SERVICE // (2 * len(taking_input)))
    counter = rows
    problems: list[str] = []
    skipped: list[str] = []
    sent = 0

    for operation in operations:
        path_names = {p.name for p in operation.path_parameters}
        query_names = {p.name for p in operation.query}
        aimed_path = {k: v for k, v in served.known.items() if k in path_names}
        aimed_query = {k: v for k, v in served.known.items() if k in query_names}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            if aimed_path or aimed_query:
                strategy = st.one_of(strategy, operation.as_strategy(
                    generation_mode=mode, path_parameters=aimed_path or None, query=aimed_query or None))

            @settings(max_examples=per_run, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            @given(case=strategy)
            def send(case):
                nonlocal sent
                before = counter()
                # Runs within this iteration (send() is called right below), so the loop variables are current.
                label = f"{mode.value} {operation.method.upper()} {case.formatted_path}"  # noqa: B023
                try:
                    response = case.call(base_url=served.base, headers={"Authorization": served.token},
                                         timeout=TIMEOUT)
                except requests.Timeout:
                    problems.append(f"{label}: no answer in {TIMEOUT}s")
                    return
                sent += 1
                if response.status_code >= 500:
                    problems.append(f"{label}: {response.status_code} {response.text[:200]}")
                elif response.status_code >= 400:
                    after = counter()
                    if after != before:
                        changed = {t: (before[t], after[t]) for t in after if after[t] != before[t]}
                        problems.append(f"{label}: refused with {response.status_code} but wrote {changed}")
                    if response.status_code not in (404, 405):  # werkzeug's own routing answers are plain
                        try:
                            problem_of(response)
                        except (AssertionError, KeyError, ValueError):
                            problems.append(f"{label}: {response.status_code} is not a problem document")

            try:
                send()
            except Unsatisfiable:
                # Nothing in the operation can be made invalid (the probes take no input): fine, not a finding.
                assert mode is GenerationMode.NEGATIVE, label_of(operation)
                skipped.append(label_of(operation))

    # The probes and the event catalogue's listing take no input, and the catalogue's one path parameter is any
    # string (an unknown one is a 404 problem, which the positive cases reach): nothing in them can be made invalid.
    assert set(skipped) <= {"GET /health", "GET /health/ready", "GET /health/live", "GET /v1/event-types",
                            "GET /v1/event-types/{event_type}"}, skipped
    assert sent >= GENERATED_PER_SERVICE * 0.8, f"only {sent} requests were generated"
    assert problems == [], "\n".join(problems[:20])
    health = requests.get(f"{served.base}/health", timeout=TIMEOUT)
    assert health.status_code == 200, health.text


# ── The probe's hostile requests, on every endpoint that takes a body ───────────────────────────────


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _deep_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def _replace_first_string(document, value):
    """The document with its first string field set to ``value`` (a field the schema accepts as text)."""
    if isinstance(document, dict):
        for key, inner in document.items():
            if isinstance(inner, str):
                return {**document, key: value}
            replaced = _replace_first_string(inner, value)
            if replaced is not inner:
                return {**document, key: replaced}
    if isinstance(document, list):  # a list of ids, say: its first string
        for index, inner in enumerate(document):
            replaced = value if isinstance(inner, str) else _replace_first_string(inner, value)
            if replaced is not inner:
                return [*document[:index], replaced, *document[index + 1:]]
    return document


# (name, body bytes or a function of the valid body, content type, expected statuses, expected reasons)
HOSTILE_BODIES = [
    ("10,000-deep arrays", lambda good: _deep(10_000), "application/json", {400}, {"malformed_json"}),
    ("10,000-deep objects", lambda good: _deep_objects(10_000), "application/json", {400}, {"malformed_json"}),
    ("33-deep arrays inside the body", lambda good: json.dumps({**good, "x": json.loads(_deep(33))}).encode(),
     "application/json", {400}, {"malformed_json"}),
    ("a 5,000-digit integer", lambda good: b'{"due_in_working_days": ' + b"9" * 5000 + b"}", "application/json",
     {422}, {"validation_failed"}),
    ("a 5,000-digit integer in an array", lambda good: b"[" + b"1" * 5000 + b"]", "application/json", {422},
     {"validation_failed"}),
    ("a float beyond range", lambda good: b'{"n": 1e99999}', "application/json", {422}, {"validation_failed"}),
    ("NaN", lambda good: b'{"n": NaN}', "application/json", {400}, {"malformed_json"}),
    ("NUL in a string", lambda good: json.dumps(_replace_first_string(good, "刘\u0000金花")).encode(),
     "application/json", {422}, {"validation_failed"}),
    ("NUL in a key", lambda good: json.dumps({**good, "na\u0000me": "x"}).encode(), "application/json", {422},
     {"validation_failed"}),
    ("an unpaired surrogate", lambda good: json.dumps(_replace_first_string(good, "\ud800")).encode(),
     "application/json", {422}, {"validation_failed"}),
    ("a raw NUL byte", lambda good: json.dumps(good).encode()[:-1] + b"\x00}", "application/json", {400},
     {"malformed_json"}),
    ("not UTF-8", lambda good: b'{"note": "\xff\xfe"}', "application/json", {400}, {"malformed_json"}),
    ("a 200,000-character string", lambda good: json.dumps(_replace_first_string(good, "x" * 200_000)).encode(),
     "application/json", {413}, {"payload_too_large"}),
    ("a 60,000-byte string", lambda good: json.dumps(_replace_first_string(good, "办" * 20_000),
                                                      ensure_ascii=False).encode(),
     "application/json", {422}, {"validation_failed"}),
    ("a megabyte of JSON", lambda good: b"[" + b"0," * 500_000 + b"0]", "application/json", {413},
     {"payload_too_large"}),
    ("plain text", lambda good: json.dumps(good).encode(), "text/plain", {415}, {"unsupported_media_type"}),
    ("XML", lambda good: b"<case><name>x</name></case>", "application/xml", {415}, {"unsupported_media_type"}),
    ("a form", lambda good: b"name=x&id=1", "application/x-www-form-urlencoded", {415}, {"unsupported_media_type"}),
    ("no content type", lambda good: json.dumps(good).encode(), None, {415}, {"unsupported_media_type"}),
    ("truncated JSON", lambda good: json.dumps(good).encode()[:-3], "application/json", {400}, {"malformed_json"}),
    ("a JSON array", lambda good: b"[]", "application/json", {422}, {"validation_failed"}),
    ("a JSON string", lambda good: b'"x"', "application/json", {422}, {"validation_failed"}),
]


def body_endpoints(served: Served) -> list[tuple[str, dict]]:
    """(path, a valid body) of every endpoint of the service that takes a JSON body."""
    if served.name == "intake":
        return [("/v1/cases", migrant_bundle()),
                ("/v1/failure-reports", {"community_code": XINHE_COMMUNITY, "reporter": {
                    "name": "刘金花", "phone": "13912345678"}, "description": "居住证跑了三次"})]
    if served.name == "routing":
        item = f"/v1/items/{served.known['item_id']}"
        return [(f"{item}/reject", {"reason_code": "not-eligible", "note": "居住时间不满半年"}),
                (f"{item}/request-supplement", {"materials": ["photo"], "note": "照片不清"}),
                (f"{item}/custody", {"step": "collected_at_home", "what": "身份证复印件"})]
    if served.name == "escalation":
        report = f"/v1/failure-reports/{served.known['report_id']}"
        return [("/v1/failure-reports", {"community_code": XINHE_COMMUNITY, "note": "窗口说材料不全"}),
                (f"{report}/close", {"outcome": "solved", "note": "当场解决"}),
                (f"{report}/contacts", {"department_code": "police", "channel": "phone", "note": "已电话联系"})]
    if served.name == "subscriptions":
        subscription = f"/v1/subscriptions/{served.known['subscription_id']}"
        return [("/v1/subscriptions", {"sink": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
                                       "filters": [{"prefix": {"type": "cn.sanji.item."}}]}),
                (f"{subscription}/redeliver", {"event_ids": [new_id()]}),
                (f"{subscription}/replay", {"from_time": "2026-12-01T08:00:00+08:00"})]
    return []


@pytest.mark.parametrize("served", ["intake", "routing", "escalation", "subscriptions"], indirect=True)
def test_hostile_bodies_are_refused_with_a_reason_and_write_nothing(served, rows):
    counter = rows
    before = counter()
    seen = 0
    endpoints = body_endpoints(served)
    for path, good in endpoints:
        for name, make, content_type, statuses, reasons in HOSTILE_BODIES:
            headers = {"Content-Type": content_type} if content_type else {}
            body = make(good)
            response = served.request("POST", path, data=body, headers=headers)
            assert response.status_code in statuses, (path, name, response.status_code, response.text[:300])
            assert problem_of(response)["reason"] in reasons, (path, name, response.text[:300])
            assert len(response.content) < 4096, (path, name)   # nothing of the input is echoed back
            seen += 1
    assert counter() == before
    assert seen == len(endpoints) * len(HOSTILE_BODIES) > 0


def test_a_nul_in_the_applicants_name_creates_no_case(served_intake, rows):
    """The probe's worst finding: on SQLite a NUL in the name was stored as a real case."""
    served = served_intake
    counter = rows
    before = counter()
    for field_path, value in [(("applicant", "name"), "刘\u0000金花"), (("applicant", "name"), "刘金花\u0007"),
                              (("description",), "流动人口\u0000一件事"), (("applicant", "id_number"), "\u0000" * 18)]:
        body = migrant_bundle()
        target = body
        for part in field_path[:-1]:
            target = target[part]
        target[field_path[-1]] = value
        response = served.request("POST", "/v1/cases", json=body, headers={"Idempotency-Key": new_id()})
        assert response.status_code == 422, response.text
        problem = problem_of(response)
        assert problem["reason"] == "validation_failed"
        assert problem["errors"][0]["field"] == ".".join(field_path) and "\u0000" not in response.text
    assert counter() == before


@pytest.fixture
def served_intake(container_factory, make_service_config, web_config_port):
    _start(IntakeService, "intake", container_factory, make_service_config, web_config_port)
    return Served("intake", f"http://127.0.0.1:{web_config_port}", TOKENS["intake"])


# ── Hostile URLs and headers ────────────────────────────────────────────────────────────────────────


def hostile_urls(served: Served) -> list[tuple[str, str, set[int]]]:
    """(method, path with query, acceptable statuses) aimed at each service's ids and filters."""
    nul, long_id, digits = "%00", "x" * 5000, "9" * 5000
    paths = {
        "intake": [("GET", f"/v1/cases/{nul}", {404}), ("GET", f"/v1/cases/{long_id}", {404}),
                   ("GET", f"/v1/cases/{served.known.get('case_id', 'x')}%00", {404})],
        "routing": [("GET", f"/v1/items/{nul}", {404}), ("POST", f"/v1/items/{long_id}/claim", {404}),
                    ("GET", f"/v1/items?status={nul}", {400}), ("GET", "/v1/items?matter=a%00b", {400}),
                    ("GET", f"/v1/items?offset={digits}", {400}), ("GET", "/v1/items?offset=99999999999", {400}),
                    ("GET", f"/v1/items?limit={digits}", {400}), ("GET", f"/v1/items?status={'s' * 5000}", {400, 414}),
                    ("GET", "/v1/items?overdue=%00", {400}), ("GET", "/v1/items?offset=-1", {400})],
        "escalation": [("GET", f"/v1/failure-reports/{nul}", {404}), ("GET", f"/v1/items/{nul}/escalation", {404}),
                       ("POST", f"/v1/whistle-calls/{nul}/acknowledge", {404}),
                       ("GET", f"/v1/failure-reports?status={nul}", {400}),
                       ("GET", f"/v1/failure-reports?offset={digits}", {400}),
                       ("GET", f"/v1/whistle-calls?state={nul}", {400}),
                       ("POST", f"/v1/failure-reports/{long_id}/close", {404})],
        "notification": [("GET", f"/v1/deliveries?case_id={nul}", {400}),
                         ("GET", f"/v1/deliveries?case_id={long_id}", {400, 414}),
                         ("GET", f"/v1/deliveries?case_id={served.known.get('case_id', 'x')}%00", {400}),
                         ("GET", f"/v1/inbox?unit={nul}", {400}), ("GET", f"/v1/inbox?offset={digits}", {400}),
                         ("GET", "/v1/inbox?offset=10000000000", {400}), ("GET", "/v1/inbox?limit=1e3", {400})],
        "subscriptions": [("GET", f"/v1/subscriptions/{nul}", {404}), ("GET", f"/v1/subscriptions/{long_id}", {404}),
                          ("DELETE", f"/v1/subscriptions/{nul}", {404}),
                          ("GET", f"/v1/subscriptions/{served.known.get('subscription_id', 'x')}/replays/{nul}",
                           {404}),
                          ("GET", f"/v1/subscriptions/{served.known.get('subscription_id', 'x')}/deliveries"
                                  f"?status={nul}", {400}),
                          ("GET", f"/v1/subscriptions/{served.known.get('subscription_id', 'x')}/deliveries"
                                  f"?offset={digits}", {400}),
                          ("GET", f"/v1/disclosures?case_id={nul}", {200, 400}),
                          ("GET", "/v1/disclosures?case_id=x&format=%00", {400}),
                          ("GET", f"/v1/event-types/{nul}", {404})],
    }
    return paths[served.name]


@pytest.mark.parametrize("served", ALL_SERVICES, indirect=True)
def test_hostile_ids_filters_and_headers_are_refused_without_a_5xx(served, rows):
    counter = rows
    before = counter()
    for method, path, statuses in hostile_urls(served):
        response = served.request(method, path, headers={"Content-Type": "application/json"})
        assert response.status_code in statuses, (path[:80], response.status_code, response.text[:300])
        if response.status_code != 414:   # the HTTP server's own refusal of a too-long URL
            problem_of(response)
    # A request id offered with control characters, or too long, is replaced by one of ours.
    method, path, _ = hostile_urls(served)[0]
    for offered, kept in (("abc\u0007def", False), ("r" * 500, False), ("ok-id-1", True)):
        response = served.request(method, path, headers={"X-Request-Id": offered})
        assert 400 <= response.status_code < 500
        assert (problem_of(response)["request_id"] == offered) is kept
    assert counter() == before


def test_an_idempotency_key_with_a_control_character_is_refused(served_intake, rows):
    counter = rows
    before = counter()
    for key in ("key\u0000one", "key\u0007two", "k" * 129):
        response = served_intake.request("POST", "/v1/cases", json=migrant_bundle(), headers={"Idempotency-Key": key})
        assert (response.status_code, problem_of(response)["reason"]) == (400, "invalid_idempotency_key")
    assert counter() == before
