"""The streaming detector live in the anomaly engine: from the first bucket, with no host model and no history.

A real metric store and state.db; the host's key series are written minute by minute at injected times (the clock is
the one thing made up), and the engine scores each minute once it is complete, as the scheduler does.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import numpy as np
import pytest
from manual_clock import Clock
from pydantic import ValidationError

from crucible_monitor.analysis.engine import AnomalyEngine
from crucible_monitor.analysis.features import KEY_SERIES
from crucible_monitor.analysis.live import series_threshold
from crucible_monitor.analysis.livekeys import FAMILIES
from crucible_monitor.anomalyconfig import LiveFamilyName
from crucible_monitor.config import AnalysisConfig, KeySeriesName
from crucible_monitor.models import Sample, iso
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore

START = 1_764_288_000.0  # 2025-11-28T00:00:00Z
MINUTE = 60.0
QUIET_MINUTES = 60  # a freshly started agent's first hour: far short of the host model's 120 buckets
BURN = START + QUIET_MINUTES * MINUTE


class Host:
    """Writes a host's CPU, load and memory minute by minute."""

    def __init__(self, store: MetricStore) -> None:
        self.store = store
        self.rng = np.random.default_rng(5)

    def minute(self, ts: float, cpu: float | None = None, memory: float = 0.40) -> None:
        rng = self.rng
        self.store.append(
            [
                Sample(
                    "cpu_usage_ratio", 0.05 + 0.01 * rng.standard_normal() if cpu is None else cpu, {"cpu": "total"}, ts
                ),
                Sample("load1", 0.3 + 0.05 * rng.standard_normal(), {}, ts),
                Sample("memory_used_ratio", memory + 0.002 * rng.standard_normal(), {}, ts),
            ]
        )


def _engine(store: MetricStore, state: StateDB, tmp_path: Path, clock: Clock, **config: object) -> AnomalyEngine:
    return AnomalyEngine(
        store, state, AnalysisConfig.model_validate(config), data_dir=tmp_path, host="web-1", clock=clock
    )


def _minutes(
    engine: AnomalyEngine, host: Host, clock: Clock, start: float, count: int, cpu: float | None, memory: float = 0.40
) -> list[int]:
    """Write and score ``count`` minutes; the ids of the anomalies opened."""
    opened = []
    for minute in range(count):
        ts = start + minute * MINUTE
        host.minute(ts, cpu, memory)
        clock.now = ts + MINUTE + 20
        run = engine.score()
        assert run.skipped == "no model fitted yet"  # the host model never ran: the streaming detector did
        opened += run.opened
    return opened


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


def test_a_cpu_burn_in_the_first_hour_is_an_anomaly_listed_and_explained_without_a_model(
    store: MetricStore, state: StateDB, tmp_path: Path, clock: Clock
) -> None:
    engine = _engine(store, state, tmp_path, clock)
    host = Host(store)
    assert _minutes(engine, host, clock, START, QUIET_MINUTES, cpu=None) == []
    opened = _minutes(engine, host, clock, BURN, 5, cpu=0.97)
    _minutes(engine, host, clock, BURN + 5 * MINUTE, 10, cpu=None)
    assert engine.models() == []

    (anomaly,) = engine.list_anomalies(since=START)
    assert opened == [anomaly.id]
    assert anomaly.series == ['cpu_usage_ratio{cpu="total"}']
    assert anomaly.start == iso(BURN) and not anomaly.ongoing
    assert anomaly.score >= anomaly.threshold == pytest.approx(0.24)
    assert "streaming detector" in anomaly.summary and "CPU usage was 97" in anomaly.summary

    explanation = engine.explain_anomaly(anomaly.id)
    assert explanation.anomaly == anomaly
    assert "streaming_detector" in explanation.basis and "host_model" not in explanation.basis
    assert explanation.method.startswith("streaming detector")
    assert explanation.summary.startswith(anomaly.summary)
    assert any(m.metric == "cpu_usage_ratio" for m in explanation.moved)  # the model-free comparison agrees

    rate = engine.anomaly_rate(START, clock.now)
    assert rate.total == 1
    [scored] = engine.anomaly_scores(BURN, BURN + 5 * MINUTE)
    assert scored.labels == {"host": "web-1", "series": 'cpu_usage_ratio{cpu="total"}'}


