"""Kiosk load: single-matter submissions over HTTP keep-alive connections, each with a unique id.

Closed loop (as fast as the system answers, ``concurrency`` clients) or open loop (a fixed rate, for
latency measurements, so slow answers do not slow the arrivals down).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field

from shared.identity import make_valid_id_number

KIOSK_TOKEN = "dev-kiosk-xinhe"
COMMUNITY = "320113003021"
ID_NUMBER = make_valid_id_number("32011319900307123")


def submission_body(submission_id: str) -> bytes:
    return json.dumps({
        "community_code": COMMUNITY,
        "matters": ["employment-registration"],
        "applicant": {"name": "压测", "id_number": ID_NUMBER, "phone": "13900000000"},
        "materials": {"provided": ["id-card", "labour-contract"], "deferred": []},
        "channel": {"kind": "kiosk"},
        "description": f"load {submission_id}",
    }, ensure_ascii=False).encode()


@dataclass
class Submission:
    submission_id: str
    sent_at: float          # wall clock (time.time()), comparable with the services' UTC timestamps
    status: int | None = None
    case_id: str | None = None
    answered_at: float | None = None
    error: str | None = None


@dataclass
class LoadResult:
    submissions: list[Submission] = field(default_factory=list)
    started_at: float = 0.0
    ended_at: float = 0.0

    @property
    def acknowledged(self) -> list[Submission]:
        return [s for s in self.submissions if s.status == 201]


class KioskClient:
    def __init__(self, base_url: str):
        parsed = urllib.parse.urlparse(base_url)
        self.host, self.port = parsed.hostname, parsed.port
        self.connection: http.client.HTTPConnection | None = None

    def submit(self, submission: Submission, timeout: float = 30.0) -> Submission:
        body = submission_body(submission.submission_id)
        headers = {"Authorization": f"Bearer {KIOSK_TOKEN}", "Content-Type": "application/json",
                   "Idempotency-Key": submission.submission_id}
        for attempt in range(2):  # one reconnect: a keep-alive connection may have been closed by the server
            try:
                if self.connection is None:
                    self.connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
                self.connection.request("POST", "/v1/cases", body=body, headers=headers)
                response = self.connection.getresponse()
                payload = response.read()
                submission.status = response.status
                submission.answered_at = time.time()
                if response.status == 201:
                    submission.case_id = json.loads(payload)["case_id"]
                return submission
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                submission.error = f"{type(exc).__name__}: {exc}"
                if attempt == 1:
                    return submission
        return submission

    def close(self):
        if self.connection is not None:
            self.connection.close()
        self.connection = None


def closed_loop(base_urls: list[str], *, seconds: float, concurrency: int, progress=None) -> LoadResult:
    """``concurrency`` clients, each submitting again as soon as it is answered, for ``seconds``."""
    result = LoadResult(started_at=time.time())
    deadline = time.monotonic() + seconds
    lock = threading.Lock()

    def client_loop(index: int):
        client = KioskClient(base_urls[index % len(base_urls)])
        while time.monotonic() < deadline:
            submission = client.submit(Submission(str(uuid.uuid4()), time.time()))
            with lock:
                result.submissions.append(submission)
        client.close()

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    _report_progress(threads, result, progress)
    result.ended_at = time.time()
    return result


def open_loop(base_urls: list[str], *, seconds: float, rate: float, concurrency: int = 32, progress=None) -> LoadResult:
    """Submissions at a fixed ``rate`` per second, whatever the answer times (up to ``concurrency`` in flight)."""
    return _paced([n / rate for n in range(int(seconds * rate))], base_urls, concurrency, progress)


def poisson_loop(base_urls: list[str], *, seconds: float, rate: float, concurrency: int = 64, seed: int | None = None,
                 progress=None) -> LoadResult:
    """Submissions arriving as a Poisson process of ``rate`` per second for ``seconds`` (exponential gaps,
    drawn in advance), whatever the answer times: an arrival waits only when ``concurrency`` are in flight."""
    import random

    draw = random.Random(seed)
    offsets, at = [], draw.expovariate(rate)
    while at < seconds:
        offsets.append(at)
        at += draw.expovariate(rate)
    return _paced(offsets, base_urls, concurrency, progress)


def _paced(offsets: list[float], base_urls: list[str], concurrency: int, progress) -> LoadResult:
    """One submission at each offset (seconds from now), sent by ``concurrency`` clients taking the next one due."""
    result = LoadResult(started_at=time.time())
    lock = threading.Lock()
    next_offset = iter(offsets)
    start = time.monotonic()

    def client_loop(index: int):
        client = KioskClient(base_urls[index % len(base_urls)])
        while True:
            with lock:
                offset = next(next_offset, None)
            if offset is None:
                break
            delay = start + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            submission = client.submit(Submission(str(uuid.uuid4()), time.time()))
            with lock:
                result.submissions.append(submission)
        client.close()

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    _report_progress(threads, result, progress)
    result.ended_at = time.time()
    return result


def _report_progress(threads, result: LoadResult, progress) -> None:
    last = time.monotonic()
    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(timeout=0.5)
        if progress and time.monotonic() - last >= 5:
            last = time.monotonic()
            progress(len(result.submissions), len(result.acknowledged))
