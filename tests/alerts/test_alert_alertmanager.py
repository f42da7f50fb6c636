"""Forwarding to a real Alertmanager (Debian's prometheus-alertmanager) through its v2 API."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alerting_helpers import alerting, cpu_rule, free_port, put
from manual_clock import Clock

from crucible_monitor.alerts.conditions import AlertInputs
from crucible_monitor.alerts.runtime import Alerting
from crucible_monitor.findings.incidents import fold_alerts
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore

pytestmark = pytest.mark.anyio

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    """A real Alertmanager on a free loopback port with its own config and storage; yields its base URL."""
    if BINARY is None:
        pytest.skip("Alertmanager is not installed: apt-get install prometheus-alertmanager")
    port = free_port()
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n", encoding="utf-8")
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client() as client:
            for _ in range(400):  # ready within 20 s or fail
                try:
                    if client.get(f"{url}/-/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None:
                    pytest.fail(f"alertmanager exited with {process.returncode}")
                time.sleep(0.05)  # polling a condition, bounded by the loop
            else:
                pytest.fail("alertmanager did not become ready in 20 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _alerts(url: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/api/v2/alerts")
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts


async def test_firing_and_resolved_alerts_reach_a_real_alertmanager(
    alertmanager: str, state: StateDB, store: MetricStore, clock: Clock
) -> None:
    config = alerting(
        [cpu_rule(**{"for": "0s"})],
        receivers={"fleet": {"type": "alertmanager", "url": alertmanager, "ttl": "10m"}},
        route={"group_by": ["..."], "group_interval": "30s", "repeat_interval": "5m"},
    )
    runtime = Alerting(config, state, AlertInputs(samples=store), host="web1", clock=clock)
    try:
        clock.now = time.time() - 60  # Alertmanager judges startsAt and endsAt by its own clock
        put(store, clock, "cpu_usage_ratio", 0.97, cpu="total")
        runtime.evaluate()
        assert (await runtime.deliver()).sent == [1]
        [alert] = await _alerts(alertmanager)
        assert alert["labels"] == {
            "alertname": "HighCpu",
            "severity": "warning",
            "host": "web1",
            "cpu": "total",
            "instance": "web1",
            "job": "crucible-monitor",
        }
        assert alert["annotations"] == {"summary": "CPU 97% on web1"}
        assert alert["status"]["state"] == "active"

        clock.advance(30)
        put(store, clock, "cpu_usage_ratio", 0.2, cpu="total")
        runtime.evaluate()
        assert (await runtime.deliver()).sent == [2]
        assert await _alerts(alertmanager) == [], "a resolved alert is no longer active in Alertmanager"
    finally:
        await runtime.aclose()


async def test_a_silence_set_in_alertmanager_makes_the_alert_handled_here(
    alertmanager: str, state: StateDB, store: MetricStore, clock: Clock
) -> None:
    config = alerting(
        [cpu_rule(**{"for": "0s"})],
        receivers={"fleet": {"type": "alertmanager", "url": alertmanager, "ttl": "10m", "silences_check": "30s"}},
        route={"group_by": ["..."], "group_interval": "30s", "repeat_interval": "5m"},
    )
    runtime = Alerting(config, state, AlertInputs(samples=store), host="web1", clock=clock)
    try:
        clock.now = time.time() - 60  # Alertmanager judges startsAt and endsAt by its own clock
        put(store, clock, "cpu_usage_ratio", 0.97, cpu="total")
        runtime.evaluate()
        await runtime.deliver()
        [firing] = runtime.operations.list_alerts(state="firing")
        assert firing.silenced_upstream == []
        silence = {
            "matchers": [{"name": "alertname", "value": "HighCpu", "isRegex": False, "isEqual": True}],
            "startsAt": "2020-01-01T00:00:00Z",
            "endsAt": "2099-01-01T00:00:00Z",
            "createdBy": "oncall",
            "comment": "known, on it",
        }
        async with httpx.AsyncClient() as client:
            created = await client.post(f"{alertmanager}/api/v2/silences", json=silence)
        created.raise_for_status()
        silence_id = created.json()["silenceID"]
        await runtime.deliver()  # within silences_check of the last look: not asked again yet
        assert runtime.operations.list_alerts(state="firing")[0].silenced_upstream == []
        clock.advance(31)
        await runtime.deliver()
        [firing] = runtime.operations.list_alerts(state="firing")
        assert firing.silenced_upstream == [silence_id]
        findings, handled = fold_alerts([], [firing])
        assert findings == [] and [(h.subject, h.how, h.by) for h in handled] == [
            ("alert:HighCpu", "silenced", f"alertmanager ({silence_id})")
        ]
    finally:
        await runtime.aclose()
