"""The chaos run's load: open-loop kiosk submissions (bundles and single matters) and staff working the items.

Submissions arrive at a fixed rate whatever the answer times. Half are 流动人口一件事 (four matters, one
material deferred under 容缺), half a single matter. Each has a phone number and an e-mail address of its
own, so the recorders outside the system can tell which case a message is about. A kiosk whose submission
failed (no answer, 5xx) retries with the same ``Idempotency-Key`` for up to two minutes, as a kiosk would.

Staff then work the acknowledged cases, a few seconds after they were submitted (so their actions fall
during the faults): claim, accept, record the deferred material, resolve; one case in four gets a
supplement request (补正) first, one in six is returned (退单) by its first unit and handled by the unit it
goes to instead, and one in five is left open (for the timers). Half of the open single matters get a manual
吹哨 from their street: the called department acknowledges (报到) every other one, and the rest are left for
their acknowledgement limit (a minute in the chaos run) to escalate them while the faults go on.

An action is driven by the item's status as routing reports it, so an action whose answer was lost is not
repeated blindly. Every action answered 200 is recorded: the checker expects its event and its messages
exactly once.
"""

from __future__ import annotations

import itertools
import queue
import random
import threading
import time
import uuid
from dataclasses import dataclass, field

import requests

from shared.identity import make_valid_id_number

KIOSK = {"Authorization": "Bearer dev-kiosk-xinhe"}
COMMUNITY = "320113003021"
READER = {"Authorization": "Bearer dev-staff-qixia"}
STREET_STAFF = {"Authorization": "Bearer dev-staff-maigaoqiao"}          # 迈皋桥街道, which blows the whistle
CALLED_DEPARTMENT = {"Authorization": "Bearer dev-dept-qixia-hrss"}      # 人社: its district system answers
STAFF_OF_UNIT = {"320113003021": "dev-staff-xinhe", "320113003000": "dev-staff-maigaoqiao",
                 "320113000000": "dev-staff-qixia"}
ID_NUMBER = make_valid_id_number("32011319900307123")
BUNDLE_PROVIDED = ["id-card", "photo", "rental-contract", "labour-contract", "landlord-property-certificate-copy",
                   "job-or-school-proof", "spouse-id-card", "education-certificate"]


@dataclass
class CaseTruth:
    """What the load did and was told for one submission: the ground truth the checker compares with."""

    submission_id: str
    phone: str
    email: str
    bundle: bool
    matters: int
    status: int | None = None
    case_id: str | None = None
    items: dict[str, str] = field(default_factory=dict)          # item_id -> matter
    actions: list[tuple[str, str]] = field(default_factory=list)  # (item_id, action) answered 200
    returns: int = 0
    plan: str = "complete"    # complete, supplement, return, open
    completed: bool = False   # every item resolved by an action answered 200
    ambiguous: int = 0        # actions whose answer was lost (their effect is then read back, not assumed)
    whistle: str | None = None    # "acknowledge", or "leave" to its limit: an open single matter the street whistles on
    calls: dict[str, str] = field(default_factory=dict)   # call id -> acknowledged, unanswered or ambiguous

    @property
    def acknowledged(self) -> bool:
        return self.status == 201


