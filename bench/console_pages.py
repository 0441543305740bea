"""`make bench-console`: how fast the console's pages answer (p95 target: under 200 ms).

How it measures (printed with the figures):
- The whole system runs as `sanji serve` processes (intake, routing, escalation, notification, evaluation, console)
  on a throwaway RabbitMQ vhost and a fresh PostgreSQL database, as in production.
- Bench data set: CASES submissions of 流动人口一件事 (four matters each) by the 馨合家园 kiosk over HTTP,
  so the 迈皋桥街道 queue holds 2 x CASES items and the 社区 the other 2 x CASES; the run waits until
  every item is routed.
- A window clerk of 迈皋桥街道 and a supervisor sign in through the login form (argon2 password check).
  Each page is then fetched REQUESTS times in a row over one keep-alive connection, after 3 warm-up
  requests; the time is from sending the request to having the whole body (requests' elapsed plus the
  body read), measured on this machine, so it includes the console's own calls to routing, escalation
  and notification with a fresh person assertion each.
- The last line printed is one JSON object with p50/p95/max per page in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time

import requests

from bench.stack import ServiceProcess, Stack, free_port
from shared.migrate import migrate

SERVICES = ("intake", "routing", "escalation", "notification", "evaluation", "console")
KIOSK = {"Authorization": "Bearer dev-kiosk-xinhe"}
PASSWORD = "bench-password-2026"  # noqa: S105 - a throwaway database's accounts


def submit_cases(intake: str, count: int) -> list[str]:
    body = {"community_code": "320113003021", "bundle": "migrant-bundle",
            "applicant": {"name": "刘金花", "id_number": "11010519491231002X", "phone": "13812345678"},
            "materials": {"provided": ["id-card", "photo", "rental-contract", "labour-contract",
                                       "landlord-property-certificate-copy", "job-or-school-proof",
                                       "spouse-id-card", "education-certificate"],
                          "deferred": ["landlord-id-copy"]}}
    session, cases = requests.Session(), []
    for index in range(count):
        response = session.post(f"{intake}/v1/cases", json=body, timeout=10,
                                headers={**KIOSK, "Idempotency-Key": f"bench-console-{index}"})
        response.raise_for_status()
        cases.append(response.json()["case_id"])
    deadline = time.monotonic() + 120
    for case_id in cases:
        while True:
            items = session.get(f"{intake}/v1/cases/{case_id}", headers=KIOSK, timeout=10).json()["items"]
            if all(item["item_id"] for item in items):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("items were not routed within 120 s")
            time.sleep(0.1)
    return cases


def signed_in(console: str, username: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{console}/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = session.post(f"{console}/login", data={"csrf_token": token, "username": username,
                                                       "password": PASSWORD, "next": "/"}, timeout=10)
    if "/login" in response.url:
        raise RuntimeError(f"{username} could not sign in")
    return session


def timed(session: requests.Session, url: str, requests_count: int) -> list[float]:
    for _ in range(3):
        session.get(url, timeout=10)
    times = []
    for _ in range(requests_count):
        started = time.perf_counter()
        response = session.get(url, timeout=10)
        _ = response.content
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200 or response.history:
            # A redirect (to the login page, say) would time the wrong page.
            raise RuntimeError(f"{url} answered {response.status_code} after {len(response.history)} redirect(s)")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=250)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args(argv)

    stack = Stack("console", replicas={}, extra_env={"SANJI_NOTIFICATION_QUIET_HOURS": "off"})
    stack.create()
    try:
        for service in ("escalation", "evaluation", "console"):
            migrate(service, stack.database_url)
        processes = {service: ServiceProcess(service, 0, free_port()) for service in SERVICES}
        stack.extra_env.update({f"SANJI_CONSOLE_{name.upper()}_URL": f"http://127.0.0.1:{proc.port}"
                                for name, proc in processes.items() if name != "console"})
        for proc in processes.values():
            stack.start_process(proc)
        stack.wait_healthy(90)
        url = {name: f"http://127.0.0.1:{proc.port}" for name, proc in processes.items()}

        from services.console.sessions import store_for
        from shared.config import REPO_ROOT, development_assertion_key

        store = store_for(stack.database_url, str(REPO_ROOT / "catalogue" / "nanjing"),
                          config={"SANJI_ASSERTION_KEY": development_assertion_key()})
        store.add_account(username="bench-window", display_name="王窗口", unit_code="320113003000", department=None,
                          roles=["window"], password=PASSWORD)
        store.add_account(username="bench-supervisor", display_name="李督办", unit_code="320113003000",
                          department=None, roles=["supervisor"], password=PASSWORD)
        submit_cases(url["intake"], args.cases)
        clerk, supervisor = signed_in(url["console"], "bench-window"), signed_in(url["console"], "bench-supervisor")
        first_item = re.search(r'href="/staff/items/([0-9a-f-]+)"', clerk.get(f"{url['console']}/staff/queue").text)
        pages = {
            "login": (requests.Session(), "/login"),
            "staff queue": (clerk, "/staff/queue"),
            "staff queue, overdue filter": (clerk, "/staff/queue?overdue=true"),
            "item": (clerk, f"/staff/items/{first_item.group(1)}"),
            "inbox": (clerk, "/staff/inbox"),
            "supervisor desk": (supervisor, "/supervisor"),
            "supervisor report": (supervisor, "/supervisor/report"),
            "unit 整改与督办": (clerk, "/staff/feedback"),
            "public circle": (requests.Session(),
                              "/circle?matter=vocational-training-signup&place=community&community=320113003021"),
            "resident lookup form": (requests.Session(), "/lookup"),
        }
        figures = {}
        print("How it measures" + __doc__.split("How it measures")[1].rstrip())
        print(f"\ndata set: {args.cases} cases ({4 * args.cases} items); {args.requests} requests per page\n")
        for name, (session, path) in pages.items():
            times = sorted(timed(session, url["console"] + path, args.requests))
            figures[name] = {"p50_ms": round(statistics.median(times), 1),
                             "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1),
                             "max_ms": round(times[-1], 1)}
            print(f"{name:30s} p50 {figures[name]['p50_ms']:7.1f} ms   p95 {figures[name]['p95_ms']:7.1f} ms   "
                  f"max {figures[name]['max_ms']:7.1f} ms")
        worst = max(f["p95_ms"] for f in figures.values())
        print(f"\nworst p95 {worst:.1f} ms: {'within' if worst < 200 else 'OVER'} the 200 ms target")
        print(json.dumps({"cases": args.cases, "requests": args.requests, "pages": figures}, ensure_ascii=False))
        return 0 if worst < 200 else 1
    finally:
        stack.stop()
        stack.destroy()


if __name__ == "__main__":
    sys.exit(main())
