"""The live detector on application series, per label set, in a freshly started agent (no history, no host model).

A real agent with the real access-log collector reading a real Caddy-format access log that the test writes minute
by minute (lines as Caddy 2.6.2 writes them, from the recorded fixture). Two vhosts: one's p95 latency rises from
about 50 ms to about 600 ms, below the status summary's fixed 1 s floor, so only the live detector can see it; the
other stays as it was. Time is the one thing made up: the agent's clock moves a minute per collection.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from manual_clock import Clock

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.monitor import Monitor

pytestmark = pytest.mark.anyio

RECORDED = Path(__file__).parent / "fixtures" / "apps" / "caddy" / "access-2.6.2.log"
START = 1_795_852_800.0  # a whole hour
QUIET_MINUTES = 45
SLOW_MINUTES = 6
REQUESTS = 40  # a minute, per vhost


def _line(template: dict[str, object], ts: float, host: str, duration: float) -> str:
    entry = json.loads(json.dumps(template))
    entry["ts"], entry["status"], entry["duration"] = ts, 200, duration
    entry["request"].update(host=host, uri="/products", method="GET")  # type: ignore[attr-defined]
    return json.dumps(entry)


class Site:
    """Writes a minute of requests for two vhosts to an access log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.template = json.loads(RECORDED.read_text(encoding="utf-8").splitlines()[0])
        self.rng = np.random.default_rng(11)

    def minute(self, ts: float, shop_latency: float) -> None:
        lines = []
        for i in range(REQUESTS):
            at = ts + i * 60 / REQUESTS
            lines.append(_line(self.template, at, "shop.test", shop_latency * self.rng.uniform(0.7, 1.3)))
            lines.append(_line(self.template, at, "api.test", 0.03 * self.rng.uniform(0.7, 1.3)))
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")


def _config(tmp_path: Path, log: Path, **analysis: object) -> Config:
    return Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "hostname": "web-1"},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {
                "services": {"enabled": False},
                "access_logs": {"files": [{"path": str(log), "format": "caddy"}]},
            },
            "analysis": analysis,
        }
    )


async def _run(agent: Agent, site: Site, clock: Clock, minutes: int, shop_latency: float) -> None:
    for _ in range(minutes):
        site.minute(clock.now - 60, shop_latency)
        await agent.run_collector("access_logs")
        clock.now += 60
        await agent.analyse()


@asynccontextmanager
async def _slowed(tmp_path: Path, **analysis: object) -> AsyncIterator[tuple[Agent, float]]:
    """A fresh agent that read 45 steady minutes (no anomaly in them) and then 6 with shop.test's p95 at ~600 ms;
    yields it and when the slowdown began, and stops it after."""
    log = tmp_path / "access.log"
    log.touch()
    clock = Clock(START)
    agent = Agent(_config(tmp_path, log, **analysis), clock=clock)
    await agent.start(schedule=False)
    try:
        site = Site(log)
        await _run(agent, site, clock, QUIET_MINUTES, shop_latency=0.05)
        assert await Monitor(agent).list_anomalies(since=START) == []
        slow_from = clock.now
        await _run(agent, site, clock, SLOW_MINUTES, shop_latency=0.6)
        yield agent, slow_from
    finally:
        await agent.stop()


async def test_a_slower_vhost_is_a_live_anomaly_of_its_own_p95_listed_explained_and_in_the_summary(
    tmp_path: Path,
) -> None:
    async with _slowed(tmp_path) as (agent, slow_from):
        monitor = Monitor(agent)
        found = await monitor.list_anomalies(since=slow_from)
        shop = [a for a in found if a.series == ['http_request_duration_seconds{quantile="0.95",vhost="shop.test"}']]
        assert len(shop) == 1, [a.series for a in found]
        assert not [a for a in found if any("api.test" in s for s in a.series)]
        [anomaly] = shop
        assert "the p95 latency (vhost shop.test)" in anomaly.summary and "streaming detector" in anomaly.summary
        assert anomaly.peak >= anomaly.start

        explanation = await monitor.explain_anomaly(anomaly.id)
        assert "streaming_detector" in explanation.basis
        summary = await monitor.status_summary()
        [finding] = [f for f in summary.findings if f.subject == f"anomaly:{anomaly.id}"]
        assert "shop.test" in finding.problem
        assert not [f for f in summary.findings if f.subject == "vhost:shop.test"]  # below the fixed 1 s floor

    # the series is known from state.db before it is read again
    again = Agent(_config(tmp_path, tmp_path / "access.log"), clock=Clock(slow_from + SLOW_MINUTES * 60))
    await again.start(schedule=False)
    try:
        [listed] = [a for a in await Monitor(again).list_anomalies(since=slow_from) if a.id == anomaly.id]
        assert listed.series == anomaly.series
        assert "streaming_detector" in (await Monitor(again).explain_anomaly(anomaly.id)).basis
    finally:
        await again.stop()


async def test_a_family_made_less_sensitive_lets_the_same_slowdown_pass(tmp_path: Path) -> None:
    async with _slowed(tmp_path, sensitivity={"http_p95": 0.01}) as (agent, slow_from):
        found = await Monitor(agent).list_anomalies(since=slow_from)
        assert not [a for a in found if any("shop.test" in s for s in a.series)], [a.series for a in found]
        engine = agent.running.analysis
        assert engine is not None
        assert engine.live.threshold("http_p95:shop.test") > engine.live.threshold("http_5xx:shop.test")


async def test_a_custom_textfile_metric_named_in_live_series_is_watched_per_label_set(tmp_path: Path) -> None:
    """A cron job's metric (node_exporter's textfile convention) jumps for one of its two label sets."""
    directory = tmp_path / "textfile"
    directory.mkdir()
    clock = Clock(START)
    config = Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "hostname": "web-1"},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {"services": {"enabled": False}, "textfile": {"directory": str(directory)}},
            "analysis": {"live_series": ["app_orders_pending"]},
        }
    )
    agent = Agent(config, clock=clock)
    await agent.start(schedule=False)
    rng = np.random.default_rng(3)
    try:
        jump_from = START + QUIET_MINUTES * 60
        for _ in range(QUIET_MINUTES + SLOW_MINUTES):
            eu = (400.0 if clock.now >= jump_from else 20.0) + rng.normal(0, 2)
            us = 30.0 + rng.normal(0, 2)
            body = f'app_orders_pending{{region="eu"}} {eu:.1f}\napp_orders_pending{{region="us"}} {us:.1f}\n'
            (directory / "orders.prom.tmp").write_text(body, encoding="utf-8")
            (directory / "orders.prom.tmp").rename(directory / "orders.prom")
            await agent.run_collector("textfile")
            clock.now += 60
            await agent.analyse()
        monitor = Monitor(agent)
        found = await monitor.list_anomalies(since=jump_from)
        assert [a.series for a in found] == [['app_orders_pending{region="eu"}']]
        explanation = await monitor.explain_anomaly(found[0].id)
        assert "streaming_detector" in explanation.basis
    finally:
        await agent.stop()
