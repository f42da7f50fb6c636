"""The agent runtime: the store, ``state.db``, the collectors and the APScheduler jobs that drive them.

What exists only while the agent runs (``state.db``, alerting, the anomaly engine) is on :class:`Running`, which
:meth:`Agent.start` builds and :attr:`Agent.running` returns. The collectors are reached through typed accessors
(:meth:`Agent.statuses`, :meth:`Agent.check_results`, :meth:`Agent.latest_processes`, :meth:`Agent.gpu_readings`,
:attr:`Agent.applications`), never searched by type from outside.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from crucible_monitor import __version__, notify
from crucible_monitor.alerts import (
    Alerting,
    AlertingConfig,
    AlertInputs,
    effective_alerting,
    load_alerting,
)
from crucible_monitor.analysis.engine import AnomalyEngine
from crucible_monitor.collectors import ScheduledCollector, build_collectors
from crucible_monitor.collectors.agent import AgentCollector
from crucible_monitor.collectors.applications import Applications
from crucible_monitor.collectors.base import Collector, CollectorHealth
from crucible_monitor.collectors.http_checks import HttpCheckCollector
from crucible_monitor.collectors.processes import ProcessesCollector
from crucible_monitor.collectors.push import PushReceiver
from crucible_monitor.collectors.services import ServicesCollector
from crucible_monitor.config import Config
from crucible_monitor.errors import AgentNotStarted, DiskFull, StorageError
from crucible_monitor.findings.sources import Recoveries
from crucible_monitor.models import Event, EventKind, MetricSpec, Sample, Severity, iso
from crucible_monitor.schemas import AnomalyScore, CheckResult, FillForecast, GpuReading, ProcessSnapshot, ServiceStatus
from crucible_monitor.storage.full import JobLog, SpaceReserve
from crucible_monitor.storage.promql import history_source
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore
from crucible_monitor.storage.workers import worker_pool

__all__ = ["Agent", "Running", "alerting_config"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_C = TypeVar("_C")

_MAINTENANCE_EVERY = timedelta(hours=1)
_EVENT_RETENTION = timedelta(days=90)
_FORECAST_EVERY = timedelta(minutes=15)
_STOP_WAIT = timedelta(seconds=30)  # how long a stop waits for the jobs running (a flush, a collection) to finish


@dataclass(frozen=True, slots=True)
class Running:
    """What exists while the agent runs: built by :meth:`Agent.start`, dropped by :meth:`Agent.stop`."""

    state: StateDB
    alerting: Alerting
    analysis: AnomalyEngine | None
    """None when ``analysis.enabled`` is false."""


def alerting_config(config: Config) -> AlertingConfig:
    """The alerting file (if any) plus the shorthand rules and notification receivers of the main config.

    Raises:
        ConfigError: the alerting file is unreadable or invalid, or names unknown rules or receivers.
    """
    base = load_alerting(config.alerts.rules_file) if config.alerts.rules_file else AlertingConfig()
    return effective_alerting(base, config.alerts, config.notifications)


class Agent:
    """Owns everything that runs: build it, ``await start()``, ``await stop()``."""

    def __init__(
        self,
        config: Config,
        *,
        config_path: Path | None = None,
        clock: Callable[[], float] = time.time,
        speed: float = 1,
    ) -> None:
        """``clock`` stamps every sample, event and retention decision; ``speed`` is how many of its seconds pass
        in one real second (the reliability harness runs days in minutes: every job's interval is divided by it)."""
        self.config = config
        self.config_path = config_path
        self.clock = clock
        self.speed = speed
        self.started_at: float | None = None
        self.recoveries = Recoveries()
        """What the status summary said lately (a finding that leaves it shows as recovered)."""
        data_dir = config.agent.data_dir
        self.store = MetricStore(
            data_dir / "metrics", config.storage, retention=config.agent.data_retention, clock=clock
        )
        self._running: Running | None = None
        self.push = PushReceiver(
            lambda: self.config.push,
            self._store,
            lambda: self.collectors.values(),
            state_file=data_dir / "push.json",
            clock=clock,
        )
        self.applications = Applications(lambda: self.config, lambda: self.collectors.values())
        self._forecasts: list[FillForecast] = []
        self._forecasts_at = 0.0
        self.collectors: dict[str, Collector] = {}
        self.health: dict[str, CollectorHealth] = {}
        self._scheduled: dict[str, ScheduledCollector] = {}
        self._scheduler: AsyncIOScheduler | None = None
        self._workers: ProcessPoolExecutor | None = None
        self._closing = False
        self._disk_full_since: float | None = None
        self._in_flight: set[asyncio.Task[Any] | None] = set()
        self._reserve = SpaceReserve(data_dir / ".space-reserve")  # a dot: backups leave it out
        self._job_log = JobLog(clock, on_full=self._reserve.release)

    # -- lifecycle ------------------------------------------------------------------------------------------

    async def start(self, *, schedule: bool = True) -> None:
        """Recover storage, open ``state.db`` and start collecting at once.

        With ``schedule=False`` no job runs by itself: callers drive :meth:`run_collector` (tests do).

        Raises:
            StorageError: the data directory cannot be used.
        """
        data_dir = self.config.agent.data_dir
        try:
            data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        except OSError as exc:
            raise StorageError(f"cannot create data directory {data_dir}: {exc.strerror}") from exc
        if self.config.storage.worker_process:
            self._workers = worker_pool()
            self.store.runner = self._in_worker
        await asyncio.to_thread(self.store.open)
        self._reserve.take()
        state = StateDB(data_dir / "state.db", clock=self.clock)
        alerting = alerting_config(self.config)
        alerts = Alerting(
            alerting,
            state,
            AlertInputs(
                samples=self.store,
                services=self.statuses,
                http_checks=self.check_results,
                anomaly_scores=self._anomaly_scores,
                forecasts=lambda: self._forecasts,
            ),
            host=self.config.agent.hostname,
            clock=self.clock,
        )
        analysis = None
        if self.config.analysis.enabled:
            analysis = AnomalyEngine(
                history_source(self.config.analysis, self.store),
                state,
                self.config.analysis,
                data_dir=data_dir,
                host=self.config.agent.hostname,
                snapshots=self.latest_processes,
                clock=self.clock,
            )
        self._running = Running(state, alerts, analysis)
        self.started_at = self.clock()
        self._scheduler = AsyncIOScheduler(
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
        )
        self._scheduler.add_job(self._job(self._flush), self._every(self.config.storage.flush_interval), id="flush")
        self._scheduler.add_job(
            self._job(self._maintain),
            self._every(_MAINTENANCE_EVERY),
            id="maintenance",
            next_run_time=datetime.now() + timedelta(minutes=1) / self.speed,
        )
        for scheduled in self._build_collectors(self.config):
            self._schedule(scheduled)
        self._schedule_alerting(alerting)
        self._scheduler.add_job(self._job(self._deliver), self._every(timedelta(seconds=2)), id="alerts:deliver")
        if analysis is not None:
            every = self._every(self.config.analysis.score_interval)
            self._scheduler.add_job(self._job(self.analyse), every, id="analysis")
        if schedule:
            notify.schedule_watchdog(self._scheduler)
            self._scheduler.start()
        state.add_events(
            [Event(EventKind.AGENT, "agent", f"crucible-monitor {__version__} started", data={"pid": os.getpid()})]
        )
        gc.freeze()  # what exists now lives as long as the agent: keep the collector from scanning it every cycle
        logger.info("agent started: %d collectors, data in %s", len(self.collectors), data_dir)
        if schedule:
            notify.notify("READY=1")

    def _job(self, run: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        """``run`` as a scheduled job whose runs :meth:`stop` waits for (the scheduler would cancel them)."""

        async def job(*args: Any) -> None:
            task = asyncio.current_task()
            self._in_flight.add(task)
            try:
                await run(*args)
            finally:
                self._in_flight.discard(task)

        return job

    def _every(self, interval: timedelta) -> IntervalTrigger:  # of the agent's clock: real seconds over ``speed``
        return IntervalTrigger(seconds=interval.total_seconds() / self.speed)

    async def stop(self) -> None:
        """Stop the jobs, flush the WAL to Parquet and close everything."""
        notify.notify("STOPPING=1")
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.pause()
            if running_jobs := {t for t in self._in_flight if t is not None}:
                await asyncio.wait(running_jobs, timeout=_STOP_WAIT.total_seconds())
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
        for collector in self.collectors.values():
            aclose = getattr(collector, "aclose", None)
            if aclose is not None:
                await aclose()
        self._closing = True
        running, self._running = self._running, None
        if running is not None:
            await running.alerting.aclose()
        await asyncio.to_thread(self.store.close)
        if self._workers is not None:
            self._workers.shutdown()
            self._workers = None
        if running is not None:
            running.state.add_events([Event(EventKind.AGENT, "agent", "crucible-monitor stopped")])
            running.state.close()
        logger.info("agent stopped")

    def _in_worker(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run a storage job in a fresh worker process (one job per process, so its memory goes back)."""
        if self._workers is None:
            raise StorageError("the storage worker pool is closed (the agent has stopped)")
        return self._workers.submit(fn, *args).result()

    # -- jobs -----------------------------------------------------------------------------------------------

    def _build_collectors(self, config: Config) -> list[ScheduledCollector]:
        own = AgentCollector(lambda: self.health, self.store.stats, clock=self.clock)
        every = config.agent.collect_interval
        pushed = [ScheduledCollector(self.push, every, config.push, "push")] if config.push.enabled else []
        return [*build_collectors(config, clock=self.clock), ScheduledCollector(own, every, None, "agent"), *pushed]

    async def apply_config(self, config: Config) -> None:
        """Switch to a new config live: rebuild and reschedule only the collectors whose settings changed.

        Raises:
            ConfigError: the new alerting configuration is invalid (nothing is changed then).
        """
        alerting = alerting_config(config)
        wanted = {s.collector.name: s for s in self._build_collectors(config)}
        for name, current in list(self._scheduled.items()):
            new = wanted.get(name)
            if new is not None and (new.settings, new.interval) == (current.settings, current.interval):
                del wanted[name]  # unchanged: keep the running collector and its state
                continue
            await self._unschedule(name)
        for scheduled in wanted.values():
            self._schedule(scheduled)
        self.config = config
        running = self._running
        if running is not None:
            running.alerting.configure(alerting)
            self._schedule_alerting(alerting)
            if running.analysis is not None:
                running.analysis.config = config.analysis
        self.store.config = config.storage
        self.store.retention = config.agent.data_retention
        logging.getLogger("crucible_monitor").setLevel(config.agent.log_level.upper())
        if running is not None:
            running.state.add_events([Event(EventKind.CONFIG, "agent", "configuration changed and applied live")])

    async def _unschedule(self, name: str) -> None:
        if self._scheduler is not None:
            self._scheduler.remove_job(f"collector:{name}")
        collector = self.collectors.pop(name)
        self._scheduled.pop(name)
        self.health.pop(name, None)
        aclose = getattr(collector, "aclose", None)
        if aclose is not None:
            await aclose()

    def _schedule(self, scheduled: ScheduledCollector) -> None:
        if self._scheduler is None:
            raise AgentNotStarted("collectors are scheduled once the agent has started: await Agent.start() first")
        name = scheduled.collector.name
        self.collectors[name] = scheduled.collector
        self._scheduled[name] = scheduled
        seconds = scheduled.interval.total_seconds()
        self.health[name] = CollectorHealth(interval=seconds, key=scheduled.key)
        real = seconds / self.speed
        self._scheduler.add_job(
            self._job(self.run_collector),
            # fire on the interval's grid (10:00:00, 10:00:10...), so that samples can carry the tick itself
            IntervalTrigger(
                seconds=real, start_date=datetime.fromtimestamp(math.ceil(time.time() / real) * real, tz=UTC)
            ),
            args=[name],
            id=f"collector:{name}",
            next_run_time=datetime.now(),
            misfire_grace_time=max(1, int(real)),
        )

    async def run_collector(self, name: str) -> None:
        """Run one collection: store its samples and events, note what it could not read (its blind spots); a
        failure is logged, counted and recorded."""
        collector = self.collectors[name]
        health = self.health[name]
        started = self.clock()
        health.runs += 1
        health.last_run = started
        try:
            collection = await collector.collect()
            if self._closing:
                return
            health.samples_last_run = self._store(collection.samples, health.stamp(started))
            self._record([*collection.events, *health.succeeded(name, collection.blind, started)])
        except Exception as exc:  # a job's top level: one collector failing must not stop the others
            logger.exception("collector %s failed", name)
            self._record(health.failed(name, f"{type(exc).__name__}: {exc}", started))
        finally:
            health.last_duration = self.clock() - started

    def _store(self, samples: list[Sample], tick: float) -> int:
        """Append to the store, every sample stamped ``tick``. While the disk is full the samples are held in memory
        (and served): a log line a minute at most, the space reserve given up for ``state.db``, one event once space
        returns."""
        try:
            if self._reserve.holding_samples():  # the reserve is state.db's: wait for space beyond it
                held = self.store.hold(samples, tick)
                raise DiskFull(f"less than the space reserve free: {held} samples held in memory until there is space")
            stored = self.store.append(samples, tick)
        except DiskFull as exc:
            self._disk_full_since = self._disk_full_since or self.clock()
            self._job_log.disk_full("collecting", exc)
            return 0
        if self._disk_full_since is not None:
            self._reserve.take()
            held = stored - len(samples)
            message = f"the disk was full from {iso(self._disk_full_since)}: {held} samples held in memory, now written"
            self._disk_full_since = None
            logger.info("%s", message)
            self._record([Event(EventKind.AGENT, "storage", message, Severity.WARNING)])
        return stored

    def _record(self, events: list[Event]) -> None:
        if events and self._running is not None:
            self._running.state.add_events(events)

    def _schedule_alerting(self, alerting: AlertingConfig) -> None:
        if self._scheduler is None:
            return
        every = alerting.evaluation_interval or self.config.agent.collect_interval
        job = self._job(self.evaluate_alerts)
        self._scheduler.add_job(job, self._every(every), id="alerts:evaluate", replace_existing=True)

    async def evaluate_alerts(self) -> None:
        """One alert evaluation cycle; a failure is logged and the next cycle tries again."""
        if self._running is None:
            return
        try:
            await asyncio.to_thread(self._running.alerting.evaluate)
        except Exception:  # a job's top level: alerting must keep running
            self._job_log.failed("alert evaluation failed")

    async def analyse(self) -> None:
        """Refit the host model when due, score new buckets, record anomalies as events, refresh forecasts."""
        running = self._running
        if running is None or running.analysis is None:
            return
        engine = running.analysis
        try:
            if engine.refit_due():
                await asyncio.to_thread(engine.refit)
            run = await asyncio.to_thread(engine.score)
            changed = {**dict.fromkeys(run.opened, "started"), **dict.fromkeys(run.closed, "ended")}
            views = {a.id: a for a in engine.list_anomalies(limit=100) if a.id in changed}
            running.state.add_events(
                Event(
                    EventKind.ANOMALY,
                    self.config.agent.hostname,
                    f"anomaly {a.id} {changed[a.id]}: {a.summary}",
                    Severity.WARNING if changed[a.id] == "started" else Severity.INFO,
                    {"anomaly_id": a.id, "score": a.score, "series": a.series},
                )
                for a in views.values()
            )
            if self.clock() - self._forecasts_at >= _FORECAST_EVERY.total_seconds():
                self._forecasts = await asyncio.to_thread(engine.fill_forecasts)
                self._forecasts_at = self.clock()
        except Exception:  # a job's top level: analysis must not stop the agent
            self._job_log.failed("anomaly analysis failed; will retry")

    def _anomaly_scores(self, start: float, end: float) -> list[AnomalyScore]:
        """Anomalies overlapping a window as scored points (their peaks), for anomaly alert rules."""
        analysis = self._running.analysis if self._running is not None else None
        return [] if analysis is None else analysis.anomaly_scores(start, end)

    async def _deliver(self) -> None:
        if self._running is None:
            return
        try:
            await self._running.alerting.deliver()
        except Exception:  # a job's top level: the outbox keeps what it could not send
            self._job_log.failed("alert delivery failed")

    async def _flush(self) -> None:
        try:
            await asyncio.to_thread(self.store.flush)
        except StorageError:
            self._job_log.failed("flushing the WAL to Parquet failed; will retry")

    async def _maintain(self) -> None:
        try:
            await asyncio.to_thread(self.store.maintain)
            if (running := self._running) is not None:
                oldest = self.clock() - _EVENT_RETENTION.total_seconds()
                running.state.prune_events(oldest)
                running.alerting.prune(oldest)
        except (StorageError, OSError):
            self._job_log.failed("storage maintenance failed; will retry")

    # -- queries --------------------------------------------------------------------------------------------

    @property
    def running(self) -> Running:
        """``state.db``, alerting and the anomaly engine of the running agent.

        Raises:
            AgentNotStarted: the agent has not started, or has stopped.
        """
        if self._running is None:
            raise AgentNotStarted("the agent is not running: await Agent.start() first")
        return self._running

    @property
    def services_collector(self) -> ServicesCollector | None:
        """The services collector, when services are watched."""
        return self._collector_of(ServicesCollector)

    def statuses(self) -> list[ServiceStatus]:
        """Every watched service's last known status (none when services are not watched)."""
        collector = self.services_collector
        return collector.statuses() if collector is not None else []

    async def refresh_statuses(self) -> list[ServiceStatus]:
        """Read the services once more now (when they are watched), then return their statuses."""
        if self.services_collector is not None:
            await self.run_collector(self.services_collector.name)
        return self.statuses()

    def check_results(self) -> list[CheckResult]:
        """The latest result of every HTTP check that has run."""
        return [c.result for c in self.collectors.values() if isinstance(c, HttpCheckCollector) and c.result]

    def latest_processes(self) -> ProcessSnapshot | None:
        """The newest top-processes snapshot, when processes are watched and one was taken."""
        collector = self._collector_of(ProcessesCollector)
        return collector.latest if collector is not None else None

    def gpu_readings(self) -> list[GpuReading]:
        """Every GPU's last reading, when the gpu collector runs (none without it or without a GPU)."""
        if "gpu" not in self.collectors:
            return []
        from crucible_monitor.collectors.gpu import GpuCollector  # imported with its collector (and pynvml)

        collector = self._collector_of(GpuCollector)
        return list(collector.latest) if collector is not None else []

    def _collector_of(self, kind: type[_C]) -> _C | None:
        return next((c for c in self.collectors.values() if isinstance(c, kind)), None)

    def catalogue(self) -> dict[str, MetricSpec]:
        """Every metric the running collectors can emit, by name."""
        return {spec.name: spec for c in self.collectors.values() for spec in c.catalogue}

    def uptime(self) -> float:  # seconds since start
        return 0.0 if self.started_at is None else self.clock() - self.started_at
