"""The weekly maintenance window, read from a real metric store's hourly rollups and proposed by get_recommendations.

History is written through ``MetricStore.append`` every 10 minutes with an injected clock, flushed to Parquet and
rolled up by ``maintain``, as the agent does; the window is chosen from what ``read_load`` reads back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from manual_clock import Clock

from crucible_monitor.agent import Agent
from crucible_monitor.analysis.quiet import maintenance_window, read_load
from crucible_monitor.analysis.recommend import recommendations
from crucible_monitor.config import Config
from crucible_monitor.models import Sample
from crucible_monitor.monitor import Monitor
from crucible_monitor.schemas import Recommendation
from crucible_monitor.storage.store import MetricStore

MONDAY = 1_763_942_400.0  # 2025-11-24T00:00:00Z, a Monday
HOUR = 3600.0
DAY = 86400.0
STEP = 600.0

Profile = Callable[[int], float]
"""A value by hour of the week (0 = Monday 00:00 UTC)."""


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


def _cpu_sunday_night(hour: int) -> float:
    """Busy days (50 %), calmer nights (15 %), and Sunday 03:00–05:00 the quietest (5 %)."""
    if hour in (6 * 24 + 3, 6 * 24 + 4):
        return 0.05
    return 0.15 if hour % 24 < 7 else 0.50


def _write(
    store: MetricStore,
    clock: Clock,
    days: float,
    cpu: Profile,
    requests: Profile | None = None,
    skip_day: int | None = None,
) -> None:
    """Samples every 10 minutes for ``days`` from :data:`MONDAY` (none on weekday ``skip_day``); flush, roll up."""
    rng = np.random.default_rng(7)
    count = 0.0
    for ts in np.arange(MONDAY, MONDAY + days * DAY, STEP):
        hour = int((ts - MONDAY) // HOUR) % 168
        if skip_day is not None and hour // 24 == skip_day:
            continue
        samples = [Sample("cpu_usage_ratio", cpu(hour) + 0.005 * rng.standard_normal(), {"cpu": "total"}, ts)]
        if requests is not None:
            count += requests(hour) * STEP
            samples.append(Sample("http_requests_total", count, {"vhost": "shop", "status_class": "2xx"}, ts))
        store.append(samples)
    clock.now = MONDAY + days * DAY
    store.flush()
    store.maintain()


def _window(store: MetricStore, clock: Clock) -> Recommendation:
    stamps, columns = read_load(store, clock.now)
    return maintenance_window(stamps, columns, clock.now)


def test_three_weeks_propose_the_quietest_slot_with_its_typical_cpu(store: MetricStore, clock: Clock) -> None:
    _write(store, clock, 21, _cpu_sunday_night)
    window = _window(store, clock)
    assert window.source == "maintenance_window"
    assert window.title == "Quietest 2-hour slot of the week: Sunday 03:00–05:00 UTC"
    typical, median = (float(x) for x in re.findall(r"([\d.]+) %", window.evidence[0]))
    assert window.evidence[0].startswith("typical CPU usage ")
    assert typical == pytest.approx(5.0, abs=0.3)
    assert median == pytest.approx(50.0, abs=0.3)
    assert window.evidence[-1] == "medians over 3 weeks of hourly history"
    assert window.next_tools[0].arguments["metric"] == "cpu_usage_ratio"


def test_two_days_say_how_much_more_history_is_needed(store: MetricStore, clock: Clock) -> None:
    _write(store, clock, 2, _cpu_sunday_night)
    window = _window(store, clock)
    assert window.title == "No maintenance window yet: 2.0 days of history, 5.0 more needed"
    assert "Quietest" not in " ".join(window.evidence)


def test_hours_of_the_week_never_seen_give_no_slot(store: MetricStore, clock: Clock) -> None:
    _write(store, clock, 10, _cpu_sunday_night, skip_day=1)  # no Tuesday in either week
    window = _window(store, clock)
    assert window.title == "No maintenance window yet: 24 hours of the week have no data"
    assert "the first Tuesday 00:00 UTC" in window.evidence[0]


def test_request_rate_decides_when_cpu_is_flat(store: MetricStore, clock: Clock) -> None:
    def requests(hour: int) -> float:
        return 0.5 if hour in (2 * 24 + 13, 2 * 24 + 14) else 20.0  # Wednesday 13:00–15:00 is quiet

    _write(store, clock, 14, lambda _hour: 0.20, requests)
    window = _window(store, clock)
    assert window.title == "Quietest 2-hour slot of the week: Wednesday 13:00–15:00 UTC"
    assert window.evidence[1].startswith("typical request rate 0.5 requests/s (week median 20 requests/s)")


def test_the_slot_wraps_from_sunday_into_monday() -> None:
    stamps = MONDAY + np.arange(14 * 24, dtype=np.float64) * HOUR
    hours = np.arange(len(stamps)) % 168
    cpu = np.where((hours == 167) | (hours == 0), 0.02, 0.30)
    window = maintenance_window(stamps, {"cpu": cpu}, MONDAY + 14 * DAY)
    assert window.title == "Quietest 2-hour slot of the week: Sunday 23:00–Monday 01:00 UTC"


def test_load_answers_when_cpu_is_not_stored() -> None:
    stamps = MONDAY + np.arange(7 * 24, dtype=np.float64) * HOUR
    load = np.where(np.arange(len(stamps)) // 24 == 5, 0.1, 2.0)  # Saturday is quiet
    window = maintenance_window(stamps, {"load": load}, MONDAY + 7 * DAY)
    assert window.title == "Quietest 2-hour slot of the week: Saturday 00:00–02:00 UTC"
    assert window.evidence[0].startswith("typical 1-minute load 0.1 threads")


def test_no_history_at_all_says_so() -> None:
    stamps = MONDAY + np.arange(24, dtype=np.float64) * HOUR
    window = maintenance_window(stamps, {}, MONDAY + DAY)
    assert window.title == "No maintenance window yet: 0.0 days of history, 7.0 more needed"


def test_recommendations_carry_the_window() -> None:
    window = maintenance_window(MONDAY + np.arange(24, dtype=np.float64) * HOUR, {}, MONDAY + DAY)
    assert recommendations([], [], [], window) == [window]


@pytest.mark.anyio
async def test_get_recommendations_proposes_the_window(tmp_path: Path, clock: Clock) -> None:
    config = Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path), "hostname": "quiet-host"},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {"services": {"enabled": False}},
            "alerts": {"cpu_threshold": None, "memory_threshold": None, "disk_threshold": None},
        }
    )
    agent = Agent(config, clock=clock)
    await agent.start(schedule=False)
    try:
        _write(agent.store, clock, 21, _cpu_sunday_night)
        items = [i for i in await Monitor(agent).get_recommendations() if i.source == "maintenance_window"]
        assert [i.title for i in items] == ["Quietest 2-hour slot of the week: Sunday 03:00–05:00 UTC"]
    finally:
        await agent.stop()
