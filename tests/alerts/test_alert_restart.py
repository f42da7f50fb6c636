"""An agent SIGKILLed while alerts fire and notifications wait for retry loses none and repeats at most the one in
flight per kill; the webhook receiver counts every delivery."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from pathlib import Path

from loopback_servers import LoopbackServer, Reply, serve_http

from crucible_monitor.storage.state import StateDB

RUNNER = Path(__file__).with_name("alert_runner.py")
SERIES = 8


def _script() -> list[Reply]:
    """Every third request fails with a 5xx, some time out or get a 429; the rest are accepted."""
    replies = []
    for i in range(60):
        if i in (4, 17):
            replies.append(Reply(hang=True))
        elif i == 10:
            replies.append(Reply(429, headers={"Retry-After": "15"}))
        elif i % 3 == 0:
            replies.append(Reply(503 if i % 2 else 500))
        else:
            replies.append(Reply(200))
    return [*replies, Reply(200)]


def _run(directory: Path, url: str, *, kill_at_tick: int | None) -> list[str]:
    """Run the runner; SIGKILL it at the first tick ≥ ``kill_at_tick`` with a notification waiting for retry."""
    process = subprocess.Popen([sys.executable, str(RUNNER), str(directory), url], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:
            lines.append(line.strip())
            if kill_at_tick is not None and line.startswith("tick "):
                tick, pending = int(line.split()[1]), int(line.split("pending=")[1])
                if tick >= kill_at_tick and (pending or tick >= kill_at_tick + 6):
                    process.send_signal(signal.SIGKILL)
                    break
    finally:
        process.wait(timeout=60)
        process.stdout.close()
    return lines


def _kill_in_flight(directory: Path, server: LoopbackServer, script: list[Reply]) -> str:
    """Run the runner and SIGKILL it while the receiver holds a request it will accept; return that request's id."""
    held = server.count("/hook") + 2
    gate = threading.Event()
    script[held] = Reply(200, gate=gate)
    server.script("/hook", script)
    process = subprocess.Popen(
        [sys.executable, str(RUNNER), str(directory), server.url("/hook")], stdout=subprocess.DEVNULL
    )
    try:
        assert server.wait_for_requests("/hook", held + 1, timeout=30)
        process.send_signal(signal.SIGKILL)  # well within the runner's 2 s timeout: the answer never reaches it
    finally:
        process.wait(timeout=60)
        gate.set()
    uid: str = json.loads(server.requests_to("/hook")[held].body)["id"]
    return uid


def test_a_killed_agent_loses_no_notification_and_repeats_only_the_one_in_flight(tmp_path: Path) -> None:
    script = _script()
    with serve_http() as server:
        server.script("/hook", script)
        for kill_at in (3, 11):
            lines = _run(tmp_path, server.url("/hook"), kill_at_tick=kill_at)
            assert lines and "done" not in lines
        in_flight = _kill_in_flight(tmp_path, server, script)
        lines = _run(tmp_path, server.url("/hook"), kill_at_tick=20)
        assert lines and "done" not in lines
        kills = 4
        lines = _run(tmp_path, server.url("/hook"), kill_at_tick=None)
        assert lines[-1] == "done"
        requests = server.requests_to("/hook")

    accepted = [
        json.loads(request.body)
        for i, request in enumerate(requests)
        if script[min(i, len(script) - 1)].status == 200 and not script[min(i, len(script) - 1)].hang
    ]
    deliveries = Counter(body["id"] for body in accepted)
    repeated = {uid: count for uid, count in deliveries.items() if count > 1}
    assert repeated.get(in_flight) == 2, "the notification in flight at the kill is sent again (at least once)"
    assert len(repeated) <= kills and all(count == 2 for count in repeated.values()), repeated

    statuses: dict[str, list[str]] = defaultdict(list)
    for body in {b["id"]: b for b in accepted}.values():
        [alert] = body["alerts"]
        statuses[alert["labels"]["series"]].append(alert["status"])
    assert {series: sorted(s) for series, s in statuses.items()} == {
        str(i): ["firing", "resolved"] for i in range(SERIES)
    }, "each alert fired and resolved once, and each was notified exactly once per transition"

    state = StateDB(tmp_path / "state.db")
    try:
        rows = state.execute("SELECT status, count(*) FROM outbox GROUP BY status")
        assert [tuple(r) for r in rows] == [("sent", 2 * SERIES)], "nothing failed, nothing is left waiting"
        assert len(requests) > len(accepted), "some deliveries failed and were retried"
    finally:
        state.close()
