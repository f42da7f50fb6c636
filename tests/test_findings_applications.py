"""The application findings: each collector's newest readings against floors, baselines and the one window.

The readings are the store's own ``LatestPoint`` values, as the Monitor passes them; the real collectors' series
are covered by the fault-injection suite (tests/faults/) and the collectors' tests.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from crucible_monitor.config import AlertsConfig
from crucible_monitor.findings import Context, Sources, judge
from crucible_monitor.schemas import CpuView, Finding, MemoryView, ServiceStatus, SystemSnapshot
from crucible_monitor.storage.store import LatestPoint

NOW = 1_800_000_000.0


def _point(
    metric: str, value: float, labels: Mapping[str, str] | None = None, previous: float | None = None
) -> LatestPoint:
    return LatestPoint(metric, dict(labels or {}), NOW - 5, value, NOW - 15 if previous is not None else None, previous)


def _judge(
    *points: LatestPoint,
    usual: float | None = None,
    grew: float | None = None,
    services: tuple[ServiceStatus, ...] = (),
) -> dict[str, Finding]:
    context = Context(
        alerts=[],
        thresholds=AlertsConfig(cpu_threshold=None, memory_threshold=None, disk_threshold=None),
        restarts_last_hour={},
        check_failing_since={},
        since_above=lambda metric, labels, threshold: None,
        now=NOW,
        latest=points,
        baseline=lambda metric, labels: usual,
        rise=lambda metric, labels, seconds: grew,
    )
    system = SystemSnapshot(host="h", ts=None, cpu=CpuView(), memory=MemoryView(), filesystems=[], disks=[], network=[])
    return {f.subject: f for f in judge(Sources(system, services, [], [], context)).findings}


def _requests(vhost: str, ok: float, errors: float) -> tuple[LatestPoint, LatestPoint]:
    """The request counters of one cycle: ``ok`` 2xx and ``errors`` 5xx since the point before."""
    return (
        _point("http_requests_total", 100 + ok, {"vhost": vhost, "status_class": "2xx"}, previous=100),
        _point("http_requests_total", 10 + errors, {"vhost": vhost, "status_class": "5xx"}, previous=10),
    )


def test_a_5xx_burst_is_critical_with_counts_and_a_callable_hint() -> None:
    found = _judge(_point("http_server_error_ratio", 0.76, {"vhost": "shop"}), *_requests("shop", 6, 19))
    finding = found["vhost:shop"]
    assert finding.severity == "critical"
    assert finding.problem == "76.0 % of requests answered 5xx in the last cycle (19 of 25) (threshold 5.0 %)"
    assert finding.hint == "top_endpoints(vhost='shop', by='errors')"


def test_a_few_5xx_or_a_usual_rate_is_no_finding() -> None:
    assert "vhost:shop" not in _judge(
        _point("http_server_error_ratio", 0.5, {"vhost": "shop"}), *_requests("shop", 2, 2)
    )
    usual = _judge(_point("http_server_error_ratio", 0.06, {"vhost": "shop"}), *_requests("shop", 94, 6), usual=0.05)
    assert "vhost:shop" not in usual  # 6 % where 5 % is usual: below three times the usual level
    above = _judge(_point("http_server_error_ratio", 0.2, {"vhost": "shop"}), *_requests("shop", 80, 20), usual=0.05)
    assert above["vhost:shop"].problem.endswith(", usual 5.0 % (threshold 15.0 %)")


def test_p95_latency_is_held_to_a_floor_and_its_baseline() -> None:
    slow = _point("http_request_duration_seconds", 2.5, {"vhost": "shop", "quantile": "0.95"})
    assert _judge(slow)["vhost:shop"].problem == "p95 latency 2.5 s in the last cycle (threshold 1.0 s)"
    assert "vhost:shop" not in _judge(slow, usual=1.0)  # its usual 1 s: 3 s is the threshold
    median = _point("http_request_duration_seconds", 9.0, {"vhost": "shop", "quantile": "0.5"})
    assert "vhost:shop" not in _judge(median)  # only p95 is judged


def test_a_stale_reading_is_not_judged() -> None:
    stale = LatestPoint("php_fpm_listen_queue", {"pool": "www"}, NOW - 3600, 50.0, None, None)
    assert _judge(stale) == {}


@pytest.mark.parametrize(
    ("point", "grew", "subject", "severity", "words"),
    [
        (_point("php_fpm_listen_queue", 12, {"pool": "www"}), None, "php_fpm:www", "critical", "12 requests wait"),
        (_point("php_fpm_max_children_reached_total", 4, {"pool": "www"}), 3, "php_fpm:www", "warning", "reached 3"),
        (_point("mysql_connections_used_ratio", 0.85), None, "mysql", "warning", "85.0 % of max_connections"),
        (_point("mysql_replica_lag_seconds", 400, {"channel": ""}), None, "replica:default", "critical", "behind"),
        (_point("mysql_replica_sql_running", 0, {"channel": "a"}), None, "replica:a", "critical", "SQL thread"),
        (_point("mysql_slow_queries_total", 90), 25, "mysql", "warning", "25 slow queries in the last 15 min"),
        (_point("laravel_failed_jobs", 42, {"app": "shop"}), 5, "app:shop", "warning", "5 jobs failed"),
        (
            _point("laravel_queue_oldest_job_age_seconds", 2000, {"app": "shop", "queue": "emails"}),
            None,
            "queue:shop/emails",
            "critical",
            "oldest ready job has waited",
        ),
        (_point("laravel_scheduler_heartbeat_age_seconds", 400, {"app": "shop"}), None, "app:shop", "warning", "heart"),
        (_point("laravel_horizon_up", 0, {"app": "shop"}), None, "app:shop", "warning", "Horizon is not running"),
    ],
)
def test_each_application_signal_becomes_a_finding(
    point: LatestPoint, grew: float | None, subject: str, severity: str, words: str
) -> None:
    finding = _judge(point, grew=grew)[subject]
    assert finding.severity == severity and words in finding.problem, finding.problem


def test_nothing_grew_nothing_is_wrong() -> None:
    quiet = (
        _point("laravel_failed_jobs", 42, {"app": "shop"}),
        _point("mysql_slow_queries_total", 90),
        _point("php_fpm_listen_queue", 0, {"pool": "www"}),
        _point("mysql_connections_used_ratio", 0.1),
    )
    assert _judge(*quiet, grew=0) == {}


def test_a_queue_backlog_follows_its_stopped_workers() -> None:
    workers = ServiceStatus(
        name="queue-emails", manager="supervisor", category="queue", up=False, state="stopped", last_seen=NOW
    )
    backlog = _point("laravel_queue_oldest_job_age_seconds", 900, {"app": "shop", "queue": "emails"})
    found = _judge(backlog, services=(workers,))
    assert found["service:queue-emails"].caused_by is None
    assert found["queue:shop/emails"].caused_by == "service:queue-emails"
