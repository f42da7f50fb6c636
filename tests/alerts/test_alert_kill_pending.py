"""A real `crucible-monitor serve` SIGKILLed while its alerts fire and their notifications wait in the outbox, against
a real SMTP server (aiosmtpd, refusing the first messages with a 451) and a loopback webhook that fails with 500s,
holds one request when the kill comes, fails once more and then recovers.

After the restart every notification is delivered (firing and resolved, to both receivers), only the one in flight
at the kill arrives twice, and each retry comes no earlier than the configured backoff after the failure before it,
across the restart too (the outbox keeps attempts and the next attempt's time in ``state.db``).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from agent_process import ServedAgent, serve_agent
from alerting_helpers import SmtpAttempt, SmtpFactory
from loopback_servers import LoopbackServer, RecordedRequest, Reply, serve_http
from supervisor_fixture import wait_until

SERIES = ("a", "b", "c")
INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 4.0
SMTP_REFUSALS = 2


def _alerting(smtp_port: int, hook_url: str) -> str:
    return f"""
rules:
  - name: LevelHigh
    kind: threshold
    metric: test_level
    value: 0.5
    for: 0s
receivers:
  mail:
    type: email
    host: 127.0.0.1
    port: {smtp_port}
    security: none
    to: [ops@example.com]
  hook:
    type: webhook
    url: {hook_url}
    timeout: 60s
route:
  group_by: ["..."]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1000h
delivery:
  initial_backoff: {INITIAL_BACKOFF:g}s
  max_backoff: {MAX_BACKOFF:g}s
"""


def _set_level(directory: Path, value: float) -> None:
    """Write the textfile metric atomically, as a cron job would."""
    body = "".join(f'test_level{{series="{s}"}} {value:g}\n' for s in SERIES)
    (directory / "level.tmp").write_text(body, encoding="utf-8")
    os.replace(directory / "level.tmp", directory / "level.prom")


def _outbox(data_dir: Path) -> Counter[str]:
    """How many notifications the outbox holds, by status (read-only, beside the running agent)."""
    path = data_dir / "state.db"
    if not path.exists():
        return Counter()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return Counter(dict(db.execute("SELECT status, count(*) FROM outbox GROUP BY status")))
    except sqlite3.OperationalError:  # the agent has not created the table yet
        return Counter()
    finally:
        db.close()


def _backoff(failures: int) -> float:
    """The delay the configuration asks for after a notification's ``failures``-th failed attempt."""
    return float(min(INITIAL_BACKOFF * 2 ** (failures - 1), MAX_BACKOFF))


def _too_early(attempts: Iterable[tuple[str, float, bool]]) -> list[str]:
    """Retries that came sooner than the backoff after a failure: ``(uid, time, failed)`` in arrival order."""
    failures: Counter[str] = Counter()
    last_failure: dict[str, float] = {}
    early = []
    for uid, at, failed in attempts:
        if uid in last_failure and at - last_failure[uid] < _backoff(failures[uid]):
            early.append(f"{uid}: {at - last_failure[uid]:.2f}s after failure {failures[uid]}")
        if failed:
            failures[uid] += 1
            last_failure[uid] = at
    return early


def _hook_attempts(requests: list[RecordedRequest], script: list[Reply]) -> list[tuple[str, float, bool]]:
    """The webhook's requests as attempts; the held one never got its answer to the agent, so it is no failure."""
    return [
        (r.headers["X-Crucible-Delivery"], r.received_at, script[min(i, len(script) - 1)].status >= 500)
        for i, r in enumerate(requests)
    ]


def _smtp_attempts(attempts: list[SmtpAttempt]) -> list[tuple[str, float, bool]]:
    return [(a.message_id.strip("<>").split("@")[0], a.at, not a.accepted) for a in attempts]


def _run_until_killed(tmp_path: Path, extra: str, server: LoopbackServer, held: int) -> None:
    """Serve until the webhook holds its ``held``-th request with notifications pending, then SIGKILL the agent."""
    with serve_agent(tmp_path, extra) as agent:
        assert server.wait_for_requests("/hook", held, timeout=60), "the webhook's first attempts"
        wait_until(lambda: _outbox(agent.data_dir)["pending"] > 0, 30, "notifications pending in the outbox")
        os.killpg(agent.process.pid, signal.SIGKILL)
        agent.process.wait(timeout=30)


def _delivered(agent: ServedAgent, total: int) -> bool:
    done = _outbox(agent.data_dir)
    return done["sent"] == total and not done["pending"]


def test_a_killed_agent_delivers_every_pending_notification_once_more_at_most_with_its_backoff(
    tmp_path: Path, smtp_server: SmtpFactory
) -> None:
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    _set_level(textfile, 1)
    inbox = smtp_server(refuse_first=SMTP_REFUSALS)
    gate = threading.Event()
    script = [Reply(500), Reply(500), Reply(200, gate=gate), Reply(500), Reply(200)]
    with serve_http() as server:
        server.script("/hook", script)
        (tmp_path / "alerts.yaml").write_text(_alerting(inbox.port, server.url("/hook")), encoding="utf-8")
        extra = (
            f"alerts:\n  rules_file: {tmp_path / 'alerts.yaml'}\n"
            f"collectors:\n  services:\n    enabled: false\n  textfile:\n    directory: {textfile}\n"
            "analysis:\n  enabled: false\n"
        )
        _run_until_killed(tmp_path, extra, server, held=3)
        gate.set()  # the receiver accepts the held request, but its answer reaches no one
        total = 2 * len(SERIES) * 2  # firing and resolved, per series, per receiver
        with serve_agent(tmp_path, extra) as agent:
            wait_until(lambda: _delivered(agent, total // 2), 60, "the firing notifications delivered")
            _set_level(textfile, 0)
            wait_until(lambda: _delivered(agent, total), 60, "the resolved notifications delivered")
        requests = server.requests_to("/hook")

    assert _outbox(tmp_path / "data") == Counter({"sent": total}), "nothing lost, failed or left waiting"
    attempts = _hook_attempts(requests, script)
    accepted = Counter(uid for uid, _, failed in attempts if not failed)
    in_flight = requests[2].headers["X-Crucible-Delivery"]
    assert len(accepted) == total // 2 and {uid for uid, n in accepted.items() if n > 1} == {in_flight}
    assert accepted[in_flight] == 2, "the notification in flight at the kill is sent again, once"
    bodies = {json.loads(r.body)["id"]: json.loads(r.body) for r in requests}
    transitions = sorted((b["alerts"][0]["labels"]["series"], b["status"]) for b in bodies.values())
    assert transitions == sorted((s, status) for s in SERIES for status in ("firing", "resolved"))

    mails = Counter(uid for uid, _, failed in _smtp_attempts(inbox.attempts) if not failed)
    assert len(inbox.messages) == total // 2 and set(mails.values()) == {1}, "every email once, none lost"
    assert sum(1 for a in inbox.attempts if not a.accepted) == SMTP_REFUSALS

    assert sum(failed for _, _, failed in attempts) == 3, "the webhook failed before and after the kill"
    assert _too_early(attempts) == [] and _too_early(_smtp_attempts(inbox.attempts)) == []
