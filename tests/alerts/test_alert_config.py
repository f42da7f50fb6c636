"""The alerting file: the shipped one loads, errors name file, line, key and the valid choices, shorthand merges."""

from __future__ import annotations

from pathlib import Path

import pytest

from crucible_monitor.alerts.config import AlertingConfig, effective_alerting, load_alerting, parse_alerting
from crucible_monitor.alerts.receivers import WebhookReceiver
from crucible_monitor.alerts.rules import ServiceRule, ThresholdRule
from crucible_monitor.alerts.shorthand import shorthand_rules
from crucible_monitor.config import AlertsConfig, NotificationsConfig, load_config
from crucible_monitor.errors import ConfigError

CONFIGS = Path(__file__).parents[2] / "configs"


def test_the_shipped_alerting_file_loads_and_merges_with_the_shipped_main_config() -> None:
    monitor = load_config(CONFIGS / "monitor.yaml")
    config = effective_alerting(load_alerting(CONFIGS / "alerts.yaml"), monitor.alerts, monitor.notifications)
    names = [r.name for r in config.rules]
    assert names[:5] == ["HighCpuUsage", "HighMemoryUsage", "DiskSpaceLow", "ServiceDown", "SlowHttpCheck"]
    assert {"CpuSaturated", "DiskFullSoon", "AnomalousBehaviour", "SlowUnderLoad"} <= set(names)
    assert len(names) == len(set(names))


def test_errors_name_the_file_line_key_and_valid_choices() -> None:
    text = """\
rules:
  - name: HighCpu
    kind: threshold
    metric: cpu_usage_ratio
    valu: 0.9
  - name: Y
    kind: sevice
  - name: Z
    kind: service
    annotations: {summary: "{{ valu }} down"}
receivers:
  hook: {type: webhook, url: "http://x", secrett: abc}
routes:
  - receivers: [hook]
    matchers: ["severity=~(crit"]
    group_wait: 5 sec
"""
    with pytest.raises(ConfigError) as failure:
        parse_alerting(text, "alerts.yaml")
    lines = str(failure.value).splitlines()
    assert lines[0] == "alerts.yaml:2: rules[0].value: Field required"
    assert lines[1].startswith("alerts.yaml:5: rules[0].valu: unknown key 'valu' (valid keys: name, severity,")
    assert lines[2] == (
        "alerts.yaml:7: rules[1].kind: invalid kind 'sevice'; valid: "
        "'threshold', 'service', 'http_check', 'certificate', 'anomaly', 'forecast', 'composite'"
    )
    assert lines[3].startswith("alerts.yaml:10: rules[2].annotations.summary: unknown template variable 'valu'")
    assert "valid: value, threshold, name, severity, host, labels.<name>" in lines[3]
    assert lines[4] == (
        "alerts.yaml:12: receivers.hook.secrett: unknown key 'secrett' (valid keys: timeout, type, url, secret)"
    )
    assert lines[5].startswith("alerts.yaml:15: routes[0].matchers[0]: invalid regular expression")
    assert lines[6].startswith("alerts.yaml:16: routes[0].group_wait: invalid duration '5 sec'")
    assert len(lines) == 7


def test_errors_are_rendered_as_in_the_main_config(tmp_path: Path) -> None:
    text = f"""\
rules:
  - {{name: A, kind: threshold, metric: m, value: 1, op: "=>"}}
  - 3
receivers:
  hook:
    type: webhook
    url: "http://x"
    secret_file: {tmp_path}/missing
"""
    with pytest.raises(ConfigError) as failure:
        parse_alerting(text, "alerts.yaml")
    lines = str(failure.value).splitlines()
    assert lines[0].startswith("alerts.yaml:2: rules[0].op: invalid value '=>': Input should be '>', '>='")
    assert lines[1] == "alerts.yaml:3: rules[1]: expected a mapping of keys, got int"
    assert lines[2].startswith("alerts.yaml:8: receivers.hook.secret_file: cannot read secret_file ")
    assert len(lines) == 3
    window = '{name: w, matchers: [a=b], schedule: {cron: "0 2 * * sun", duration: 2h}}'
    with pytest.raises(ConfigError, match="maintenance window names must be unique; repeated: w"):
        parse_alerting(f"maintenance_windows: [{window}, {window}]\n")


