"""History read back from a real Prometheus (Debian's ``prometheus``) scraping a real agent: the same buckets as
the agent's own store gives, counters as rates, labels as filters; a refusal or a Prometheus that is not there is a
clear error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from agent_process import ServedAgent, serve_agent
from services.prometheus import Prometheus, run_prometheus
from supervisor_fixture import free_port, wait_until

from crucible_monitor.errors import QueryError, StorageError
from crucible_monitor.storage.promql import PrometheusHistory

TOKEN = "promql-token-0123456789"
STEP = 5.0


@contextmanager
def _scraped(tmp_path: Path, host: str) -> Iterator[tuple[ServedAgent, Prometheus, str]]:
    """A real agent and a real Prometheus scraping it with the token, once the first scrape is in."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    (tmp_path / host).mkdir()
    agent_yaml = f"  hostname: {host}\n  api_token: {TOKEN}\n"
    with serve_agent(tmp_path / host, "collectors:\n  services:\n    enabled: false\n", agent_yaml=agent_yaml) as agent:
        instance = f"127.0.0.1:{agent.port}"
        with run_prometheus(tmp_path / "prometheus", [instance], token_file=token_file) as prometheus:
            wait_until(lambda: bool(prometheus.query("crucible_agent_collector_runs_total")), 60, "the first scrape")
            yield agent, prometheus, instance


def test_history_from_prometheus_matches_the_agents_own(tmp_path: Path) -> None:
    with _scraped(tmp_path, "prom-1") as (agent, prometheus, instance):
        started = time.time()
        wait_until(lambda: time.time() - started > 3 * STEP, 60, "three buckets of scrapes")
        source = PrometheusHistory(f"http://127.0.0.1:{prometheus.port}", job="crucible", instance=instance)
        now = time.time()
        try:
            memory = source.query("memory_total_bytes", start=now - 2 * STEP, end=now, step=STEP, agg="avg")
            cpu = source.query("cpu_usage_ratio", start=now - 2 * STEP, end=now, step=STEP, labels={"cpu": "total"})
            runs = source.query(
                "agent_collector_runs_total",
                start=now - 2 * STEP,
                end=now,
                step=STEP,
                agg="rate",
                labels={"collector": "system"},
            )
            with pytest.raises(QueryError, match="valid: avg, min, max, last, rate"):
                source.query("memory_used_bytes", start=now - 60, end=now, step=STEP, agg="sum")  # type: ignore[arg-type]
        finally:
            source.close()
        local = httpx.get(
            f"{agent.base_url}/api/v1/metrics/history",
            params={"metric": "memory_total_bytes", "start": f"{now - 2 * STEP}", "end": f"{now}", "step": "5s"},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ).json()
    (series,) = memory
    assert series.labels == {} and series.values
    ours = dict(local["series"][0]["points"])
    shared = [ts for ts in series.timestamps if ts in ours]
    assert shared, (series.timestamps, sorted(ours))
    for ts in shared:
        value = series.values[series.timestamps.index(ts)]
        assert value == ours[ts], (ts, value, ours[ts])  # a constant: the same buckets give the same value
    assert [s.labels for s in cpu] == [{"cpu": "total"}]
    (rate,) = runs  # the system collector runs every second: a rate near 1/s, not the count
    assert 0 < rate.values[-1] < 2, rate.values


def test_a_prometheus_that_is_not_there_is_a_storage_error() -> None:
    source = PrometheusHistory(f"http://127.0.0.1:{free_port()}", job="crucible", timeout=2)
    try:
        with pytest.raises(StorageError, match="does not answer"):
            source.query("memory_used_bytes", start=0, end=600, step=60)
    finally:
        source.close()


def test_an_agent_with_source_prometheus_forecasts_from_prometheus_history(tmp_path: Path) -> None:
    """An agent that collects no system metrics of its own, with ``analysis.source: prometheus``, forecasts the
    memory and filesystems of the agent Prometheus scrapes: it can only have read them from Prometheus."""
    with _scraped(tmp_path, "scraped") as (agent, prometheus, instance):
        (tmp_path / "reader").mkdir()
        reader_yaml = (
            "collectors:\n  services:\n    enabled: false\n  system:\n    enabled: false\n"
            f"analysis:\n  source: prometheus\n  prometheus:\n    url: http://127.0.0.1:{prometheus.port}\n"
            f"    job: crucible\n    instance: {instance}\n"
        )
        with serve_agent(tmp_path / "reader", reader_yaml, agent_yaml=f"  api_token: {TOKEN}\n") as reader:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            response = httpx.get(f"{reader.base_url}/api/v1/capacity", headers=headers, timeout=30)
            scraped = float(prometheus.query("crucible_memory_used_ratio")[0]["value"][1])
    assert response.status_code == 200, response.text
    forecasts = {f["resource"]: f for f in response.json()["forecasts"]}
    assert "memory" in forecasts and "filesystem:/" in forecasts, sorted(forecasts)
    assert abs(forecasts["memory"]["current"] - scraped) < 0.02  # what Prometheus holds, read a moment apart
