"""The alert lifecycle and dispatch over a real state.db and metric store, driven by an injected clock."""

from __future__ import annotations

from datetime import timedelta

from alerting_helpers import alerting, cpu_rule, engine, outbox, put, summary
from manual_clock import Clock

from crucible_monitor.alerts.operations import AlertOperations
from crucible_monitor.alerts.store import AlertState, TransitionKind
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore


def _cycle(store: MetricStore, clock: Clock, value: float, seconds: float = 10, **labels: str) -> None:
    clock.advance(seconds)
    put(store, clock, "cpu_usage_ratio", value, **({"cpu": "total"} | labels))


def test_a_threshold_alert_is_pending_then_fires_after_for_then_resolves(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    alerts = engine(alerting([cpu_rule()]), state, store, clock)
    ops = AlertOperations(alerts)
    _cycle(store, clock, 0.95)
    alerts.evaluate()
    [pending] = ops.list_alerts()
    assert pending.state is AlertState.PENDING and pending.value == 0.95
    assert pending.labels == {"alertname": "HighCpu", "severity": "warning", "host": "web1", "cpu": "total"}
    assert pending.annotations == {"summary": "CPU 95% on web1"}
    assert outbox(state) == []

    for _ in range(6):  # 60 s after it became pending
        _cycle(store, clock, 0.97)
        alerts.evaluate()
    [firing] = ops.list_alerts()
    assert (firing.id, firing.state, firing.annotations["summary"]) == (
        pending.id,
        AlertState.FIRING,
        "CPU 97% on web1",
    )
    assert summary(outbox(state)) == [("hook", [("firing", "HighCpu:total")])]

    _cycle(store, clock, 0.5)
    alerts.evaluate()
    assert ops.list_alerts() == []
    assert len(outbox(state)) == 1, "the resolution waits for group_interval"
    _cycle(store, clock, 0.5, seconds=60)
    alerts.evaluate()
    detail = ops.get_alert(pending.id)
    assert detail.state is AlertState.RESOLVED
    kinds = [t.kind for t in detail.history]
    assert kinds == [
        TransitionKind.PENDING,
        TransitionKind.FIRING,
        TransitionKind.NOTIFIED,
        TransitionKind.RESOLVED,
        TransitionKind.NOTIFIED,
    ]
    assert summary(outbox(state))[1] == ("hook", [("resolved", "HighCpu:total")])


def test_a_pending_alert_that_clears_before_for_is_never_notified(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    alerts = engine(alerting([cpu_rule()]), state, store, clock)
    _cycle(store, clock, 0.95)
    alerts.evaluate()
    _cycle(store, clock, 0.2)
    alerts.evaluate()
    [alert] = AlertOperations(alerts).list_alerts(state="all")
    assert alert.state is AlertState.RESOLVED and alert.fired_at is None
    assert [t.kind for t in AlertOperations(alerts).get_alert(alert.id).history][-1] is TransitionKind.CLEARED
    assert outbox(state) == []


def test_hysteresis_keeps_an_alert_firing_until_the_value_crosses_clear(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    alerts = engine(alerting([cpu_rule(**{"for": "0s", "clear": 0.8})]), state, store, clock)
    ops = AlertOperations(alerts)
    _cycle(store, clock, 0.95)
    alerts.evaluate()
    _cycle(store, clock, 0.85)  # below the threshold, above clear: still firing
    alerts.evaluate()
    assert [a.state for a in ops.list_alerts()] == [AlertState.FIRING]
    _cycle(store, clock, 0.79)
    alerts.evaluate()
    assert ops.list_alerts() == []
    _cycle(store, clock, 0.85)  # not firing now: 0.85 does not reach the threshold again
    alerts.evaluate()
    assert ops.list_alerts() == []


def test_keep_firing_for_holds_a_cleared_alert_before_it_resolves(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    alerts = engine(alerting([cpu_rule(**{"for": "0s", "keep_firing_for": "30s"})]), state, store, clock)
    ops = AlertOperations(alerts)
    _cycle(store, clock, 0.95)
    alerts.evaluate()
    for _ in range(3):  # cleared for 0, 10, 20 s
        _cycle(store, clock, 0.1)
        alerts.evaluate()
        assert [a.state for a in ops.list_alerts()] == [AlertState.FIRING]
    _cycle(store, clock, 0.1)  # cleared for 30 s
    alerts.evaluate()
    assert ops.list_alerts() == []


def test_a_rule_without_fresh_data_leaves_its_alerts_as_they_are(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    alerts = engine(alerting([cpu_rule(**{"for": "0s"})]), state, store, clock)
    _cycle(store, clock, 0.95)
    alerts.evaluate()
    clock.advance(600)  # no samples for 10 minutes: stale, the rule cannot be told
    report = alerts.evaluate()
    assert report.unknown_rules == ["HighCpu"]
    assert [a.state for a in AlertOperations(alerts).list_alerts()] == [AlertState.FIRING]


def test_each_series_is_its_own_alert_and_a_missing_series_resolves(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    rule = {"name": "DiskFull", "kind": "threshold", "metric": "filesystem_used_ratio", "value": 0.9}
    alerts = engine(alerting([rule]), state, store, clock)
    clock.advance(10)
    put(store, clock, "filesystem_used_ratio", 0.95, mountpoint="/")
    put(store, clock, "filesystem_used_ratio", 0.97, mountpoint="/var")
    alerts.evaluate()
    assert len(AlertOperations(alerts).list_alerts()) == 2
    clock.advance(400)  # /var unmounted: its series goes stale while / keeps reporting
    put(store, clock, "filesystem_used_ratio", 0.95, mountpoint="/")
    alerts.evaluate()
    [left] = AlertOperations(alerts).list_alerts()
    assert left.labels["mountpoint"] == "/"


def test_groups_follow_group_wait_group_interval_and_repeat_interval(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    rule = {"name": "DiskFull", "kind": "threshold", "metric": "filesystem_used_ratio", "value": 0.9}
    config = alerting([rule], route={"group_wait": "30s", "group_interval": "2m", "repeat_interval": "1h"})
    alerts = engine(config, state, store, clock)

    def disks(*mountpoints: str, seconds: float = 10) -> None:
        clock.advance(seconds)
        for mountpoint in mountpoints:
            put(store, clock, "filesystem_used_ratio", 0.95, mountpoint=mountpoint)
        alerts.evaluate()

    disks("/")
    assert outbox(state) == []  # group_wait
    disks("/", "/var", seconds=20)  # joins before the first flush
    assert outbox(state) == []
    disks("/", "/var")  # 30 s after the group appeared: one notification with both
    assert summary(outbox(state)) == [("hook", [("firing", "DiskFull:/"), ("firing", "DiskFull:/var")])]
    disks("/", "/var", "/home", seconds=60)  # a new alert waits for group_interval
    assert len(outbox(state)) == 1
    disks("/", "/var", "/home", seconds=60)  # 2 minutes after the first flush
    assert summary(outbox(state))[1] == (
        "hook",
        [("firing", "DiskFull:/"), ("firing", "DiskFull:/home"), ("firing", "DiskFull:/var")],
    )
    for _ in range(20):  # nothing changes for 40 minutes: nothing is sent
        disks("/", "/var", "/home", seconds=120)
    assert len(outbox(state)) == 2
    for _ in range(10):  # past repeat_interval since the last notification: sent again once
        disks("/", "/var", "/home", seconds=120)
    assert len(outbox(state)) == 3


def test_a_resolution_is_notified_once_and_the_group_then_disappears(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    alerts = engine(alerting([cpu_rule(**{"for": "0s"})]), state, store, clock)
    _cycle(store, clock, 0.95)
    alerts.evaluate()
    _cycle(store, clock, 0.2, seconds=60)
    alerts.evaluate()
    for _ in range(5):
        _cycle(store, clock, 0.2, seconds=60)
        alerts.evaluate()
    assert [n.status for n in outbox(state)] == ["firing", "resolved"]
    assert state.execute("SELECT count(*) FROM alert_groups")[0][0] == 0


def test_acknowledged_alerts_are_not_renotified_until_the_acknowledgement_expires(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    config = alerting([cpu_rule(**{"for": "0s"})], route={"group_wait": "0s", "repeat_interval": "10m"})
    alerts = engine(config, state, store, clock)
    ops = AlertOperations(alerts)
    _cycle(store, clock, 0.95)
    alerts.evaluate()
    [alert] = ops.list_alerts()
    acked = ops.acknowledge_alert(alert.id, by="alice", note="deploy running", expires=timedelta(hours=1))
    assert acked.acknowledgement is not None and acked.acknowledgement.by == "alice"
    assert [a.id for a in ops.list_alerts(state="acknowledged")] == [alert.id]
    for _ in range(11):  # 55 minutes: well past repeat_interval, but acknowledged
        _cycle(store, clock, 0.95, seconds=300)
        alerts.evaluate()
    assert len(outbox(state)) == 1
    _cycle(store, clock, 0.95, seconds=300)  # the acknowledgement expired
    alerts.evaluate()
    assert len(outbox(state)) == 2
    kinds = [t.kind for t in ops.get_alert(alert.id).history]
    assert TransitionKind.ACKNOWLEDGED in kinds and TransitionKind.ACK_EXPIRED in kinds
    assert ops.get_alert(alert.id).acknowledgement is None


def test_a_silence_mutes_matching_alerts_and_deleting_it_lets_them_through(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    rule = {"name": "DiskFull", "kind": "threshold", "metric": "filesystem_used_ratio", "value": 0.9}
    alerts = engine(alerting([rule], route={"group_by": ["..."]}), state, store, clock)
    ops = AlertOperations(alerts)
    silence = ops.silence_alerts(
        ["alertname=DiskFull", "mountpoint=~/var.*"], duration=timedelta(hours=2), reason="resize", author="bob"
    )
    assert silence.active and silence.author == "bob"
    clock.advance(10)
    put(store, clock, "filesystem_used_ratio", 0.95, mountpoint="/")
    put(store, clock, "filesystem_used_ratio", 0.95, mountpoint="/var/lib")
    alerts.evaluate()
    assert summary(outbox(state)) == [("hook", [("firing", "DiskFull:/")])]
    muted = next(a for a in ops.list_alerts() if a.labels["mountpoint"] == "/var/lib")
    assert muted.silenced_by == [silence.id]
    ops.delete_silence(silence.id, by="bob")
    clock.advance(10)
    put(store, clock, "filesystem_used_ratio", 0.95, mountpoint="/")
    put(store, clock, "filesystem_used_ratio", 0.95, mountpoint="/var/lib")
    alerts.evaluate()
    assert summary(outbox(state))[1] == ("hook", [("firing", "DiskFull:/var/lib")])


def test_a_weekly_maintenance_window_mutes_only_inside_its_hours(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    window = {
        "name": "friday-backups",
        "matchers": ["alertname=HighCpu"],
        "schedule": {"days": ["fri"], "start": "08:00", "duration": "2h", "timezone": "UTC"},
    }
    alerts = engine(
        alerting([cpu_rule(**{"for": "0s"})], maintenance_windows=[window]), state, store, clock
    )  # START is Friday 2027-01-15 08:00 UTC
    _cycle(store, clock, 0.95)
    alerts.evaluate()
    assert outbox(state) == []
    assert [v.id for v in AlertOperations(alerts).list_silences() if v.active] == ["window:friday-backups"]
    _cycle(store, clock, 0.95, seconds=2 * 3600)  # 10:00:20: the window is over
    alerts.evaluate()
    assert len(outbox(state)) == 1


def test_a_critical_alert_inhibits_the_warning_on_the_same_resource(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    warning = cpu_rule(name="CpuBusy", value=0.8, labels={"resource": "cpu"}, **{"for": "0s"})
    critical = cpu_rule(
        name="CpuSaturated", value=0.95, severity="critical", labels={"resource": "cpu"}, **{"for": "0s"}
    )
    inhibit = [{"source": ["severity=critical"], "target": ["severity=warning"], "equal": ["resource"]}]
    alerts = engine(alerting([warning, critical], inhibit_rules=inhibit), state, store, clock)
    _cycle(store, clock, 0.99)
    alerts.evaluate()
    assert summary(outbox(state)) == [("hook", [("firing", "CpuSaturated:total")])]
    inhibited = next(a for a in AlertOperations(alerts).list_alerts() if a.name == "CpuBusy")
    assert inhibited.inhibited
    _cycle(store, clock, 0.9, seconds=60)  # the critical one resolves: the warning is notified now
    alerts.evaluate()
    statuses = {(a.status, a.name) for n in outbox(state)[1:] for a in n.alerts}
    assert statuses == {("resolved", "CpuSaturated"), ("firing", "CpuBusy")}


def test_a_flapping_alert_is_not_notified_until_it_settles(state: StateDB, store: MetricStore, clock: Clock) -> None:
    flapping = {"window": "30m", "start_at": 4, "stop_below": 2}
    alerts = engine(alerting([cpu_rule(**{"for": "0s"})], flapping=flapping), state, store, clock)
    for value in [0.95, 0.1, 0.95, 0.1]:  # four transitions: flapping from the fourth
        _cycle(store, clock, value, seconds=60)
        alerts.evaluate()
    assert [n.status for n in outbox(state)] == ["firing", "resolved", "firing"]
    for value in [0.95, 0.1, 0.95]:
        _cycle(store, clock, value, seconds=60)
        alerts.evaluate()
    assert len(outbox(state)) == 3, "nothing is sent while it flaps"
    [alert] = AlertOperations(alerts).list_alerts()
    assert alert.flapping
    for _ in range(30):  # steady for 30 minutes: transitions leave the window, flapping stops
        _cycle(store, clock, 0.95, seconds=60)
        alerts.evaluate()
    kinds = [t.kind for t in AlertOperations(alerts).alert_history(limit=1000)]
    assert TransitionKind.FLAPPING_STARTED in kinds and TransitionKind.FLAPPING_STOPPED in kinds
    assert not AlertOperations(alerts).list_alerts()[0].flapping
    assert [n.status for n in outbox(state)] == ["firing", "resolved", "firing"], "still firing, already notified"


def test_an_unacknowledged_critical_alert_escalates_once_after_the_delay(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    config = alerting(
        [cpu_rule(severity="critical", **{"for": "0s"})],
        receivers={
            "hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
            "pager": {"type": "webhook", "url": "http://127.0.0.1:9/pager"},
        },
        route={"receivers": ["hook"], "group_wait": "0s"},
        escalations=[{"after": "15m", "receivers": ["pager"]}],
    )
    alerts = engine(config, state, store, clock)
    _cycle(store, clock, 0.99)
    alerts.evaluate()
    for _ in range(4):
        _cycle(store, clock, 0.99, seconds=300)
        alerts.evaluate()
    escalated = [n for n in outbox(state) if n.receiver == "pager"]
    assert len(escalated) == 1 and escalated[0].escalation
    [alert] = AlertOperations(alerts).list_alerts()
    assert alert.escalated_at is not None


def test_an_acknowledged_critical_alert_does_not_escalate(state: StateDB, store: MetricStore, clock: Clock) -> None:
    config = alerting(
        [cpu_rule(severity="critical", **{"for": "0s"})], escalations=[{"after": "15m", "receivers": ["hook"]}]
    )
    alerts = engine(config, state, store, clock)
    _cycle(store, clock, 0.99)
    alerts.evaluate()
    [alert] = AlertOperations(alerts).list_alerts()
    AlertOperations(alerts).acknowledge_alert(alert.id, by="carol")
    _cycle(store, clock, 0.99, seconds=3600)
    alerts.evaluate()
    assert not any(n.escalation for n in outbox(state))


def test_a_restarted_engine_keeps_its_alerts_and_does_not_notify_them_again(
    state: StateDB, store: MetricStore, clock: Clock
) -> None:
    config = alerting([cpu_rule(**{"for": "0s"})])
    _cycle(store, clock, 0.95)
    engine(config, state, store, clock).evaluate()
    assert len(outbox(state)) == 1
    restarted = engine(config, state, store, clock)  # same state.db, as after an agent restart
    for _ in range(3):
        _cycle(store, clock, 0.95)
        restarted.evaluate()
    assert len(outbox(state)) == 1
    [alert] = AlertOperations(restarted).list_alerts()
    assert alert.state is AlertState.FIRING


def test_removing_a_rule_resolves_its_alerts(state: StateDB, store: MetricStore, clock: Clock) -> None:
    alerts = engine(alerting([cpu_rule(**{"for": "0s"})]), state, store, clock)
    _cycle(store, clock, 0.95)
    alerts.evaluate()
    alerts.configure(alerting([]))
    _cycle(store, clock, 0.95)
    alerts.evaluate()
    [alert] = AlertOperations(alerts).list_alerts(state="all")
    assert alert.state is AlertState.RESOLVED
    history = AlertOperations(alerts).get_alert(alert.id).history
    assert [(t.kind, t.note) for t in history if t.kind is TransitionKind.RESOLVED] == [
        (TransitionKind.RESOLVED, "rule removed from the configuration")
    ]
