"""The anomaly engine over a real metric store and state.db: refit, scoring, a CPU burn explained, forecasts.

History is written through ``MetricStore.append`` with an injected clock (two quiet days at 1-minute steps); the
burn is a real CPU-burning child process, seen by the real processes collector, while its minutes of CPU samples
are written at the injected times.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from cpu_burn import cpu_ticks, wait_for_ticks
from manual_clock import Clock

from crucible_monitor.analysis.engine import AnomalyEngine
from crucible_monitor.analysis.recommend import RECENT_LIMIT, RECENT_SECONDS, recommendations
from crucible_monitor.collectors.processes import ProcessesCollector, ProcessSnapshot
from crucible_monitor.config import AnalysisConfig, SystemCollectorConfig
from crucible_monitor.errors import NotFoundError, QueryError
from crucible_monitor.models import Event, EventKind, Sample, iso
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore

pytestmark = pytest.mark.anyio

START = 1_764_288_000.0  # 2025-11-28T00:00:00Z
MINUTE = 60.0
HISTORY = 2 * 1440  # minutes of quiet history
BURN = START + HISTORY * MINUTE  # the burn starts here


class Host:
    """Writes the key series of a host minute by minute: quiet, or with the CPU burning."""

    def __init__(self, store: MetricStore) -> None:
        self.store = store
        self.rng = np.random.default_rng(42)
        self.disk = 0.0

    def minute(self, ts: float, *, cpu: float | None = None) -> None:
        rng = self.rng
        self.disk += 50_000 * MINUTE * (1 + 0.2 * rng.standard_normal())
        cpu_value = 0.05 + 0.01 * rng.standard_normal() if cpu is None else cpu
        self.store.append(
            [
                Sample("cpu_usage_ratio", cpu_value, {"cpu": "total"}, ts),
                Sample("load1", (0.3 if cpu is None else 1.0) + 0.05 * rng.standard_normal(), {}, ts),
                Sample("memory_used_ratio", 0.40 + 0.002 * rng.standard_normal(), {}, ts),
                Sample("disk_read_bytes_total", self.disk, {"device": "sda"}, ts),
                Sample(
                    "filesystem_used_ratio",
                    0.60 + 0.01 * (ts - START) / 86400 + 0.0005 * rng.standard_normal(),  # one point a day
                    {"mountpoint": "/data", "device": "sdb", "fstype": "ext4"},
                    ts,
                ),
            ]
        )


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def host(store: MetricStore, clock: Clock) -> Host:
    writer = Host(store)
    for minute in range(HISTORY):
        writer.minute(START + minute * MINUTE)
    clock.now = BURN
    return writer


async def _snapshot_while_burning(pid: int) -> ProcessSnapshot:
    """A real snapshot in which the burner has used CPU since the previous one."""
    collector = ProcessesCollector(SystemCollectorConfig())
    await collector.collect()
    wait_for_ticks(pid, cpu_ticks(pid) + 4)  # the burner has run between the two snapshots
    await collector.collect()
    assert collector.latest is not None
    return collector.latest


def _engine(
    store: MetricStore,
    state: StateDB,
    tmp_path: Path,
    clock: Clock,
    *,
    snapshots: Callable[[], ProcessSnapshot | None] | None = None,
) -> AnomalyEngine:
    return AnomalyEngine(
        store, state, AnalysisConfig(), data_dir=tmp_path, host="web-1", clock=clock, snapshots=snapshots
    )


def _run_minutes(
    engine: AnomalyEngine, host: Host, clock: Clock, start: float, minutes: int, cpu: float | None
) -> None:
    """Write each minute, then score it once it is complete (as the scheduler does every minute)."""
    for minute in range(minutes):
        ts = start + minute * MINUTE
        host.minute(ts, cpu=cpu)
        clock.now = ts + MINUTE + 20
        engine.score()


async def test_a_cpu_burn_becomes_one_anomaly_explained_by_cpu_and_the_burning_process(
    tmp_path: Path,
    store: MetricStore,
    state: StateDB,
    host: Host,
    clock: Clock,
    burn_cpu: Callable[[], subprocess.Popen[bytes]],
) -> None:
    burner = burn_cpu()
    snapshot = await _snapshot_while_burning(burner.pid)
    engine = _engine(store, state, tmp_path, clock, snapshots=lambda: snapshot.model_copy(update={"ts": clock.now}))
    model = engine.refit()
    assert model is not None and model.samples == HISTORY and "cpu" in model.features
    assert Path(model.path).exists() and Path(model.path).parent == tmp_path / "models"
    state.add_events([Event(EventKind.SERVICE_RESTART, "php8.2-fpm", "php8.2-fpm restarted", ts=BURN - 120)])

    _run_minutes(engine, host, clock, BURN, 10, cpu=0.97)
    _run_minutes(engine, host, clock, BURN + 10 * MINUTE, 10, cpu=None)

    (anomaly,) = engine.list_anomalies(since=BURN - 3600)
    assert (anomaly.start, anomaly.end, anomaly.ongoing) == (iso(BURN), iso(BURN + 10 * MINUTE), False)
    assert anomaly.score > anomaly.threshold
    assert anomaly.series[0] == 'cpu_usage_ratio{cpu="total"}'

    explanation = engine.explain_anomaly(anomaly.id)
    top = explanation.series[0]
    assert (top.metric, top.labels) == ("cpu_usage_ratio", {"cpu": "total"})
    assert top.value == pytest.approx(0.97) and top.mads is not None and top.mads > 20
    assert top.since == iso(BURN)
    assert burner.pid in [p.pid for p in explanation.top_processes_by_cpu]
    assert "CPU usage was 97.0 %" in explanation.summary
    assert [e.subject for e in explanation.events] == ["php8.2-fpm"]
    assert {t.tool for t in explanation.next_tools} >= {"get_metrics", "get_system_status", "list_services"}
    assert explanation.method.startswith(f"host model {model.id}: attribution against its baselines")
    assert {"previous_window", "host_model", "process_snapshots"} <= set(explanation.basis)
    assert explanation.moved[0].metric == "cpu_usage_ratio" and explanation.moved[0].z > 3  # the window before: quiet
    assert explanation.totals["events"] == 1

    by_window = engine.explain_anomaly(start=BURN + 120, end=BURN + 180)
    assert by_window.anomaly is not None and by_window.anomaly.id == anomaly.id


async def test_a_window_before_any_model_is_compared_with_the_one_before_it(
    tmp_path: Path, store: MetricStore, state: StateDB, host: Host, clock: Clock
) -> None:
    engine = _engine(store, state, tmp_path, clock)
    for minute in range(10):
        host.minute(BURN + minute * MINUTE, cpu=0.95 if minute >= 5 else None)
    clock.now = BURN + 10 * MINUTE
    explanation = engine.explain_anomaly(start=BURN + 5 * MINUTE, end=BURN + 10 * MINUTE)
    assert explanation.method.startswith("no model yet: compared with the previous window")
    assert explanation.basis == ["previous_window"] and explanation.series == []
    top = explanation.moved[0]
    assert (top.metric, top.labels, top.value, top.unit) == ("cpu_usage_ratio", {"cpu": "total"}, 0.95, "ratio")
    assert top.z > 3 and top.change.endswith("→ 95.0 %")
    assert explanation.moved[1].metric == "load1"  # the key series lead
    assert 'cpu_usage_ratio{cpu="total"} rose' in explanation.summary

    empty = engine.explain_anomaly(start=START - 7200, end=START - 3600)  # before any data: nothing to compare
    assert empty.moved == [] and empty.basis == []
    assert empty.method.endswith("which holds no data: series are not compared")


async def test_a_quiet_continuation_opens_no_anomaly(
    tmp_path: Path, store: MetricStore, state: StateDB, host: Host, clock: Clock
) -> None:
    engine = _engine(store, state, tmp_path, clock)
    engine.refit()
    _run_minutes(engine, host, clock, BURN, 60, cpu=None)
    assert engine.list_anomalies() == []
    assert engine.anomaly_rate(since=BURN, bucket=1800).total == 0


async def test_a_recurring_burn_is_similar_to_the_earlier_ones_at_the_same_hour(
    tmp_path: Path, store: MetricStore, state: StateDB, host: Host, clock: Clock
) -> None:
    engine = _engine(store, state, tmp_path, clock)
    engine.refit()
    for day in range(3):
        start = BURN + day * 86400
        _run_minutes(engine, host, clock, start, 5, cpu=0.9)
        _run_minutes(engine, host, clock, start + 5 * MINUTE, 10, cpu=None)
        clock.now = start + 86400  # a day passes without scoring
        engine.score()
    anomalies = engine.list_anomalies()
    assert len(anomalies) == 3
    explanation = engine.explain_anomaly(anomalies[0].id)
    assert [s.id for s in explanation.similar] == [anomalies[1].id, anomalies[2].id]
    assert all(s.same_time_of_day for s in explanation.similar)
    assert explanation.recurring
    rate = engine.anomaly_rate(since=BURN, until=BURN + 3 * 86400, bucket=86400)
    assert [b.anomalies for b in rate.buckets] == [1, 1, 1]


async def test_models_are_registered_and_reloaded_after_a_restart(
    tmp_path: Path, store: MetricStore, state: StateDB, host: Host, clock: Clock
) -> None:
    first = _engine(store, state, tmp_path, clock)
    assert first.score().skipped == "no model fitted yet"
    info = first.refit()
    assert info is not None
    restarted = _engine(store, state, tmp_path, clock)
    assert restarted.models()[0] == info
    _run_minutes(restarted, host, clock, BURN, 3, cpu=0.97)
    assert len(restarted.list_anomalies()) == 1


async def test_refit_waits_for_enough_history(tmp_path: Path, store: MetricStore, state: StateDB, clock: Clock) -> None:
    Host(store).minute(START)
    clock.now = START + 120
    engine = _engine(store, state, tmp_path, clock)
    assert engine.refit_due()
    assert engine.refit() is None
    assert engine.models() == []
    assert not engine.refit_due()  # too little history: the next attempt waits
    clock.now += 600
    assert engine.refit_due()


async def test_a_model_is_refitted_once_it_is_refit_interval_old(
    tmp_path: Path, store: MetricStore, state: StateDB, host: Host, clock: Clock
) -> None:
    engine = _engine(store, state, tmp_path, clock)
    engine.refit()
    assert not engine.refit_due()
    clock.now += AnalysisConfig().refit_interval.total_seconds()
    assert engine.refit_due()


async def test_a_filesystem_filling_a_point_a_day_is_forecast_and_recommended(
    tmp_path: Path, store: MetricStore, state: StateDB, host: Host, clock: Clock
) -> None:
    engine = _engine(store, state, tmp_path, clock)
    forecast = engine.forecast_capacity("filesystem:/data", horizon=30 * 86400)
    assert forecast.fit_quality == "good"
    assert forecast.slope_per_day == pytest.approx(0.01, rel=0.05)
    days_to_90 = forecast.thresholds[0].days
    assert days_to_90 is not None and days_to_90 == pytest.approx(28, abs=1.5)  # 0.62 now, +0.01 a day
    report = engine.capacity_report()
    assert [f.resource for f in report.forecasts] == ["filesystem:/data", "memory"]
    assert report.forecasts[1].fit_quality == "no_trend"
    anomalies = engine.list_anomalies(since=clock.now - RECENT_SECONDS, limit=RECENT_LIMIT)
    (item,) = recommendations(anomalies, report.forecasts, [])
    assert (item.source, item.severity) == ("forecast", "info")
    assert "filesystem:/data" in item.title


async def test_bad_requests_name_the_valid_choices(
    tmp_path: Path, store: MetricStore, state: StateDB, host: Host, clock: Clock
) -> None:
    engine = _engine(store, state, tmp_path, clock)
    with pytest.raises(QueryError, match=r"unknown resource 'disk:/'; valid: filesystem:/data, memory"):
        engine.forecast_capacity("disk:/")
    with pytest.raises(NotFoundError, match="no anomaly with id 99"):
        engine.explain_anomaly(99)
    with pytest.raises(QueryError, match="window is empty"):
        engine.explain_anomaly(start=BURN, end=BURN - 60)
    with pytest.raises(QueryError, match="give an anomaly id"):
        engine.explain_anomaly()


async def test_alerting_reads_fill_times_and_anomaly_scores_as_numbers(
    tmp_path: Path, store: MetricStore, state: StateDB, host: Host, clock: Clock
) -> None:
    engine = _engine(store, state, tmp_path, clock)
    forecast = engine.forecast_capacity("filesystem:/data")
    (fill,) = [f for f in engine.fill_forecasts() if f.metric == "filesystem_used_ratio"]
    assert fill.full_at is not None and iso(fill.full_at) == forecast.thresholds[1].eta
    assert (dict(fill.labels), fill.quality) == ({"mountpoint": "/data"}, forecast.r_squared)

    engine.refit()
    _run_minutes(engine, host, clock, BURN, 3, cpu=0.97)
    (anomaly,) = engine.list_anomalies()
    (point,) = engine.anomaly_scores(BURN, BURN + 3 * MINUTE)
    assert iso(point.ts) == anomaly.peak and (point.score, point.anomalous) == (anomaly.score, True)
    assert point.labels == {"host": "web-1", "series": anomaly.series[0]}
    assert engine.anomaly_scores(BURN + 3600, BURN + 7200) == []