def test_a_restarted_engine_relearns_and_goes_on_without_reopening_the_past(
    store: MetricStore, state: StateDB, tmp_path: Path, clock: Clock
) -> None:
    host = Host(store)
    first = _engine(store, state, tmp_path, clock)
    _minutes(first, host, clock, START, QUIET_MINUTES, cpu=None)
    _minutes(first, host, clock, BURN, 5, cpu=0.97)
    again = _engine(store, state, tmp_path, clock)  # a new process: the detectors re-learn the stored history
    _minutes(again, host, clock, BURN + 5 * MINUTE, 10, cpu=None)
    (anomaly,) = again.list_anomalies(since=START)
    assert not anomaly.ongoing  # the open one was picked up and closed, not duplicated
    assert _minutes(again, host, clock, BURN + 15 * MINUTE, 3, cpu=0.97) == []  # a burn like the last: in range
    (leak,) = _minutes(again, host, clock, BURN + 18 * MINUTE, 3, cpu=None, memory=0.9)  # something new is seen
    assert again.list_anomalies(since=BURN + 18 * MINUTE)[0].series == ["memory_used_ratio"]
    assert leak == again.list_anomalies(since=BURN + 18 * MINUTE)[0].id


def test_sensitivity_scales_one_series_and_names_the_valid_ones_when_wrong(
    store: MetricStore, state: StateDB, tmp_path: Path, clock: Clock
) -> None:
    engine = _engine(store, state, tmp_path, clock, sensitivity={"cpu": 0.01})
    host = Host(store)
    _minutes(engine, host, clock, START, QUIET_MINUTES, cpu=None)
    assert _minutes(engine, host, clock, BURN, 5, cpu=0.97) == []  # a hundredth as sensitive: the burn is ignored
    assert engine.live.threshold("cpu") > engine.live.threshold("load") == pytest.approx(0.24)
    assert series_threshold(0.24, 2.0) < 0.24 < series_threshold(0.24, 0.5)
    with pytest.raises(ValidationError, match=r"unknown series cpu_total; valid: cpu, load, memory"):
        AnalysisConfig.model_validate({"sensitivity": {"cpu_total": 2.0}})
    with pytest.raises(ValidationError, match=r"greater than 0"):
        AnalysisConfig.model_validate({"sensitivity": {"cpu": 0}})


def test_the_configs_key_series_names_are_the_engines() -> None:
    assert list(get_args(KeySeriesName)) == [k.name for k in KEY_SERIES]
    assert list(get_args(LiveFamilyName)) == [f.name for f in FAMILIES]


def test_the_streaming_detector_can_be_switched_off(
    store: MetricStore, state: StateDB, tmp_path: Path, clock: Clock
) -> None:
    engine = _engine(store, state, tmp_path, clock, streaming=False)
    host = Host(store)
    _minutes(engine, host, clock, START, QUIET_MINUTES, cpu=None)
    assert _minutes(engine, host, clock, BURN, 5, cpu=0.97) == []
    assert engine.list_anomalies(since=START) == []


def test_a_gpu_that_heats_up_is_a_streaming_anomaly_from_the_first_hour(
    store: MetricStore, state: StateDB, tmp_path: Path, clock: Clock
) -> None:
    """The gpu collector's series (its readings from the recorded H200: 38 °C idle) are key series like the rest."""
    engine = _engine(store, state, tmp_path, clock)
    rng = np.random.default_rng(7)
    opened: list[int] = []
    for minute in range(QUIET_MINUTES + 10):
        ts = START + minute * MINUTE
        hot = minute >= QUIET_MINUTES
        labels = {"gpu": "0", "name": "NVIDIA H200"}
        store.append(
            [
                Sample("gpu_temperature_celsius", (83.0 if hot else 38.0) + rng.standard_normal() * 0.3, labels, ts),
                Sample("gpu_utilization_ratio", 0.02 + 0.005 * rng.standard_normal(), labels, ts),
            ]
        )
        clock.now = ts + MINUTE + 20
        opened += engine.score().opened
    anomalies = [a for a in engine.list_anomalies(limit=10) if a.id in opened]
    assert anomalies and any("gpu_temperature_celsius" in " ".join(a.series) for a in anomalies), anomalies