class MixedLoad:
    def __init__(self, intake_url: str, routing_urls: list[str], rate: float, staff_delay: float = 4.0,
                 staff_workers: int = 4, seed: int = 15, escalation_url: str | None = None):
        self.intake_url, self.routing_urls, self.rate = intake_url, routing_urls, rate
        self.escalation_url = escalation_url      # None: no 吹哨 (the self-test runs without escalation)
        self.last_whistle_at: float | None = None
        self.staff_delay, self.staff_workers = staff_delay, staff_workers
        self.cases: dict[str, CaseTruth] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._staff_stop = threading.Event()
        self._work: queue.Queue = queue.Queue()
        self._random = random.Random(seed)
        self._numbers = itertools.count(1)
        self._threads: list[threading.Thread] = []
        self._routing_turn = itertools.count()
        self.staff_errors: dict[str, int] = {}

    # ── submissions ──────────────────────────────────────────────────────────────────────────────

    def start(self) -> None:
        clients = 8
        for index in range(clients):
            self._threads.append(threading.Thread(target=self._submitter, args=(index, clients), daemon=True))
        for _ in range(self.staff_workers):
            self._threads.append(threading.Thread(target=self._staff, daemon=True))
        for thread in self._threads:
            thread.start()

    def _new_case(self) -> CaseTruth:
        with self._lock:
            number = next(self._numbers)
            bundle = number % 2 == 0
            plan = ("open" if number % 5 == 0 else "return" if number % 6 == 1 else
                    "supplement" if number % 4 == 3 else "complete")
        truth = CaseTruth(str(uuid.uuid4()), f"139{number:08d}", f"chaos-{number}@resident.example",
                          bundle, 4 if bundle else 1, plan=plan)
        if plan == "open" and not bundle and self.escalation_url:
            truth.whistle = "acknowledge" if number % 20 == 5 else "leave"   # what the department will do
        with self._lock:
            self.cases[truth.submission_id] = truth
        return truth

    def _body(self, truth: CaseTruth) -> dict:
        applicant = {"name": "压测", "id_number": ID_NUMBER, "phone": truth.phone, "email": truth.email}
        if truth.bundle:
            return {"community_code": COMMUNITY, "bundle": "migrant-bundle", "applicant": applicant,
                    "materials": {"provided": BUNDLE_PROVIDED, "deferred": ["landlord-id-copy"]},
                    "channel": {"kind": "kiosk"}, "description": f"chaos {truth.submission_id}"}
        return {"community_code": COMMUNITY, "matters": ["employment-registration"], "applicant": applicant,
                "materials": {"provided": ["id-card", "labour-contract"], "deferred": []},
                "channel": {"kind": "kiosk"}, "description": f"chaos {truth.submission_id}"}

    def _submitter(self, index: int, clients: int) -> None:
        period = clients / self.rate
        next_at = time.monotonic() + index * period / clients
        session = requests.Session()
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            next_at += period
            truth = self._new_case()
            retry_until = time.monotonic() + 120
            while time.monotonic() < retry_until:
                try:
                    answer = session.post(f"{self.intake_url}/v1/cases", json=self._body(truth), timeout=15,
                                          headers={**KIOSK, "Idempotency-Key": truth.submission_id})
                    truth.status = answer.status_code
                    if answer.status_code == 201:
                        truth.case_id = answer.json()["case_id"]
                        self._work.put((time.monotonic() + self.staff_delay, truth))
                        break
                    if answer.status_code < 500:
                        break
                except requests.RequestException:
                    session = requests.Session()
                time.sleep(0.5)  # intake down or restarting: the kiosk tries again with the same key

    def stop_submissions(self) -> None:
        self._stop.set()
        for thread in self._threads[:8]:
            thread.join(timeout=150)

    # ── staff ────────────────────────────────────────────────────────────────────────────────────

    def _routing(self) -> str:
        return self.routing_urls[next(self._routing_turn) % len(self.routing_urls)]

    def _staff(self) -> None:
        while not self._staff_stop.is_set():
            try:
                due, truth = self._work.get(timeout=0.5)
            except queue.Empty:
                continue
            if due > time.monotonic():
                time.sleep(min(due - time.monotonic(), 5))
            try:
                self._work_case(truth)
            except Exception as exc:  # noqa: BLE001 - a fault in the middle: try this case again later
                self._count(type(exc).__name__)
                if time.monotonic() - due < 240:
                    self._work.put((time.monotonic() + 3, truth))

    def _count(self, what: str) -> None:
        with self._lock:
            self.staff_errors[what] = self.staff_errors.get(what, 0) + 1

    def _items(self, truth: CaseTruth) -> dict[str, str]:
        case = requests.get(f"{self.intake_url}/v1/cases/{truth.case_id}", headers=KIOSK, timeout=10)
        case.raise_for_status()
        items = {item["item_id"]: item["matter_code"] for item in case.json()["items"] if item.get("item_id")}
        if len(items) < truth.matters:
            raise RuntimeError("not routed yet")
        return items

    def _item(self, item_id: str) -> dict:
        answer = requests.get(f"{self._routing()}/v1/items/{item_id}", headers=READER, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def _work_case(self, truth: CaseTruth) -> None:
        if truth.plan == "open" and truth.whistle:
            truth.items = truth.items or self._items(truth)
            self._whistle(truth, next(iter(truth.items)))
            return
        if truth.plan == "open" or truth.completed:
            return
        truth.items = truth.items or self._items(truth)
        first = sorted(truth.items)[0]
        done = 0
        for item_id, matter in sorted(truth.items.items()):
            if self._work_item(truth, item_id, matter, first_item=item_id == first):
                done += 1
        truth.completed = done == len(truth.items)
        if not truth.completed:
            raise RuntimeError("items not finished")

    def _work_item(self, truth: CaseTruth, item_id: str, matter: str, first_item: bool) -> bool:
        for _ in range(12):
            item = self._item(item_id)
            status, unit = item["status"], item["unit_code"]
            token = STAFF_OF_UNIT.get(unit)
            if status == "resolved":
                return True
            if status in ("rejected", "terminated") or token is None:
                self._count(f"item {status} at {unit}")
                return False
            owed = [m["material_code"] for m in item.get("deferred_materials", []) if m.get("state") == "pending"]
            recorded_returns = sum(1 for iid, action in truth.actions if (iid, action) == (item_id, "return"))
            if item.get("return_count", 0) > recorded_returns:
                # a return whose answer was lost (a 5xx after the commit, a broken connection) took effect: the item
                # is queued again at the unit it went to, so its status alone cannot tell; read back, not repeated
                taken = item["return_count"] - recorded_returns
                truth.actions.extend([(item_id, "return")] * taken)
                truth.returns += taken
            done = {action for (iid, action) in truth.actions if iid == item_id}
            if status == "queued" and truth.plan == "return" and first_item and "return" not in done:
                action, body = "return", {"reason_code": "wrong-level", "note": "chaos"}
            elif status == "queued":
                action, body = "claim", {}
            elif status == "claimed":
                action, body = "accept", {}
            elif (status == "accepted" and truth.plan == "supplement" and first_item
                  and "request-supplement" not in done):
                action, body = "request-supplement", {"materials": ["id-card"], "due_in_working_days": 5}
            elif status == "supplement_requested":
                action, body = "record-supplement", {"materials": ["id-card"]}
            elif status == "accepted" and owed:
                action, body = "record-supplement", {"materials": owed}
            elif status == "accepted":
                action, body = "resolve", {"result": "已办结",
                                            "delivery": {"method": "pickup", "place": "便民服务中心窗口"}}
            else:
                self._count(f"status {status}")
                return False
            try:
                answer = requests.post(f"{self._routing()}/v1/items/{item_id}/{action}", json=body,
                                       headers={"Authorization": f"Bearer {token}"}, timeout=10)
            except requests.RequestException:
                truth.ambiguous += 1
                time.sleep(0.5)
                continue
            if answer.status_code == 200:
                truth.actions.append((item_id, action))
                if action == "return":
                    truth.returns += 1
            elif answer.status_code >= 500:
                truth.ambiguous += 1
                time.sleep(0.5)
            else:
                self._count(f"{action} {answer.status_code} {answer.json().get('reason', '')}")
                time.sleep(0.5)
        return False

    # ── 吹哨 ─────────────────────────────────────────────────────────────────────────────────────────

    def _whistle(self, truth: CaseTruth, item_id: str) -> None:
        """The street calls the matter's department in on the open item (once: a second call is refused as
        already_called, and the calls are then read back); the department acknowledges, or is left to miss its
        limit. Raises to be tried again later while the item is unknown to escalation or an answer is lost."""
        if not truth.calls:
            answer = requests.post(f"{self.escalation_url}/v1/items/{item_id}/whistle", headers=STREET_STAFF,
                                   json={"reason": "chaos: 街道吹哨"}, timeout=10)
            if answer.status_code == 201:
                calls = answer.json()["calls"]
            elif answer.status_code == 409 and answer.json().get("reason") == "already_called":
                record = requests.get(f"{self.escalation_url}/v1/items/{item_id}/escalation", headers=STREET_STAFF,
                                      timeout=10)
                record.raise_for_status()
                calls = [call for call in record.json()["calls"] if call["caller_level"] == "street"]
            else:
                raise RuntimeError(f"whistle {answer.status_code}")   # e.g. 404 until escalation has the item
            truth.calls = {call["call_id"]: "unanswered" for call in calls}
            self.last_whistle_at = time.monotonic()
        if truth.whistle != "acknowledge":
            return
        for call_id, state in truth.calls.items():
            if state not in ("unanswered", "ambiguous"):
                continue
            try:
                answer = requests.post(f"{self.escalation_url}/v1/whistle-calls/{call_id}/acknowledge",
                                       headers=CALLED_DEPARTMENT, json={"note": "已报到"}, timeout=10)
            except requests.RequestException:
                answer = None
            if answer is None or answer.status_code >= 500:
                # it may have been taken: asked again, an acknowledged call answers with its acknowledgement
                truth.calls[call_id] = "ambiguous"
                raise RuntimeError("acknowledgement unanswered")
            if answer.status_code == 200:
                truth.calls[call_id] = "acknowledged"
            else:   # ack_limit_passed or call_escalated (the faults held the department up): the limit escalates it
                truth.calls[call_id] = "unanswered"
                self._count(f"acknowledge {answer.status_code} {answer.json().get('reason', '')}")

    def finish_staff(self, timeout: float) -> None:
        """Let the staff finish the cases in hand (no new submissions arrive), then stop them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (not self._work.empty()):
            time.sleep(1)
        self._staff_stop.set()
        for thread in self._threads[8:]:
            thread.join(timeout=30)

    def acknowledged(self) -> list[CaseTruth]:
        with self._lock:
            return [truth for truth in self.cases.values() if truth.acknowledged]