def test_shorthand_thresholds_become_rules_and_null_turns_one_off() -> None:
    rules = shorthand_rules(AlertsConfig(cpu_threshold=80, disk_threshold=None, response_time_threshold=None))
    assert [r.name for r in rules] == ["HighCpuUsage", "HighMemoryUsage", "ServiceDown"]
    cpu = rules[0]
    assert isinstance(cpu, ThresholdRule)
    assert (cpu.metric, cpu.match, cpu.value, cpu.clear, cpu.for_.total_seconds()) == (
        "cpu_usage_ratio",
        {"cpu": "total"},
        0.8,
        0.75,
        300,
    )
    assert isinstance(rules[2], ServiceRule) and rules[2].severity == "critical"


def test_the_file_wins_over_shorthand_rules_and_seed_receivers() -> None:
    alerting = parse_alerting(
        """
rules:
  - {name: HighCpuUsage, kind: threshold, metric: cpu_usage_ratio, value: 0.5}
receivers:
  webhook: {type: webhook, url: "https://file.example/hook"}
"""
    )
    notifications = NotificationsConfig.model_validate(
        {
            "webhook": {"enabled": True, "url": "https://seed.example/hook"},
            "slack": {"enabled": True, "webhook_url": "https://hooks.slack.example/T/B/x"},
        }
    )
    config = effective_alerting(alerting, AlertsConfig(), notifications)
    [cpu] = [r for r in config.rules if r.name == "HighCpuUsage"]
    assert isinstance(cpu, ThresholdRule) and cpu.value == 0.5
    webhook = config.receivers["webhook"]
    assert isinstance(webhook, WebhookReceiver) and webhook.url == "https://file.example/hook"
    assert sorted(config.receivers) == ["slack", "webhook"]


def test_unknown_references_are_reported_with_the_valid_names() -> None:
    alerting = parse_alerting(
        """
rules:
  - {name: Both, kind: composite, of: [HighCpuUsage, ServiceDwn]}
receivers:
  hook: {type: webhook, url: "http://127.0.0.1/hook"}
routes:
  - {receivers: [hook, pager]}
escalations:
  - {after: 10m, receivers: [sms]}
"""
    )
    with pytest.raises(ConfigError) as failure:
        effective_alerting(alerting, AlertsConfig(), NotificationsConfig())
    assert str(failure.value).splitlines() == [
        "alerting: composite rule Both refers to 'ServiceDwn', which is not a non-composite rule; "
        "valid: DiskSpaceLow, HighCpuUsage, HighMemoryUsage, ServiceDown, SlowHttpCheck",
        "alerting: routes[0]: unknown receiver 'pager'; valid: hook",
        "alerting: escalations[0]: unknown receiver 'sms'; valid: hook",
    ]


def test_an_alertmanager_route_must_resend_within_the_ttl() -> None:
    alerting = parse_alerting(
        """
receivers:
  fleet: {type: alertmanager, url: "http://am:9093", ttl: 10m}
route: {receivers: [fleet], repeat_interval: 4h}
"""
    )
    with pytest.raises(ConfigError, match="repeat_interval must be shorter"):
        alerting.check_references()


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("{cron: '0 2 * *', duration: 2h}", "invalid cron expression '0 2 * *'"),
        ("{days: [sun], duration: 2h}", "days needs start as HH:MM"),
        ("{days: [sunday], start: '02:00', duration: 2h}", "Input should be 'mon', 'tue'"),
        ("{cron: '0 2 * * sun', duration: 2h, timezone: Mars/Olympus}", "unknown time zone 'Mars/Olympus'"),
        ("{cron: '0 2 * * sun', days: [sun], start: '02:00', duration: 2h}", "give either cron or days"),
    ],
)
def test_maintenance_window_schedules_are_checked(schedule: str, message: str) -> None:
    text = f"maintenance_windows:\n  - {{name: w, matchers: [service=mysql], schedule: {schedule}}}\n"
    with pytest.raises(ConfigError, match=message.replace("*", r"\*").replace("(", r"\(")):
        parse_alerting(text)


def test_secrets_can_come_from_files_and_stay_redacted(tmp_path: Path) -> None:
    secret = tmp_path / "hook-secret"
    secret.write_text("s3cret\n", encoding="utf-8")
    config = AlertingConfig.model_validate(
        {"receivers": {"hook": {"type": "webhook", "url": "http://127.0.0.1/h", "secret_file": str(secret)}}}
    )
    hook = config.receivers["hook"]
    assert isinstance(hook, WebhookReceiver) and hook.secret is not None
    assert hook.secret.get_secret_value() == "s3cret"
    assert "s3cret" not in config.model_dump_json() and "s3cret" not in repr(config)
