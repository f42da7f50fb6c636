"""Findings about the applications: 5xx and latency per virtual host, php-fpm pools, MySQL, Laravel queues and jobs.

Each is read from the newest point of the application collectors' series (``Context.latest``): a ratio or a
latency is held to a floor and, once there is an hour of history, to a multiple of its usual level
(``Context.baseline``); counts of what happened (failed jobs, slow queries, ``max_children`` reached) are the rise
over the summary's one window (``Context.rise``). A pool or a server that does not answer is its collector's blind
spot (``collector:php_fpm``, ``collector:mysql``), judged with the collectors, not here again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from crucible_monitor.findings.sources import RECENT_SECONDS, Context, Reading, Sources, quantity
from crucible_monitor.schemas import Finding
from crucible_monitor.units import human_duration, human_ratio

__all__ = ["application_findings"]

_WINDOW = human_duration(RECENT_SECONDS)
_BASELINE_FACTOR = 3.0
"""A ratio or latency above this multiple of its usual level (and its floor) is a finding."""


@dataclass(frozen=True, slots=True)
class Level:
    """A warning and a critical level; ``unit`` names the value in the problem text."""

    warning: float
    critical: float
    unit: str

    def show(self, value: float) -> str:
        """``value`` as people read it."""
        if self.unit == "ratio":
            return human_ratio(value)
        if self.unit == "seconds":
            return human_duration(value)
        return f"{value:g}"


SERVER_ERRORS = Level(0.05, 0.25, "ratio")
"""Share of 5xx responses of a cycle's requests (with at least :data:`MIN_ERRORS` of them)."""
MIN_ERRORS = 3
LATENCY_P95 = Level(1.0, 4.0, "seconds")
LISTEN_QUEUE = Level(1, 10, "requests")
MYSQL_CONNECTIONS = Level(0.8, 0.95, "ratio")
REPLICA_LAG = Level(60, 300, "seconds")
SLOW_QUERIES = Level(10, 100, "statements")
FAILED_JOBS = Level(1, 20, "jobs")
QUEUE_AGE = Level(300, 1800, "seconds")
QUEUE_DEPTH = Level(1000, 10000, "jobs")
HEARTBEAT_AGE = Level(180, 900, "seconds")


def _finding(subject: str, value: float, level: Level, problem: str, hint: str, threshold: float) -> Finding | None:
    if value < threshold:
        return None
    critical = value >= max(level.critical, threshold)
    return Finding(
        severity="critical" if critical else "warning",
        subject=subject,
        problem=f"{problem} (threshold {level.show(threshold)})",
        value=quantity(value, level.unit),
        hint=hint,
    )


def _against_baseline(context: Context, reading: Reading, level: Level) -> tuple[float, str]:
    """The threshold for ``reading``: its floor, or a multiple of its usual level when that is higher."""
    usual = context.baseline(reading.metric, reading.labels)
    if usual is None:
        return level.warning, ""
    return max(level.warning, _BASELINE_FACTOR * usual), f", usual {level.show(usual)}"


def _requests(context: Context, vhost: str, status_class: str | None = None) -> float | None:
    """Requests of ``vhost`` in the last cycle (of one status class), from the counters' last step."""
    total, known = 0.0, False
    for r in context.fresh("http_requests_total"):
        if r.labels.get("vhost") != vhost or (status_class and r.labels.get("status_class") != status_class):
            continue
        rate, previous = r.rate(), r.previous_ts
        if rate is not None and previous is not None:
            total, known = total + rate * (r.ts - previous), True
    return round(total) if known else None


def _web(context: Context) -> Iterator[Finding | None]:
    for r in context.fresh("http_server_error_ratio"):
        vhost = r.labels.get("vhost", "")
        errors = _requests(context, vhost, "5xx")
        if errors is not None and errors < MIN_ERRORS:
            continue
        threshold, usual = _against_baseline(context, r, SERVER_ERRORS)
        of = f" ({errors} of {_requests(context, vhost)})" if errors is not None else ""
        yield _finding(
            f"vhost:{vhost}",
            r.value,
            SERVER_ERRORS,
            f"{human_ratio(r.value)} of requests answered 5xx in the last cycle{of}{usual}",
            f"top_endpoints(vhost='{vhost}', by='errors')",
            threshold,
        )
    for r in context.fresh("http_request_duration_seconds"):
        if r.labels.get("quantile") != "0.95":
            continue
        vhost = r.labels.get("vhost", "")
        threshold, usual = _against_baseline(context, r, LATENCY_P95)
        yield _finding(
            f"vhost:{vhost}",
            r.value,
            LATENCY_P95,
            f"p95 latency {human_duration(r.value)} in the last cycle{usual}",
            f"top_endpoints(vhost='{vhost}', by='latency')",
            threshold,
        )


