"""Recommendations as a pure function of anomalies, forecasts and typed alert views, as the Monitor gathers them."""

from __future__ import annotations

from crucible_monitor.alerts.store import AlertState
from crucible_monitor.analysis.recommend import recommendations
from crucible_monitor.models import Severity
from crucible_monitor.schemas import AlertView, AnomalyView, Forecast, ThresholdEta


def _alert(alert_id: int, severity: Severity, annotations: dict[str, str], value: float | None = None) -> AlertView:
    return AlertView(
        id=alert_id,
        name="disk_usage",
        state=AlertState.FIRING,
        severity=severity,
        labels={"mountpoint": "/"},
        annotations=annotations,
        value=value,
        active_since="2025-11-30T10:00:00+00:00",
        fired_at="2025-11-30T10:05:00+00:00",
        resolved_at=None,
        acknowledgement=None,
        silenced_by=[],
        inhibited=False,
        flapping=False,
        escalated_at=None,
        fingerprint="abc",
    )


def _anomaly(*, ongoing: bool, score: float) -> AnomalyView:
    return AnomalyView(
        id=3,
        host="web-1",
        start="2025-11-30T09:00:00+00:00",
        peak="2025-11-30T09:02:00+00:00",
        end="2025-11-30T09:10:00+00:00",
        ongoing=ongoing,
        score=score,
        threshold=0.66,
        series=['cpu_usage_ratio{cpu="total"}', "load1"],
        summary="Anomaly from 2025-11-30T09:00:00+00:00 (ongoing): CPU usage was 97.0 %.",
    )


def _forecast(resource: str, days_90: float | None, days_full: float | None) -> Forecast:
    return Forecast(
        resource=resource,
        metric="filesystem_used_ratio",
        labels={"mountpoint": resource.partition(":")[2]},
        current=0.8,
        slope_per_day=0.01,
        slope_per_day_low=0.009,
        slope_per_day_high=0.011,
        horizon_end="2025-12-30T00:00:00+00:00",
        predicted=1.0,
        predicted_low=0.9,
        predicted_high=1.0,
        thresholds=[
            ThresholdEta(threshold=0.9, eta=None, earliest=None, latest=None, days=days_90),
            ThresholdEta(threshold=1.0, eta=None, earliest=None, latest=None, days=days_full),
        ],
        fit_quality="good",
        r_squared=0.95,
        points=400,
        history_hours=336,
        note=f"{resource}: 80.0 % used, changing +1.00 points/day (good fit).",
    )


def test_an_active_alert_is_recommended_with_its_summary_value_and_history_tool() -> None:
    alert = _alert(7, Severity.CRITICAL, {"summary": "/ is 97 % full"}, value=0.97)
    (item,) = recommendations([], [], [alert])
    assert (item.source, item.severity, item.title) == ("alert", "critical", "Alert disk_usage is firing")
    assert item.evidence == ["/ is 97 % full", "value 0.97"]
    assert [(t.tool, t.arguments) for t in item.next_tools] == [("get_alert", {"alert_id": 7})]


def test_an_alert_without_a_summary_is_described_by_its_description_or_name() -> None:
    described, bare = recommendations(
        [], [], [_alert(1, Severity.WARNING, {"description": "disk nearly full"}), _alert(2, Severity.INFO, {})]
    )
    assert described.evidence == ["disk nearly full"]
    assert bare.evidence == ["disk_usage"]


def test_items_come_most_severe_first_and_distant_forecasts_are_left_out() -> None:
    items = recommendations(
        [_anomaly(ongoing=False, score=0.9)],
        [_forecast("filesystem:/data", 5.0, 9.0), _forecast("filesystem:/srv", 45.0, 60.0)],
        [_alert(7, Severity.CRITICAL, {"summary": "/ is 97 % full"})],
    )
    assert [(i.source, i.severity) for i in items] == [
        ("alert", "critical"),
        ("forecast", "warning"),
        ("anomaly", "info"),
    ]
    assert items[1].title == "filesystem:/data reaches 90 % in about 5 days"
    assert items[1].action.startswith("Free space on /data")


def test_an_ongoing_strong_anomaly_is_critical_and_points_to_its_explanation() -> None:
    (item,) = recommendations([_anomaly(ongoing=True, score=0.8)], [], [])
    assert item.severity == "critical"
    assert item.title == 'Anomaly ongoing since 2025-11-30T09:00:00+00:00 in cpu_usage_ratio{cpu="total"}, load1'
    assert item.evidence[1] == "score 0.8 (threshold 0.66)"
    assert [(t.tool, t.arguments) for t in item.next_tools] == [("explain_anomaly", {"anomaly_id": 3})]
