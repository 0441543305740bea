"""A department consumes its subscription's stream with the stream protocol (rstream) and a server-stored offset
(examples/subscription_offsets_consumer.py, run as the department runs it, as its own broker user): it stops,
events arrive, it restarts and gets exactly what it missed; a replay appends its scope again with the same ids,
which it dedupes. On the real broker and both databases."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import requests

from shared.config import REPO_ROOT
from tests.support.subscriptions import POLICE, XUANWU, item_event, publish, start_service, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def service(container_factory, make_service_config, scoped_bus):
    return start_service(container_factory, make_service_config, scoped_bus)


def run_consumer(scoped_bus, rabbit_config, stream: str, name: str, seen_file, *extra: str):
    police = scoped_bus.desks["dept-qixia-police"].user
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "subscription_offsets_consumer.py"), "--stream", stream,
         "--name", name, "--vhost", rabbit_config["vhost"], "--user", police,
         "--password", scoped_bus.passwords[police], "--seen-file", str(seen_file), "--idle-exit", "2", *extra],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def test_the_consumer_resumes_from_its_server_stored_offset_and_dedupes_a_replay(
        service, scoped_bus, rabbit_config, database_url, tmp_path):
    url, _ = service
    created = requests.post(f"{url}/v1/subscriptions", headers=POLICE, json={"sink": {"type": "queue"}})
    assert created.status_code == 201, created.text
    subscription = created.json()
    stream = subscription["sink"]["stream"]
    now = datetime.now(UTC).replace(microsecond=0)

    def delivered(count):
        page = requests.get(f"{url}/v1/subscriptions/{subscription['id']}/deliveries?status=delivered",
                            headers=POLICE).json()
        return page["counts"]["delivered"] >= count

    def outside_scope():
        return [item_event("housing"), item_event("police", district=XUANWU, unit="320102002000")]

    first = [item_event("police", time=now - timedelta(minutes=90 - i)) for i in range(3)]
    publish(scoped_bus, *first, *outside_scope())
    assert wait_until(lambda: delivered(3))
    seen = tmp_path / "police.seen"
    events, _ = run_consumer(scoped_bus, rabbit_config, stream, "police-cases", seen)
    assert [e["event"]["id"] for e in events] == [event[2] for event in first]

    # Down: the city goes on (and outside its scope too).
    missed = [item_event("police", time=now - timedelta(minutes=30 - i)) for i in range(4)]
    publish(scoped_bus, *missed, *outside_scope())
    assert wait_until(lambda: delivered(7))
    resumed, _ = run_consumer(scoped_bus, rabbit_config, stream, "police-cases", seen)
    assert [e["event"]["id"] for e in resumed] == [event[2] for event in missed]     # no gap, nothing twice
    assert min(e["offset"] for e in resumed) > max(e["offset"] for e in events)
    assert all(e["event"]["data"]["department_code"] == "police" and
               e["event"]["data"]["district_code"] == "320113000000" for e in resumed)
    nothing, _ = run_consumer(scoped_bus, rabbit_config, stream, "police-cases", seen)
    assert nothing == []

    # A replay from before the first events appends the scope to the stream again, with the same ids: the
    # consumer reads them (its offset moves on) and handles none twice.
    asked = requests.post(f"{url}/v1/subscriptions/{subscription['id']}/replay", headers=POLICE,
                          json={"from_time": (now - timedelta(hours=2)).isoformat()})
    assert asked.status_code == 202, asked.text

    def replay_done():
        view = requests.get(f"{url}/v1/subscriptions/{subscription['id']}/replays/{asked.json()['id']}",
                            headers=POLICE).json()
        return view if view["status"] == "done" else None
    view = wait_until(replay_done, timeout=30)
    assert view and view["events_matched"] == 7, view
    assert wait_until(lambda: not requests.get(f"{url}/v1/subscriptions/{subscription['id']}/deliveries",
                                               headers=POLICE).json()["deliveries"])
    again, report = run_consumer(scoped_bus, rabbit_config, stream, "police-cases", seen)
    assert again == [] and "skipped 7 duplicates" in report, report
    # Another consumer name (a new system seeded from the stream) reads each id once, the replayed copies
    # deduped: exactly the seven events of its scope.
    fresh, report = run_consumer(scoped_bus, rabbit_config, stream, "police-new-system", tmp_path / "new.seen")
    assert sorted(e["event"]["id"] for e in fresh) == sorted(event[2] for event in first + missed)
    assert "skipped 7 duplicates" in report, report
