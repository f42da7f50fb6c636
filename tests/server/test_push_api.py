"""Pushing metrics to a real `crucible-monitor serve` (``POST /api/v1/metrics``): Prometheus text and JSON read back
through history, the report (and MCP's get_metrics), the catalogue and ``/metrics``; an alert rule on a pushed metric
fires; a read token is refused naming the scope; each limit, when a push passes it, is named in the refusal."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import httpx2
import pytest
from agent_process import ServedAgent, serve_agent
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client.parser import text_string_to_metric_families
from supervisor_fixture import wait_until

pytestmark = pytest.mark.anyio

READ_SECRET = "push-read-token-0123456789"
OPERATE_SECRET = "push-operate-token-0123456789"
RULES = """
rules:
  - name: MailQueueLong
    kind: threshold
    metric: queue_depth
    labels: {queue: mail}
    op: ">"
    value: 100
    for: 0s
    severity: warning
"""
TEXT = """# HELP backup_age_seconds Seconds since the last good backup.
# TYPE backup_age_seconds gauge
backup_age_seconds{target="db"} 3600
backup_age_seconds{target="files"} 7200
# TYPE backups_total counter
backups_total{target="db"} 42
"""
LIMITS = "push:\n  max_series_per_push: 6\n  max_series: 10\n  max_labels: 2\n  max_label_length: 20\n"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAgent]:
    tmp_path = tmp_path_factory.mktemp("push")
    (tmp_path / "alerts.yaml").write_text(RULES, encoding="utf-8")
    tokens = (
        f"  tokens:\n    - name: grafana\n      scope: read\n      secret: {READ_SECRET}\n"
        f"    - name: cron\n      scope: operate\n      secret: {OPERATE_SECRET}\n"
    )
    extra = (
        f"alerts:\n  rules_file: {tmp_path / 'alerts.yaml'}\n"
        "collectors:\n  services:\n    supervisor:\n      enabled: false\n" + LIMITS
    )
    with serve_agent(tmp_path, extra, agent_yaml=tokens) as served:
        yield served


def _http(agent: ServedAgent, secret: str = OPERATE_SECRET) -> httpx.Client:
    return httpx.Client(base_url=agent.base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)


def _push(http: httpx.Client, body: str, media: str = "text/plain; version=0.0.4") -> httpx.Response:
    return http.post("/api/v1/metrics", content=body.encode(), headers={"Content-Type": media})


def test_prometheus_text_pushed_is_read_back_from_history_the_catalogue_and_metrics(agent: ServedAgent) -> None:
    with _http(agent) as http:
        pushed = _push(http, TEXT)
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["accepted"] == 3 and pushed.json()["metrics"] == ["backup_age_seconds", "backups_total"]
        history = http.get("/api/v1/metrics/history", params={"metric": "backup_age_seconds", "since": "10m"}).json()
        values = {s["labels"]["target"]: [v for _, v in s["points"]] for s in history["series"]}
        assert values == {"db": [3600.0], "files": [7200.0]}
        catalogue = {m["name"]: m for m in http.get("/api/v1/metrics/catalogue").json()["items"]}
        assert catalogue["backups_total"]["kind"] == "counter" and catalogue["backups_total"]["collector"] == "push"
        assert catalogue["backup_age_seconds"]["description"] == "Seconds since the last good backup."
        assert catalogue["backup_age_seconds"]["unit"] == "seconds"
        families = {f.name: f for f in text_string_to_metric_families(http.get("/metrics").text)}
        exported = {s.labels["target"]: s.value for s in families["crucible_backup_age_seconds"].samples}
        assert exported == {"db": 3600.0, "files": 7200.0}
        assert families["crucible_backups"].type == "counter"


async def test_json_pushed_is_read_back_through_the_report_and_mcp_get_metrics(agent: ServedAgent) -> None:
    body = '[{"name": "orders_pending", "labels": {"region": "eu"}, "value": 17, "help": "Orders not yet shipped."}]'
    with _http(agent) as http:
        pushed = _push(http, body, "application/json")
        assert pushed.status_code == 200, pushed.text
        report = http.get("/api/v1/metrics/report", params={"metric": "orders_pending", "since": "10m"}).json()
        [metric] = report["reports"]
        assert metric["description"] == "Orders not yet shipped." and metric["kind"] == "gauge"
        assert metric["series"][0]["labels"] == {"region": "eu"} and metric["series"][0]["stats"]["last"] == 17.0
    http2 = httpx2.AsyncClient(headers={"Authorization": f"Bearer {READ_SECRET}"})
    async with http2, Client(streamable_http_client(f"{agent.base_url}/mcp", http_client=http2)) as client:
        result = await client.call_tool("get_metrics", {"metric": "orders_pending", "since": "10m"})
        assert not result.is_error and "orders_pending" in result.content[0].text and "17" in result.content[0].text
        listed = await client.call_tool("list_metrics", {"search": "orders_pending"})
        assert "⟦Orders not yet shipped.⟧" in listed.content[0].text  # what a pusher wrote is fenced as data


def test_an_alert_rule_on_a_pushed_metric_fires(agent: ServedAgent) -> None:
    with _http(agent) as http:
        assert _push(http, 'queue_depth{queue="mail"} 250\n').status_code == 200

        def firing() -> bool:
            alerts = http.get("/api/v1/alerts", params={"state": "firing"}).json()["items"]
            return any(a["name"] == "MailQueueLong" and a["value"] == 250 for a in alerts)

        wait_until(firing, 30, "the rule on the pushed queue_depth to fire")


def test_a_read_token_is_refused_naming_the_scope_and_other_media_types_get_415(agent: ServedAgent) -> None:
    with _http(agent, READ_SECRET) as http:
        refused = _push(http, "read_tries 1\n")
        assert refused.status_code == 403
        assert refused.json()["required_scope"] == "operate" and "operate" in refused.json()["detail"]
    with _http(agent) as http:
        form = _push(http, "read_tries 1\n", "application/x-www-form-urlencoded")  # curl -d without -H
        assert form.status_code == 415 and "text/plain or application/json" in form.json()["detail"]
        catalogue = {m["name"] for m in http.get("/api/v1/metrics/catalogue").json()["items"]}
    assert "read_tries" not in catalogue


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ("".join(f'wide{{n="{i}"}} 1\n' for i in range(7)), 413, "push.max_series_per_push is 6"),
        ('labelled{a="1",b="2",c="3"} 1\n', 422, "push.max_labels is 2"),
        ('long_label{path="' + "x" * 21 + '"} 1\n', 422, "push.max_label_length is 20"),
        ("cpu_usage_ratio 0.5\n", 422, "cpu_usage_ratio is one of the agent's own metrics"),
        ("push_series 3\n", 422, "push_series is one of the agent's own metrics"),
        ('{"memory_used_bytes": 1}', 422, "memory_used_bytes is one of the agent's own metrics"),
        ("good 1\nthis is not a metric\n", 422, "line 2"),
        ('[{"name": "bad-name", "value": 1}]', 422, "'bad-name' is not a metric name"),
        ('[{"name": "ok", "labels": {"__name__": "x"}, "value": 1}]', 422, "not a label name"),
        ('{"ok": "high"}', 422, "not a finite number"),
        ("# only a comment\n", 422, "holds no samples"),
    ],
)
def test_a_push_over_a_limit_or_breaking_a_rule_is_refused_whole_naming_it(
    agent: ServedAgent, body: str, status: int, named: str
) -> None:
    media = "application/json" if body.startswith(("[", "{")) else "text/plain"
    with _http(agent) as http:
        refused = _push(http, body, media)
        assert refused.status_code == status, refused.text
        assert named in refused.json()["detail"]
        if status == 413:
            assert refused.json()["limit"] == "push.max_series_per_push"
        catalogue = {m["name"] for m in http.get("/api/v1/metrics/catalogue").json()["items"]}
    assert not {"wide", "labelled", "long_label", "good", "ok"} & catalogue


def test_distinct_series_past_max_series_are_refused_and_the_ones_pushed_again_are_not(agent: ServedAgent) -> None:
    with _http(agent) as http:
        accepted: list[str] = []
        for i in range(11):  # at most 10 pushed series in all, the earlier tests' included
            answer = _push(http, f'fleet_size{{n="{i}"}} {i}\n')
            if answer.status_code != 200:
                assert answer.status_code == 413 and answer.json()["limit"] == "push.max_series", answer.text
                assert "push.max_series is 10" in answer.json()["detail"]
                break
            accepted.append(str(i))
        else:
            pytest.fail("11 new series were all accepted; push.max_series is 10")
        assert accepted  # there was room for some
        again = _push(http, f'fleet_size{{n="{accepted[0]}"}} 99\n')  # a known series takes no new room
        assert again.status_code == 200 and again.json()["series"] == again.json()["max_series"] == 10
