"""The Monitor: the one facade of operations that the HTTP API, MCP server, CLI and TUI offer.

Every operation is a coroutine, so that :class:`~crucible_monitor.remote.RemoteMonitor` can offer the same ones over
HTTP and the interfaces do not care which they hold (:class:`~crucible_monitor.operations.Operations`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from crucible_monitor import __version__
from crucible_monitor.actions import RestartRequest, restart_on
from crucible_monitor.agent import Agent
from crucible_monitor.alerts.operations import AlertOperations
from crucible_monitor.analysis.engine import AnomalyEngine
from crucible_monitor.analysis.quiet import maintenance_window, read_load
from crucible_monitor.analysis.recommend import RECENT_LIMIT, RECENT_SECONDS, recommendations
from crucible_monitor.config import patched, redacted
from crucible_monitor.errors import NotFoundError, QueryError
from crucible_monitor.history import metrics_report, query_history
from crucible_monitor.logs import tail_log
from crucible_monitor.models import EventKind, Severity, iso
from crucible_monitor.schemas import (
    AlertDetail,
    AlertFilter,
    AlertView,
    AnomalyRate,
    AnomalyView,
    AuditView,
    CapacityReport,
    CheckResult,
    CollectorStatus,
    ConfigUpdate,
    EndpointRanking,
    EventView,
    Explanation,
    Forecast,
    Health,
    LogTail,
    MetricHistory,
    MetricInfo,
    MetricsReport,
    PushResult,
    RecentErrors,
    Recommendation,
    Recurrence,
    RestartResult,
    ServiceDetail,
    ServiceState,
    ServiceStatus,
    SilenceView,
    SlowQueries,
    SlowQuerySource,
    StatusSummary,
    StorageView,
    SystemSnapshot,
    TopEndpoints,
    TransitionView,
)
from crucible_monitor.schemas.views import AuditList
from crucible_monitor.snapshot import system_snapshot
from crucible_monitor.status import gather_context, summarize

__all__ = ["Monitor"]


class Monitor:
    """Operations over a running :class:`Agent`; every interface is a thin layer over these methods."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    # -- agent ----------------------------------------------------------------------------------------------

    async def health(self, *, detailed: bool = False) -> Health:
        """Liveness, collectors' state and storage size; ``detailed`` adds error texts."""
        collectors = await self.collectors(detailed=detailed)
        stats = self.agent.store.stats()
        return Health(
            status="ok" if all(c.ok for c in collectors) else "degraded",
            version=__version__,
            host=self.agent.config.agent.hostname,
            started_at=iso(self.agent.started_at) if self.agent.started_at else None,
            uptime_seconds=round(self.agent.uptime(), 3),
            collectors=collectors,
            storage=StorageView(
                disk_bytes=stats.disk_bytes, wal_bytes=stats.wal_bytes, pending_rows=stats.pending_rows, days=stats.days
            ),
        )

    async def collectors(self, *, detailed: bool = True) -> list[CollectorStatus]:
        """Each collector's runs, errors and last duration."""
        return [h.view(name, detailed=detailed) for name, h in sorted(self.agent.health.items())]

    # -- current state --------------------------------------------------------------------------------------

    async def system_status(self) -> SystemSnapshot:
        """The newest system readings, with rates for counters, and the top processes."""
        return system_snapshot(
            self.agent.store.latest(), self.agent.config.agent.hostname, self.agent.latest_processes()
        )

    async def status_summary(self) -> StatusSummary:
        """What is wrong, since when, how bad, the newest incident first; then the vital signs."""
        alerts = await self.list_alerts(state="active")
        context = gather_context(self.agent, alerts, await self.list_alerts(state="resolved", limit=20))
        return summarize(
            await self.system_status(),
            await self.services(),
            await self.http_checks(),
            await self.collectors(),
            context,
            self.agent.gpu_readings(),
        )

    async def services(self, state: ServiceState = "all", category: str | None = None) -> list[ServiceStatus]:
        """Watched systemd units and supervisor programs, filtered by state and category."""
        return [
            s
            for s in self.agent.statuses()
            if (state == "all" or s.up == (state == "up")) and (category is None or s.category == category)
        ]

    async def get_service(self, name: str) -> ServiceDetail:
        """One service: its status, recent state changes and restarts, and the last lines of its log.

        Raises:
            NotFoundError: no watched service has this name (the message lists them).
        """
        statuses = {s.name: s for s in await self.services()}
        if name not in statuses:
            raise NotFoundError(f"unknown service {name!r}; watched: {', '.join(sorted(statuses)) or 'none'}")
        recent = await self.events(subject=name, since=self.agent.clock() - 86400, limit=20)
        log: LogTail | None = None
        log_error = None
        try:
            log = await self.tail_logs(name, lines=20)
        except (NotFoundError, QueryError) as exc:
            log_error = str(exc)
        except Exception as exc:  # a log that cannot be read must not hide the status
            log_error = f"{type(exc).__name__}: {exc}"
        return ServiceDetail(
            service=statuses[name],
            recent_events=recent,
            log=log,
            log_error=log_error,
            hint=f"tail_logs(source='{name}', contains='error') for more; restart_service only if allowlisted",
        )

    async def http_checks(self) -> list[CheckResult]:
        """The latest result of every HTTP check (checks that have not run yet are left out)."""
        return self.agent.check_results()

    # -- history --------------------------------------------------------------------------------------------

    async def list_metrics(self) -> list[MetricInfo]:
        """The metric catalogue of the running collectors."""
        seen: dict[str, MetricInfo] = {}
        for collector in self.agent.collectors.values():
            source = collector.name.partition(":")[0]
            for spec in collector.catalogue:
                seen.setdefault(
                    spec.name,
                    MetricInfo(
                        name=spec.name,
                        kind=spec.kind.value,
                        unit=spec.unit,
                        description=spec.description,
                        labels=list(spec.labels),
                        collector=source,
                    ),
                )
        return sorted(seen.values(), key=lambda m: m.name)

    async def push_metrics(self, body: str, *, content_type: str = "text/plain") -> PushResult:
        """Store pushed series (Prometheus text, or JSON with ``application/json``), stamped with the time now.

        Raises:
            MetricsRejected: a body that does not parse or a series that breaks a rule (422; the message says which).
            PushLimit: (413) over ``push.max_series_per_push`` or ``push.max_series``; the message names the limit.
            ActionRefused: pushing is off (``push.enabled``).
        """
        return await self.agent.push.receive(body, content_type)

    async def history(
        self,
        metric: str,
        *,
        start: float,
        end: float,
        step: float | None = None,
        agg: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> MetricHistory:
        """Points of one metric over a time range, downsampled to ``step`` seconds.

        ``agg`` defaults to ``rate`` for counters and ``avg`` for gauges; ``step`` defaults to about 300 buckets.

        Raises:
            QueryError: unknown metric or aggregation, an empty or reversed range, or too many points; the message
                lists the valid choices.
        """
        return query_history(
            self.agent.store, self.agent.catalogue(), metric, start=start, end=end, step=step, agg=agg, labels=labels
        )

    async def metrics_report(
        self,
        metric: str,
        *,
        start: float,
        end: float,
        step: float | None = None,
        agg: str | None = None,
        labels: Mapping[str, str] | None = None,
        max_points: int = 60,
        max_series: int = 10,
    ) -> MetricsReport:
        """A metric, or a group of metrics by prefix (``memory``, ``disk``), summarised with bounded points.

        Raises:
            QueryError: neither a metric nor a group; the message lists the groups and close metric names.
        """
        return metrics_report(
            self.agent.store,
            self.agent.catalogue(),
            metric,
            start=start,
            end=end,
            step=step,
            agg=agg,
            labels=labels,
            max_points=max_points,
            max_series=max_series,
        )

    async def events(
        self,
        *,
        since: float | None = None,
        kinds: list[str] | None = None,
        subject: str | None = None,
        limit: int = 100,
    ) -> list[EventView]:
        """Recorded events, newest first.

        Raises:
            QueryError: an unknown event kind (the message lists the valid ones).
        """
        valid = [k.value for k in EventKind]
        bad = [k for k in kinds or [] if k not in valid]
        if bad:
            raise QueryError(f"unknown event kind {bad[0]!r}; valid: {', '.join(valid)}")
        stored = self.agent.running.state.events(
            since=since, kinds=[EventKind(k) for k in kinds or []], subject=subject, limit=limit
        )
        return [EventView.of(s) for s in stored]

    # -- logs and actions -----------------------------------------------------------------------------------

    async def tail_logs(self, source: str, *, lines: int = 50, contains: str | None = None) -> LogTail:
        """The last lines of a watched service's log, of a file in ``logs.files`` (a glob: its newest file) or of a
        Laravel app's logs (``laravel:<app>``), optionally filtered.

        Raises:
            NotFoundError: an unknown source (the message lists the valid ones).
            CollectorError: the log exists but cannot be read here.
        """
        config = self.agent.config
        return await asyncio.to_thread(
            tail_log,
            source,
            lines=lines,
            contains=contains,
            services={s.name: s for s in await self.services()},
            files=config.logs.files,
            supervisor=config.collectors.services.supervisor,
            apps={app.name: app.log_patterns() for app in config.collectors.laravel.apps},
        )

    async def restart_service(
        self,
        name: str,
        *,
        reason: str,
        actor: str,
        confirmed: bool,
        dry_run: bool = False,
        claimed_by: str | None = None,
    ) -> RestartResult:
        """Restart an allowlisted service, within its budget, audited (:mod:`actions`) as by ``actor``, the token.

        Raises:
            ActionRefused: the guard rails say no; the message says why and what is allowed.
        """
        request = RestartRequest(name, reason, actor, confirmed, dry_run, claimed_by)
        return await restart_on(self.agent, request, self.services)

    async def audit(
        self, *, target: str | None = None, since: float | None = None, limit: int = 100, offset: int = 0
    ) -> AuditList:
        """A page of the audit records of actions, newest first: ``limit`` after skipping ``offset``."""
        state = self.agent.running.state
        records = [AuditView.of(r) for r in state.audit(target=target, since=since, limit=limit, offset=offset)]
        return AuditList.page(records, state.audit_count(target=target, since=since), limit, offset)

    # -- alerts ---------------------------------------------------------------------------------------------

    def _alerts(self) -> AlertOperations:
        return self.agent.running.alerting.operations

    async def list_alerts(
        self, *, state: AlertFilter = "active", severity: str | None = None, limit: int = 100
    ) -> list[AlertView]:
        """Alerts newest first, by state (active: pending or firing) and severity.

        Raises:
            QueryError: an unknown state or severity (the message lists the valid ones).
        """
        if severity is not None and severity not in {s.value for s in Severity}:
            raise QueryError(f"unknown severity {severity!r}; valid: {', '.join(s.value for s in Severity)}")
        return self._alerts().list_alerts(state=state, severity=Severity(severity) if severity else None, limit=limit)

    async def get_alert(self, alert_id: int) -> AlertDetail:
        """One alert with its history.

        Raises:
            NotFoundError: no alert has this id.
        """
        return self._alerts().get_alert(alert_id)

    async def acknowledge_alert(
        self, alert_id: int, *, by: str = "api", note: str | None = None, expires: timedelta | None = None
    ) -> AlertView:
        """Acknowledge an alert: no re-notification until it resolves (or ``expires`` passes); ``by`` defaults to
        the API's name for its caller.

        Raises:
            NotFoundError: no alert has this id.
            QueryError: it is resolved, or ``by`` is empty.
        """
        return self._alerts().acknowledge_alert(alert_id, by=by, note=note, expires=expires)

    async def silence_alerts(
        self,
        matchers: list[str],
        *,
        duration: timedelta,
        reason: str,
        author: str,
        starts_at: float | None = None,
        recurrence: Recurrence | None = None,
    ) -> SilenceView:
        """Mute the alerts matching every matcher for a while (optionally only inside recurring windows).

        Raises:
            QueryError: bad matchers, no reason or author, a duration out of range.
        """
        return self._alerts().silence_alerts(
            matchers, duration=duration, reason=reason, author=author, starts_at=starts_at, recurrence=recurrence
        )

    async def list_silences(self, *, include_expired: bool = False) -> list[SilenceView]:
        """Silences and maintenance windows."""
        return self._alerts().list_silences(include_expired=include_expired)

    async def delete_silence(self, silence_id: str, *, by: str) -> SilenceView:
        """End a silence now.

        Raises:
            NotFoundError: no silence has this id.
        """
        return self._alerts().delete_silence(silence_id, by=by)

    async def alert_history(self, *, since: float | None = None, limit: int = 100) -> list[TransitionView]:
        """Transitions of every alert, newest first."""
        return self._alerts().alert_history(since=since, limit=limit)

    # -- anomalies and capacity -----------------------------------------------------------------------------

    def _analysis(self) -> AnomalyEngine:
        engine = self.agent.running.analysis
        if engine is None:
            raise NotFoundError("the anomaly engine is off (analysis.enabled is false)")
        return engine

    async def list_anomalies(
        self, *, since: float | None = None, min_score: float = 0.0, limit: int = 100
    ) -> list[AnomalyView]:
        """Anomalies newest first: when, how strong, which series drove them."""
        return await asyncio.to_thread(self._analysis().list_anomalies, since, min_score, limit)

    async def explain_anomaly(
        self, anomaly_id: int | None = None, *, start: float | None = None, end: float | None = None
    ) -> Explanation:
        """Why an anomaly (or a time window, ``end`` defaulting to now) was unusual: what moved against the window
        before (no model needed), restarts, failing checks, exceptions, processes, events; series vs baseline and
        similar anomalies once a model exists.

        Raises:
            NotFoundError: no anomaly has this id.
            QueryError: neither an id nor a window, or an empty window.
        """
        engine = self._analysis()
        end = self.agent.clock() if start is not None and end is None else end
        catalogue = self.agent.catalogue()
        return await asyncio.to_thread(
            lambda: engine.explain_anomaly(anomaly_id, start=start, end=end, catalogue=catalogue)
        )

    async def forecast_capacity(self, resource: str, *, horizon: float | None = None) -> Forecast:
        """When a resource (memory, filesystem:<mount>, inodes:<mount>) fills, with the fit quality stated.

        Raises:
            QueryError: an unknown resource (the message lists them).
        """
        engine = self._analysis()
        return await asyncio.to_thread(engine.forecast_capacity, resource, horizon)

    async def capacity_report(self, *, horizon: float | None = None) -> CapacityReport:
        """Forecasts of every resource, the most urgent first."""
        engine = self._analysis()
        return await asyncio.to_thread(engine.capacity_report, horizon)

    async def get_recommendations(self) -> list[Recommendation]:
        """Actionable items from anomalies, forecasts, alerts and the weekly maintenance window, with evidence."""
        engine = self._analysis()
        now = self.agent.clock()
        anomalies = await asyncio.to_thread(engine.list_anomalies, now - RECENT_SECONDS, 0.0, RECENT_LIMIT)
        report = await asyncio.to_thread(engine.capacity_report)
        window = maintenance_window(*await asyncio.to_thread(read_load, self.agent.store, now), now)
        return recommendations(anomalies, report.forecasts, self._alerts().list_alerts(state="active"), window)

    async def anomaly_rate(self, *, since: float, until: float | None = None, bucket: float = 3600) -> AnomalyRate:
        """The host's anomalies per time bucket and the share of time inside one.

        Raises:
            QueryError: an empty range or too many buckets.
        """
        return await asyncio.to_thread(self._analysis().anomaly_rate, since, until, bucket)

    # -- applications ---------------------------------------------------------------------------------------

    async def slow_queries(self, *, since: float, limit: int = 10, source: SlowQuerySource = "auto") -> SlowQueries:
        """The statements that took the most time since ``since`` (performance_schema, else the slow log).

        Raises:
            NotFoundError: MySQL is not monitored.
            CollectorError: the server cannot be reached.
        """
        applications = self.agent.applications
        return await asyncio.to_thread(lambda: applications.slow_queries(since, limit=limit, source=source))

    async def recent_errors(self, app: str, *, since: float, limit: int = 50) -> RecentErrors:
        """A Laravel app's recent error log entries (with exception classes) and failed jobs.

        Raises:
            NotFoundError: no app has this name (the message lists them).
        """
        applications = self.agent.applications
        return await asyncio.to_thread(lambda: applications.recent_errors(app, since, limit=limit))

    async def top_endpoints(
        self, host: str | None = None, *, by: EndpointRanking = "latency", since: float | None = None, limit: int = 10
    ) -> TopEndpoints:
        """The slowest or most failing endpoints per virtual host, from the access logs.

        Raises:
            NotFoundError: no access logs are read, or an unknown host (the message lists them).
            QueryError: an unknown ranking.
        """
        return self.agent.applications.top_endpoints(host, by, since=since, limit=limit)

    # -- config ---------------------------------------------------------------------------------------------

    async def get_config(self) -> dict[str, Any]:
        """The config in force, secrets redacted."""
        return redacted(self.agent.config)

    async def update_config(self, patch: Mapping[str, Any]) -> ConfigUpdate:
        """Merge ``patch`` into the config in force, validate it, and apply it live (see :func:`config.patched`).

        Raises:
            ConfigError: the result is invalid, or changes a setting that needs a restart.
        """
        current = self.agent.config
        new = patched(current, patch)
        changed = [k for k in type(new).model_fields if getattr(new, k) != getattr(current, k)]
        await self.agent.apply_config(new)
        return ConfigUpdate(applied=True, changed=changed, config=redacted(new))
