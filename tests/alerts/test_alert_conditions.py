"""Each rule kind's condition over real inputs: a metric store, service statuses, HTTP check results, scores."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from alerting_helpers import put
from manual_clock import Clock
from pydantic import TypeAdapter

from crucible_monitor.alerts.conditions import (
    AlertInputs,
    AnomalyScore,
    Forecast,
    Hit,
    Outcome,
    Snapshot,
    combine,
    evaluate,
)
from crucible_monitor.alerts.rules import CompositeRule, Rule
from crucible_monitor.models import labels_key
from crucible_monitor.schemas import CheckResult, ServiceStatus
from crucible_monitor.storage.store import MetricStore

_RULE: TypeAdapter[Rule] = TypeAdapter(Rule)


def _rule(**data: Any) -> Rule:
    return _RULE.validate_python({"name": "R", **data})


def _hits(outcome: Outcome | None) -> list[tuple[dict[str, str], float | None]]:
    assert outcome is not None
    return sorted(((dict(h.labels), h.value) for h in outcome.hits), key=lambda h: labels_key(h[0]))


def _service(name: str, state: str, now: float) -> ServiceStatus:
    return ServiceStatus(
        name=name, manager="supervisor", category="queue", up=state == "running", state=state, last_seen=now
    )


def _check(name: str, now: float, **fields: Any) -> CheckResult:
    base: dict[str, Any] = {
        "url": f"https://{name}.example/",
        "ok": True,
        "status_code": 200,
        "duration_seconds": 0.1,
        "failure": None,
        "error": None,
        "attempts": 1,
        "consecutive_failures": 0,
    }
    return CheckResult(name=name, checked_at=now, **(base | fields))


def test_a_threshold_on_a_counter_rate_compares_the_per_second_increase(store: MetricStore, clock: Clock) -> None:
    put(store, clock, "swap_out_bytes_total", 1000)
    clock.advance(10)
    put(store, clock, "swap_out_bytes_total", 21000)  # 2000 bytes/s
    snapshot = Snapshot(AlertInputs(samples=store), clock(), 300)
    rule = _rule(kind="threshold", metric="swap_out_bytes_total", function="rate", value=1500)
    assert _hits(evaluate(rule, snapshot)) == [({}, 2000.0)]
    assert _hits(evaluate(rule.model_copy(update={"value": 2500}), snapshot)) == []


def test_a_threshold_over_a_window_compares_the_aggregate(store: MetricStore, clock: Clock) -> None:
    for value in [0.5, 0.9, 1.0, 0.6]:
        clock.advance(10)
        put(store, clock, "memory_used_ratio", value)
    snapshot = Snapshot(AlertInputs(samples=store), clock(), 300)
    average = _rule(kind="threshold", metric="memory_used_ratio", value=0.7, window="1m", agg="avg")
    assert _hits(evaluate(average, snapshot)) == [({}, pytest.approx(0.75))]
    peak = _rule(kind="threshold", metric="memory_used_ratio", value=0.99, window="1m", agg="max")
    assert _hits(evaluate(peak, snapshot)) == [({}, 1.0)]
    lowest = _rule(kind="threshold", metric="memory_used_ratio", value=0.55, window="1m", agg="min")
    assert _hits(evaluate(lowest, snapshot)) == [], "the minute's minimum is 0.5"
    recent = lowest.model_copy(update={"window": timedelta(seconds=15)})
    assert _hits(evaluate(recent, snapshot)) == [({}, 0.6)], "the last 15 s hold only 1.0 and 0.6"


def test_a_service_rule_fires_for_down_services_and_leaves_unknown_and_starting_ones_alone(
    store: MetricStore, clock: Clock
) -> None:
    statuses = [
        _service("queue-worker", "fatal", clock()),
        _service("scheduler", "running", clock()),
        _service("mailer", "unknown", clock()),
        _service("queue-starting", "starting", clock()),
        _service("other", "stopped", clock()),
    ]
    snapshot = Snapshot(AlertInputs(samples=store, services=lambda: statuses), clock(), 300)
    outcome = evaluate(_rule(kind="service", services=["queue-*", "scheduler", "mailer"]), snapshot)
    assert _hits(outcome) == [({"service": "queue-worker", "manager": "supervisor", "category": "queue"}, 0.0)]
    assert outcome is not None
    assert outcome.unknown == {
        labels_key({"service": name, "manager": "supervisor", "category": "queue"})
        for name in ("mailer", "queue-starting")
    }, "a program on its way up is neither up nor down yet"
    nothing_known = Snapshot(AlertInputs(samples=store), clock(), 300)
    assert evaluate(_rule(kind="service"), nothing_known) is None


def test_a_restart_rule_counts_restarts_within_the_window_across_a_counter_reset(
    store: MetricStore, clock: Clock
) -> None:
    labels = {"service": "php8.2-fpm", "manager": "systemd", "category": "php"}
    for value in [5, 5, 6, 7, 0, 1]:  # +0, +1, +1, a reset to 0 (adds 0), +1
        clock.advance(60)
        put(store, clock, "service_restarts_total", value, **labels)
    snapshot = Snapshot(AlertInputs(samples=store), clock(), 300)
    assert _hits(evaluate(_rule(kind="service", condition="restarts", restarts=3, within="10m"), snapshot)) == [
        (labels, 3.0)
    ]
    assert _hits(evaluate(_rule(kind="service", condition="restarts", restarts=3, within="2m30s"), snapshot)) == []


def test_http_check_rules_fire_on_consecutive_failures_and_slowness(store: MetricStore, clock: Clock) -> None:
    results = [
        _check("shop", clock(), ok=False, consecutive_failures=3, failure="status", status_code=503),
        _check("api", clock(), duration_seconds=2.5),
        _check("blog", clock(), ok=False, consecutive_failures=1, failure="timeout", duration_seconds=None),
    ]
    snapshot = Snapshot(AlertInputs(samples=store, http_checks=lambda: results), clock(), 300)
    assert _hits(evaluate(_rule(kind="http_check", failures=3), snapshot)) == [({"check": "shop"}, 3)]
    slow = _rule(kind="http_check", condition="slow", slower_than="2s")
    assert _hits(evaluate(slow, snapshot)) == [({"check": "api"}, 2.5)]
    stale = Snapshot(AlertInputs(samples=store, http_checks=lambda: results), clock() + 3600, 300)
    assert evaluate(slow, stale) is None, "results older than stale_after are not judged"


def test_a_certificate_rule_fires_within_its_days(store: MetricStore, clock: Clock) -> None:
    results = [_check("shop", clock(), tls_days_left=5.5), _check("api", clock(), tls_days_left=40.0)]
    snapshot = Snapshot(AlertInputs(samples=store, http_checks=lambda: results), clock(), 300)
    assert _hits(evaluate(_rule(kind="certificate", days=14), snapshot)) == [({"check": "shop"}, 5.5)]


def test_anomaly_rules_read_the_newest_score_or_the_rate_over_the_window(store: MetricStore, clock: Clock) -> None:
    now = clock()
    asked: list[tuple[float, float]] = []

    def scores(start: float, end: float) -> Sequence[AnomalyScore]:
        asked.append((start, end))
        cpu, disk = {"series": "cpu"}, {"series": "disk"}
        return [
            AnomalyScore(cpu, now - 120, 0.9, True),
            AnomalyScore(cpu, now - 60, 0.95, True),
            AnomalyScore(cpu, now, 0.3, False),
            AnomalyScore(disk, now - 60, 0.2, False),
            AnomalyScore(disk, now, 0.85, True),
        ]

    snapshot = Snapshot(AlertInputs(samples=store, anomaly_scores=scores), now, 300)
    assert _hits(evaluate(_rule(kind="anomaly", score=0.8), snapshot)) == [({"series": "disk"}, 0.85)]
    rate = _rule(kind="anomaly", rate=0.6, window="10m")
    assert _hits(evaluate(rate, snapshot)) == [({"series": "cpu"}, 2 / 3)]
    assert asked[-1] == (now - 600, now)
    assert evaluate(rate, Snapshot(AlertInputs(samples=store), now, 300)) is None


def test_a_forecast_rule_fires_when_the_resource_is_full_within_the_horizon(store: MetricStore, clock: Clock) -> None:
    now = clock()
    forecasts = [
        Forecast("filesystem_used_ratio", {"mountpoint": "/"}, now + 6 * 3600, 0.9),
        Forecast("filesystem_used_ratio", {"mountpoint": "/var"}, now + 3 * 86400, 0.9),
        Forecast("filesystem_used_ratio", {"mountpoint": "/tmp"}, now + 3600, 0.2),
        Forecast("filesystem_used_ratio", {"mountpoint": "/home"}, None, 0.95),
    ]
    snapshot = Snapshot(AlertInputs(samples=store, forecasts=lambda: forecasts), now, 300)
    rule = _rule(kind="forecast", metric="filesystem_used_ratio", within="24h", min_quality=0.5)
    assert _hits(evaluate(rule, snapshot)) == [({"mountpoint": "/"}, 6.0)]


def test_composite_rules_need_all_or_any_of_their_rules_per_shared_label() -> None:
    def outcome(*services: str) -> Outcome:
        return Outcome([Hit({"service": s, "manager": "systemd"}) for s in services])

    outcomes: dict[str, Outcome | None] = {"Down": outcome("mysql", "redis"), "Restarting": outcome("redis", "php")}
    both = CompositeRule.model_validate(
        {"name": "C", "kind": "composite", "of": ["Down", "Restarting"], "on": ["service"]}
    )
    assert _hits(combine(both, outcomes)) == [({"service": "redis"}, None)]
    either = both.model_copy(update={"mode": "any"})
    assert [h[0]["service"] for h in _hits(combine(either, outcomes))] == ["mysql", "php", "redis"]
    overall = both.model_copy(update={"on": []})
    assert _hits(combine(overall, outcomes)) == [({}, None)]
    assert combine(both, {"Down": outcome("mysql"), "Restarting": None}) is None, "all needs every rule known"
