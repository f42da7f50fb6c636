"""The Monitor-ready operations: clear errors for bad input, filters, silences (one-off and recurring), history."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from alerting_helpers import alerting, cpu_rule, engine, put
from manual_clock import Clock

from crucible_monitor.alerts.config import Recurrence
from crucible_monitor.alerts.operations import AlertOperations
from crucible_monitor.alerts.store import AlertState, TransitionKind
from crucible_monitor.errors import NotFoundError, QueryError
from crucible_monitor.models import Severity
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore


@pytest.fixture
def ops(state: StateDB, store: MetricStore, clock: Clock) -> AlertOperations:
    """Two firing alerts: a warning on /var and a critical CPU alert."""
    disk = {"name": "DiskFull", "kind": "threshold", "metric": "filesystem_used_ratio", "value": 0.9}
    critical = cpu_rule(name="CpuSaturated", severity="critical", **{"for": "0s"})
    alerts = engine(alerting([disk, critical]), state, store, clock)
    clock.advance(10)
    put(store, clock, "filesystem_used_ratio", 0.95, mountpoint="/var")
    put(store, clock, "cpu_usage_ratio", 0.99, cpu="total")
    alerts.evaluate()
    return AlertOperations(alerts)


def test_alerts_are_filtered_by_state_and_severity(ops: AlertOperations) -> None:
    assert [a.name for a in ops.list_alerts(severity=Severity.CRITICAL)] == ["CpuSaturated"]
    assert sorted(a.name for a in ops.list_alerts(state="firing")) == ["CpuSaturated", "DiskFull"]
    assert ops.list_alerts(state="resolved") == []
    with pytest.raises(QueryError, match="unknown alert state 'open'; valid: active, pending, firing, resolved"):
        ops.list_alerts(state="open")  # type: ignore[arg-type]
    with pytest.raises(QueryError, match="unknown severity 'urgent'; valid: info, warning, critical"):
        ops.list_alerts(severity="urgent")  # type: ignore[arg-type]


def test_acknowledging_an_unknown_or_resolved_alert_is_refused(
    ops: AlertOperations, store: MetricStore, clock: Clock
) -> None:
    with pytest.raises(NotFoundError, match="no alert with id 999"):
        ops.acknowledge_alert(999, by="alice")
    [cpu] = ops.list_alerts(severity=Severity.CRITICAL)
    with pytest.raises(QueryError, match="say who acknowledges"):
        ops.acknowledge_alert(cpu.id, by=" ")
    with pytest.raises(QueryError, match="expires must be a positive duration"):
        ops.acknowledge_alert(cpu.id, by="alice", expires=timedelta(0))
    clock.advance(10)
    put(store, clock, "cpu_usage_ratio", 0.1, cpu="total")
    put(store, clock, "filesystem_used_ratio", 0.95, mountpoint="/var")
    ops.engine.evaluate()
    with pytest.raises(QueryError, match=f"alert {cpu.id} is resolved; only pending or firing alerts"):
        ops.acknowledge_alert(cpu.id, by="alice")


@pytest.mark.parametrize(
    ("matchers", "message"),
    [
        (["service"], "invalid matcher 'service': use name=value, name!=value, name=~regex or name!~regex"),
        (["service=~(php"], "invalid regular expression in matcher"),
        ([], "give at least one matcher that selects something"),
        (["service=~.*"], "give at least one matcher that selects something"),
    ],
)
def test_silences_need_matchers_that_select_something(ops: AlertOperations, matchers: list[str], message: str) -> None:
    with pytest.raises(QueryError, match=message.replace("(", r"\(").replace("*", r"\*")):
        ops.silence_alerts(matchers, duration=timedelta(hours=1), reason="r", author="a")


def test_silences_need_a_reason_an_author_and_a_sensible_duration(ops: AlertOperations) -> None:
    with pytest.raises(QueryError, match="a silence needs a reason and an author"):
        ops.silence_alerts(["service=mysql"], duration=timedelta(hours=1), reason="", author="a")
    with pytest.raises(QueryError, match="duration must be positive and at most 366 days"):
        ops.silence_alerts(["service=mysql"], duration=timedelta(days=400), reason="r", author="a")


def test_a_recurring_silence_is_active_only_inside_its_windows(ops: AlertOperations, clock: Clock) -> None:
    every_day_at_eight = Recurrence(cron="0 8 * * *", duration=timedelta(minutes=30))  # START is 08:00 UTC
    silence = ops.silence_alerts(
        ["alertname=DiskFull"],
        duration=timedelta(days=7),
        reason="backups",
        author="ops",
        recurrence=every_day_at_eight,
    )
    assert silence.active
    [disk] = [a for a in ops.list_alerts() if a.name == "DiskFull"]
    assert disk.silenced_by == [silence.id]
    clock.advance(3600)
    assert not ops.list_silences()[0].active
    clock.advance(23 * 3600)
    assert ops.list_silences()[0].active
    clock.advance(7 * 86400)
    assert ops.list_silences() == [], "expired silences are listed only on request"
    assert [s.id for s in ops.list_silences(include_expired=True)] == [silence.id]


def test_silences_can_be_deleted_but_not_maintenance_windows(ops: AlertOperations) -> None:
    silence = ops.silence_alerts(["severity=critical"], duration=timedelta(hours=1), reason="r", author="a")
    deleted = ops.delete_silence(silence.id, by="b")
    assert (deleted.active, deleted.deleted_by) == (False, "b")
    assert ops.list_silences() == []
    with pytest.raises(NotFoundError, match="no silence with id 'nope'"):
        ops.delete_silence("nope", by="b")
    with pytest.raises(QueryError, match="is a maintenance window from the config file"):
        ops.delete_silence("window:sunday", by="b")


def test_history_lists_transitions_since_a_time_newest_first(ops: AlertOperations, clock: Clock) -> None:
    [cpu] = ops.list_alerts(severity=Severity.CRITICAL)
    clock.advance(60)
    ops.acknowledge_alert(cpu.id, by="alice", note="on it")
    recent = ops.alert_history(since=clock() - 1)
    assert [(t.kind, t.actor, t.note) for t in recent] == [(TransitionKind.ACKNOWLEDGED, "alice", "on it")]
    assert len(ops.alert_history()) > 1
    detail = ops.get_alert(cpu.id)
    assert detail.state is AlertState.FIRING and detail.history[-1].kind is TransitionKind.ACKNOWLEDGED
    json.loads(detail.model_dump_json())  # what the API and MCP return
    assert detail.fired_at == "2027-01-15T08:00:10+00:00"
