"""Browser tests: real Chromium (the Debian package) driven by Playwright's sync API, against the whole
system running in this process (intake, routing, escalation, notification, evaluation and console containers on the
test's vhost and database, like tests/e2e), all on one frozen clock the test can move.

Fixtures:
- ``browser`` (session): Chromium; the tests fail (never skip) when it, the CJK font or axe-core is missing
- ``page``: a fresh browser context at 1280x800, zh-CN; ``portrait_page``: 1080x1920 (a kiosk screen)
- ``sanji``: the running system (``SanjiSystem``): URLs, the clock, staff accounts, case submission,
  the escalation sweep
- ``axe_check(page)`` and ``screenshot(page, name)`` from tests/support/browser.py
"""

from __future__ import annotations

import json
import time

import eventlet
import pytest
import requests
from nameko.testing.services import entrypoint_hook
from nameko.testing.utils import find_free_port

from services.console.service import ConsoleService
from services.console.sessions import Accounts, store_for
from services.escalation.service import EscalationService
from services.evaluation.service import EvaluationService
from services.intake.service import IntakeService
from services.notification.service import NotificationService
from services.routing.service import RoutingService
from shared.clock import FrozenClock
from shared.config import REPO_ROOT
from shared.nameko_ext import ClockProvider
from tests.support.browser import DESKTOP, PASSWORD, PORTRAIT, launch, require_browser_tools, stop_driver
from tests.support.cases import APPLICANT_ID_NUMBER, APPLICANT_PHONE, XINHE_COMMUNITY, XINHE_KIOSK
from tests.support.playwright_thread import PlaywrightThread
from tests.support.routing_harness import at
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

@pytest.fixture(scope="session")
def browser():
    """Chromium driven from a native thread of its own (tests/support/playwright_thread.py): driven from a
    greenlet, a Playwright call can hang for good while this process serves the page it waits for."""
    require_browser_tools()
    runner = PlaywrightThread()
    playwright = runner.start()
    chromium = launch(playwright)
    yield chromium
    chromium.close()
    runner.stop(stop_driver)


def _new_page(browser, viewport):
    # bypass_csp: axe-core is injected as an inline script, which the pages' CSP refuses (rightly)
    context = browser.new_context(viewport=viewport, locale="zh-CN", timezone_id="Asia/Shanghai", bypass_csp=True)
    context.set_default_timeout(15000)
    return context, context.new_page()


@pytest.fixture
def page(browser):
    context, page = _new_page(browser, DESKTOP)
    yield page
    context.close()


@pytest.fixture
def portrait_page(browser):
    context, page = _new_page(browser, PORTRAIT)
    yield page
    context.close()


def on_clock(service_class, clock: FrozenClock, **extra):
    return type(f"{service_class.__name__}OnFrozenClock", (service_class,), {"clock": ClockProvider(clock), **extra})


class SanjiSystem:
    def __init__(self, *, clock, ports, database_url, escalation, container_config):
        self.clock, self.ports, self.database_url = clock, ports, database_url
        self.escalation_container = escalation
        self.console = f"http://127.0.0.1:{ports['console']}"
        self.intake = f"http://127.0.0.1:{ports['intake']}"
        self.routing = f"http://127.0.0.1:{ports['routing']}"
        self.evaluation = f"http://127.0.0.1:{ports['evaluation']}"
        self.store = store_for(database_url, str(REPO_ROOT / "catalogue" / "nanjing"), container_config, clock)

    def add_user(self, username: str, name: str, unit: str, roles, department: str | None = None) -> str:
        self.store.add_account(username=username, display_name=name, unit_code=unit, department=department,
                               roles=roles, password=PASSWORD)
        return username

    def submit(self, body: dict, headers=XINHE_KIOSK) -> dict:
        response = requests.post(f"{self.intake}/v1/cases", data=json.dumps(body, ensure_ascii=False).encode(),
                                 headers={"Content-Type": "application/json", **headers}, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()

    def routed_items(self, case_id: str, count: int | None = None, timeout: float = 15) -> dict[str, dict]:
        """matter code -> the case's item, once every item is routed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            case = requests.get(f"{self.intake}/v1/cases/{case_id}", headers=XINHE_KIOSK, timeout=5).json()
            if case["items"] and all(item["item_id"] for item in case["items"]):
                return {item["matter_code"]: item for item in case["items"]}
            eventlet.sleep(0.05)
        raise AssertionError("the case's items were not routed in time")

    def submit_complaint(self) -> str:
        """A 物业管理投诉 at 馨合家园: the community's internal loop, then the street with 吹哨."""
        receipt = self.submit({"community_code": XINHE_COMMUNITY, "matters": ["property-management-complaint"],
                               "applicant": {"name": "刘金花", "id_number": APPLICANT_ID_NUMBER,
                                             "phone": APPLICANT_PHONE},
                               "materials": {"provided": ["complaint-description", "on-site-photos"]},
                               "description": "小区电梯长期故障，物业不修"})
        return self.routed_items(receipt["case_id"])["property-management-complaint"]["item_id"]

    def sweep(self) -> dict:
        with entrypoint_hook(self.escalation_container, "fire_due_deadlines") as sweep:
            return sweep()

    def wait_until(self, check, timeout: float = 45, what: str = "condition"):
        return wait_until(check, timeout, what)


@pytest.fixture
def clock():
    return FrozenClock(at(2026, 11, 30, 9, 0))


@pytest.fixture
def sanji(container_factory, make_service_config, database_url, clock, tmp_path):
    """The whole system in this process, on the test's vhost and database, on one frozen clock."""
    ports = {name: find_free_port()
             for name in ("intake", "routing", "escalation", "notification", "evaluation", "console")}
    urls = {f"SANJI_CONSOLE_{name.upper()}_URL": f"http://127.0.0.1:{ports[name]}"
            for name in ("intake", "routing", "escalation", "notification", "evaluation")}
    common = {"SANJI_VAR_DIR": str(tmp_path)}
    containers = [
        container_factory(on_clock(IntakeService, clock), make_service_config("intake", ports["intake"], **common)),
        container_factory(on_clock(RoutingService, clock), make_service_config("routing", ports["routing"], **common)),
        container_factory(on_clock(EscalationService, clock), make_service_config(
            "escalation", ports["escalation"], SANJI_ESCALATION_SWEEP_SECONDS=3600, **common)),
        container_factory(on_clock(NotificationService, clock), make_service_config(
            "notification", ports["notification"], **common)),
        container_factory(on_clock(EvaluationService, clock), make_service_config(
            "evaluation", ports["evaluation"], SANJI_EVALUATION_SWEEP_SECONDS=3600, **common)),
    ]
    console_config = make_service_config("console", ports["console"], **common, **urls)
    containers.append(container_factory(on_clock(ConsoleService, clock, accounts=Accounts(clock)), console_config))
    for container in containers:
        container.start()
    return SanjiSystem(clock=clock, ports=ports, database_url=database_url, escalation=containers[2],
                       container_config=console_config)