def _php_fpm(context: Context) -> Iterator[Finding | None]:
    for r in context.fresh("php_fpm_listen_queue"):
        pool = r.labels.get("pool", "")
        yield _finding(
            f"php_fpm:{pool}",
            r.value,
            LISTEN_QUEUE,
            f"{r.value:g} requests wait for a free worker",
            f"get_metrics(metric='php_fpm', labels={{'pool': '{pool}'}}, since='1h')",
            LISTEN_QUEUE.warning,
        )
    for r in context.fresh("php_fpm_max_children_reached_total"):
        pool = r.labels.get("pool", "")
        reached = context.rise(r.metric, r.labels, RECENT_SECONDS)
        if reached:
            yield Finding(
                severity="warning",
                subject=f"php_fpm:{pool}",
                problem=f"pm.max_children reached {reached:g} times in the last {_WINDOW}: requests queue",
                value=quantity(reached, "times"),
                hint=f"get_metrics(metric='php_fpm', labels={{'pool': '{pool}'}}, since='1h')",
            )


def _mysql(context: Context) -> Iterator[Finding | None]:
    for r in context.fresh("mysql_connections_used_ratio"):
        yield _finding(
            "mysql",
            r.value,
            MYSQL_CONNECTIONS,
            f"{human_ratio(r.value)} of max_connections in use",
            "get_metrics(metric='mysql_connections', since='1h')",
            MYSQL_CONNECTIONS.warning,
        )
    for r in context.fresh("mysql_replica_lag_seconds"):
        yield _finding(
            f"replica:{r.labels.get('channel') or 'default'}",
            r.value,
            REPLICA_LAG,
            f"replication {human_duration(r.value)} behind the source",
            "get_metrics(metric='mysql_replica', since='1h')",
            REPLICA_LAG.warning,
        )
    for metric in ("mysql_replica_io_running", "mysql_replica_sql_running"):
        for r in context.fresh(metric):
            if r.value < 1:
                thread = metric.removeprefix("mysql_replica_").removesuffix("_running").upper()
                yield Finding(
                    severity="critical",
                    subject=f"replica:{r.labels.get('channel') or 'default'}",
                    problem=f"replication {thread} thread stopped",
                    hint="get_metrics(metric='mysql_replica', since='1h'); get_events(kinds=['collector_error'])",
                )
    for r in context.fresh("mysql_slow_queries_total"):
        slow = context.rise(r.metric, r.labels, RECENT_SECONDS)
        if slow is not None:
            yield _finding(
                "mysql",
                slow,
                SLOW_QUERIES,
                f"{slow:g} slow queries in the last {_WINDOW}",
                "slow_queries(since='15m')",
                SLOW_QUERIES.warning,
            )


def _laravel(context: Context) -> Iterator[Finding | None]:
    for r in context.fresh("laravel_failed_jobs"):
        app = r.labels.get("app", "")
        failed = context.rise(r.metric, r.labels, RECENT_SECONDS)
        if failed is not None:
            yield _finding(
                f"app:{app}",
                failed,
                FAILED_JOBS,
                f"{failed:g} jobs failed in the last {_WINDOW} ({r.value:g} in failed_jobs)",
                f"recent_errors(app='{app}', since='15m')",
                FAILED_JOBS.warning,
            )
    for r in context.fresh("laravel_queue_oldest_job_age_seconds"):
        app, queue = r.labels.get("app", ""), r.labels.get("queue", "")
        yield _finding(
            f"queue:{app}/{queue}",
            r.value,
            QUEUE_AGE,
            f"the oldest ready job has waited {human_duration(r.value)}",
            f"get_metrics(metric='laravel_queue', labels={{'app': '{app}', 'queue': '{queue}'}}, since='1h')",
            QUEUE_AGE.warning,
        )
    for r in context.fresh("laravel_queue_jobs"):
        if r.labels.get("state") != "ready":
            continue
        app, queue = r.labels.get("app", ""), r.labels.get("queue", "")
        yield _finding(
            f"queue:{app}/{queue}",
            r.value,
            QUEUE_DEPTH,
            f"{r.value:g} jobs ready and waiting",
            f"get_metrics(metric='laravel_queue', labels={{'app': '{app}', 'queue': '{queue}'}}, since='1h')",
            QUEUE_DEPTH.warning,
        )
    for r in context.fresh("laravel_scheduler_heartbeat_age_seconds"):
        app = r.labels.get("app", "")
        yield _finding(
            f"app:{app}",
            r.value,
            HEARTBEAT_AGE,
            f"the scheduler's heartbeat is {human_duration(r.value)} old: schedule:run is not running",
            f"get_metrics(metric='laravel_scheduler', labels={{'app': '{app}'}}, since='1h')",
            HEARTBEAT_AGE.warning,
        )
    for r in context.fresh("laravel_horizon_up"):
        if r.value < 1:
            app = r.labels.get("app", "")
            yield Finding(
                severity="warning",
                subject=f"app:{app}",
                problem="Horizon is not running: queued jobs are not processed",
                hint=f"get_metrics(metric='laravel_horizon_up', labels={{'app': '{app}'}}, since='1h')",
            )


def application_findings(sources: Sources) -> list[Finding]:
    """What each application collector's newest readings say is wrong."""
    context = sources.context
    return [f for f in (*_web(context), *_php_fpm(context), *_mysql(context), *_laravel(context)) if f is not None]
