"""Three agents scraped by a real Prometheus (Debian's ``prometheus``) with the bearer token from a file.

Every target is up, every sample is kept (none out of bounds or out of order: the exposition carries no
timestamps), each agent is told apart by ``crucible_agent_info{host}``, counters are counters (``rate()`` works).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import httpx
from agent_process import serve_agent
from prometheus_client.parser import text_string_to_metric_families
from services.prometheus import run_prometheus
from supervisor_fixture import wait_until

TOKEN = "scrape-token-0123456789"
HOSTS = ("web-1", "web-2", "web-3")
DEADLINE = 60.0


def test_three_agents_are_scraped_by_a_real_prometheus(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    token_file.chmod(0o600)
    with ExitStack() as stack:
        agents = []
        for host in HOSTS:
            (tmp_path / host).mkdir()
            agent_yaml = f"  hostname: {host}\n  api_token: {TOKEN}\n"
            agents.append(stack.enter_context(serve_agent(tmp_path / host, agent_yaml=agent_yaml)))
        targets = [f"127.0.0.1:{a.port}" for a in agents]
        prometheus = stack.enter_context(run_prometheus(tmp_path / "prometheus", targets, token_file=token_file))

        def all_up() -> bool:
            active = prometheus.targets()
            return len(active) == 3 and all(t["health"] == "up" for t in active)

        wait_until(all_up, DEADLINE, f"every target up: {prometheus.targets()}")
        info = prometheus.query("crucible_agent_info")
        memory = prometheus.query("crucible_memory_total_bytes")
        wait_until(lambda: len(prometheus.query("rate(crucible_forks_total[5s])")) == 3, DEADLINE, "counter rates")
        own = httpx.get(f"http://127.0.0.1:{prometheus.port}/metrics", timeout=10).text
    assert sorted(s["metric"]["host"] for s in info) == list(HOSTS)
    assert {s["metric"]["job"] for s in info} == {"crucible"}
    assert {s["metric"]["instance"] for s in memory} == set(targets)
    dropped = {
        sample.name: sample.value
        for family in text_string_to_metric_families(own)
        for sample in family.samples
        if sample.name.startswith("prometheus_target_scrapes_sample_")
    }
    assert dropped and all(value == 0 for value in dropped.values()), dropped
