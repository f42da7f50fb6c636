"""``crucible-monitor import-rules``: Prometheus alerting rules converted, on public rule sets copied unchanged into
tests/fixtures/prometheus_rules (awesome-prometheus-alerts, CC BY 4.0; kube-prometheus, Apache 2.0)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from alerting_helpers import alerting, engine, put
from manual_clock import Clock

from crucible_monitor.alerts.config import load_alerting
from crucible_monitor.alerts.importer import Unconvertible, convert_rule, import_rules
from crucible_monitor.alerts.importmaps import NAMES, PREDICTED, RATIOS, SPECS
from crucible_monitor.alerts.operations import AlertOperations
from crucible_monitor.alerts.promql import PromQLError, parse
from crucible_monitor.errors import ConfigError
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore

FIXTURES = Path(__file__).parents[1] / "fixtures" / "prometheus_rules"
PROJECT = Path(__file__).parents[2]


def _body(expr: str, **rule: Any) -> dict[str, Any]:
    converted = convert_rule({"alert": "Imported", "expr": expr, **rule})
    return {k: v for k, v in converted.rule.items() if k not in ("name", "severity")}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            '100 - (avg by(instance)(rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100) > 90',
            {
                "kind": "threshold",
                "metric": "cpu_usage_ratio",
                "match": {"cpu": "total"},
                "op": ">",
                "value": 0.9,
                "window": "5m",
                "agg": "avg",
            },
        ),
        (
            "node_filesystem_avail_bytes / node_filesystem_size_bytes < 0.1",
            {"kind": "threshold", "metric": "filesystem_used_ratio", "op": ">", "value": 0.9},
        ),
        (
            "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes * 100 < 10",
            {"kind": "threshold", "metric": "memory_used_ratio", "op": ">", "value": 0.9},
        ),
        ("node_load1 > 8", {"kind": "threshold", "metric": "load1", "op": ">", "value": 8.0}),
        (
            'node_systemd_unit_state{state="failed", name=~"php.+"} == 1',
            {"kind": "service", "condition": "down", "services": ["php*"]},
        ),
        ("probe_success == 0", {"kind": "http_check", "condition": "failing", "failures": 1}),
        ("probe_http_duration_seconds > 2", {"kind": "http_check", "condition": "slow", "slower_than": "2s"}),
        ("probe_ssl_earliest_cert_expiry - time() < 86400 * 14", {"kind": "certificate", "days": 14.0}),
        (
            "increase(systemd_service_restart_total[1h]) > 5",
            {"kind": "service", "condition": "restarts", "restarts": 6, "within": "1h", "services": ["*"]},
        ),
        (
            'rate(node_network_receive_errs_total{device="eth0"}[5m]) > 1',
            {
                "kind": "threshold",
                "metric": "network_receive_errors_total",
                "match": {"interface": "eth0"},
                "op": ">",
                "value": 1.0,
                "function": "rate",
            },
        ),
        (
            "increase(node_network_receive_drop_total[10m]) > 600",
            {"kind": "threshold", "metric": "network_receive_drops_total", "op": ">", "value": 1.0, "function": "rate"},
        ),
        (
            "predict_linear(node_filesystem_avail_bytes[6h], 4 * 3600) < 0",
            {"kind": "forecast", "metric": "filesystem_used_ratio", "within": "4h"},
        ),
        (
            "avg_over_time(node_pressure_io_stalled_seconds_total[5m]) > 1",
            None,  # a counter compared without rate(): refused, see below
        ),
    ],
)
def test_common_node_exporter_expressions_become_our_rules(expr: str, expected: dict[str, Any] | None) -> None:
    if expected is None:
        with pytest.raises(Unconvertible, match="is a counter: compare its rate"):
            _body(expr)
        return
    assert _body(expr) == expected


def test_up_is_reported_with_what_replaces_it() -> None:
    with pytest.raises(Unconvertible, match="scrape health"):
        _body("up == 0")


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("node_hwmon_temp_celsius > 80", "no counterpart for node_hwmon_temp_celsius"),
        ("node_load1 > node_load15", "compares two series"),
        ("probe_http_status_code <= 199 or probe_http_status_code >= 400", "`or` joins two conditions"),
        ("node_load1 > 4 and node_load5 > 4", "is a second condition"),
        ("sum(rate(node_network_receive_bytes_total[5m])) > 1e9", "across series"),
        ("node_load1 offset 5m > 4", "cannot read the expression"),
        ("rate(node_load1[5m]) > 1", "is a gauge here"),
    ],
)
def test_an_unconvertible_rule_says_why(expr: str, reason: str) -> None:
    with pytest.raises(Unconvertible, match=reason):
        _body(expr)


def test_labels_severity_and_templates_are_carried_over() -> None:
    converted = convert_rule(
        {
            "alert": "HostOutOfMemory",
            "expr": "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes < .10",
            "for": "2m",
            "labels": {"severity": "page", "team": "ops"},
            "annotations": {
                "summary": "Host out of memory (instance {{ $labels.instance }})",
                "description": "{{ $value | humanizePercentage }} on {{ $labels.device }}\n LABELS = {{ $labels }}",
                "dashboard": "https://grafana.example.com/d/1",
            },
        }
    )
    rule = converted.rule
    assert (rule["severity"], rule["for"], rule["labels"]) == ("critical", "2m", {"team": "ops"})
    assert rule["annotations"] == {
        "summary": "Host out of memory (instance {{ host }})",
        "description": "{{ value:.1% }} on {{ labels.device }}\n LABELS =",
    }
    assert any("dropped the annotation dashboard" in n for n in converted.notes)
    assert any("{{ $labels }}" in n for n in converted.notes)


def _rule_count(path: Path) -> int:
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return sum(len(g["rules"]) for d in documents for g in d.get("spec", d)["groups"])


# what converts of each real file; everything else must be reported with a reason
EXPECTED = {
    "awesome-node-exporter.yml": {
        "HostOutOfMemory",
        "HostDiskIoUtilizationHigh",
        "HostOutOfDiskSpace",
        "HostDiskMayFillIn24Hours",
        "HostOutOfInodes",
        "HostInodesMayFillIn24Hours",
        "HostHighCpuLoad",
        "HostCpuStealNoisyNeighbor",
        "HostCpuHighIowait",
        "HostUnusualDiskIo",
        "HostSwapIsFillingUp",
        "HostSystemdServiceCrashed",
    },
    "awesome-blackbox-exporter.yml": {
        "BlackboxProbeFailed",
        "BlackboxSlowProbe",
        "BlackboxSslCertificateWillExpireSoon",
        "BlackboxSslCertificateWillExpireVerySoon",
        "BlackboxProbeSlowHttp",
    },
    "awesome-systemd-exporter.yml": {"SystemdUnitFailed", "SystemdUnitInactive", "SystemdServiceCrashLooping"},
    "awesome-mysqld-exporter.yml": {"MysqlDown", "MysqlRestarted", "MysqlSlowQueries"},
    "kube-prometheus-node-exporter.yaml": {
        "NodeFilesystemAlmostOutOfSpace",
        "NodeFilesystemAlmostOutOfSpaceCritical",
        "NodeFilesystemAlmostOutOfFiles",
        "NodeFilesystemAlmostOutOfFilesCritical",
        "NodeCPUHighUsage",
        "NodeMemoryHighUtilization",
        "NodeSystemdServiceFailed",
        "NodeSystemdServiceCrashlooping",
    },
}


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_a_real_rule_file_converts_what_it_can_and_reports_every_other_rule(fixture: str, tmp_path: Path) -> None:
    path = FIXTURES / fixture
    result = import_rules(path.read_text(encoding="utf-8"), str(path))
    assert {c.rule["name"] for c in result.converted} == EXPECTED[fixture]
    assert len(result.converted) + len(result.skipped) == _rule_count(path)  # nothing dropped silently
    assert all(s.reason for s in result.skipped)
    out = tmp_path / "alerts.yaml"
    out.write_text(result.yaml(), encoding="utf-8")
    loaded = load_alerting(out)  # the project's own loader: the output is a valid alerting file
    assert [r.name for r in loaded.rules] == [c.rule["name"] for c in result.converted]
    for skip in result.skipped:
        assert skip.source in out.read_text(encoding="utf-8")  # listed at the end of the file too


def test_the_kube_prometheus_cpu_rule_is_our_busy_ratio() -> None:
    path = FIXTURES / "kube-prometheus-node-exporter.yaml"
    result = import_rules(path.read_text(encoding="utf-8"))
    rule = next(c.rule for c in result.converted if c.rule["name"] == "NodeCPUHighUsage")
    assert (rule["metric"], rule["match"], rule["op"], rule["value"]) == ("cpu_usage_ratio", {"cpu": "total"}, ">", 0.9)
    recording = [s for s in result.skipped if "recording rule" in s.reason]
    assert len(recording) == 15


def test_the_command_writes_a_loadable_file_and_reports_on_stderr(tmp_path: Path) -> None:
    out = tmp_path / "converted.yaml"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "crucible_monitor.cli",
            "import-rules",
            str(FIXTURES / "awesome-blackbox-exporter.yml"),
            "-o",
            str(out),
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1, run.stderr  # some rules were not converted
    assert "converted 5 of 9 rules, 4 not" in run.stderr
    assert "not converted: BlackboxExporter/BlackboxProbeSlowPing: no counterpart for probe_icmp_duration_seconds" in (
        run.stderr
    )
    assert run.stdout == ""
    assert [r.name for r in load_alerting(out).rules][:2] == ["BlackboxProbeFailed", "BlackboxSlowProbe"]


def test_a_malformed_rule_is_reported_not_dropped() -> None:
    result = import_rules("groups:\n  - name: g\n    rules:\n      - just text\n      - {expr: up == 0}\n")
    assert [(s.source, s.reason) for s in result.skipped] == [
        ("g/rules[0]", "neither an alerting rule (alert:) nor a recording one"),
        ("g/rules[1]", "neither an alerting rule (alert:) nor a recording one"),
    ]


def test_a_file_that_is_not_a_rule_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no groups"):
        import_rules("scrape_configs: []\n", "prometheus.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("groups: [", encoding="utf-8")
    run = subprocess.run(
        [sys.executable, "-m", "crucible_monitor.cli", "import-rules", str(bad)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2 and "not YAML" in run.stderr


def test_every_metric_the_maps_name_is_in_our_catalogues() -> None:
    ours = {v[0] for v in NAMES.values()} | {v[0] for v in RATIOS.values()} | set(PREDICTED.values())
    assert ours <= set(SPECS), sorted(ours - set(SPECS))


def test_the_parser_rejects_what_it_does_not_read() -> None:
    with pytest.raises(PromQLError, match="subquery"):
        parse("max_over_time(node_load1[1h:5m]) > 1")
    assert parse("2 ^ 3 ^ 2") == parse("2 ^ (3 ^ 2)")


def test_template_labels_take_our_label_names() -> None:
    converted = convert_rule(
        {
            "alert": "UnitFailed",
            "expr": 'node_systemd_unit_state{state="failed"} == 1',
            "annotations": {"summary": "{{ $labels.name }} failed on {{ $labels.instance }}"},
        }
    )
    assert converted.rule["annotations"] == {"summary": "{{ labels.service }} failed on {{ host }}"}


def test_converted_rules_fire_in_the_alert_engine(state: StateDB, store: MetricStore, clock: Clock) -> None:
    """awesome-prometheus-alerts' memory, disk and CPU rules, converted, fire on the values they were written for
    and stay quiet below them."""
    path = FIXTURES / "awesome-node-exporter.yml"
    wanted = {"HostOutOfMemory", "HostOutOfDiskSpace", "HostCpuHighIowait"}
    rules = [c.rule for c in import_rules(path.read_text(encoding="utf-8")).converted if c.rule["name"] in wanted]
    for rule in rules:
        rule["for"] = "0s"  # fire at the first evaluation: this test is about the condition, not the lifecycle
    alerts = engine(alerting(rules), state, store, clock)
    ops = AlertOperations(alerts)

    def cycle(memory: float, disk: float, iowait: float) -> set[str]:
        clock.advance(10)
        put(store, clock, "memory_used_ratio", memory)
        put(store, clock, "filesystem_used_ratio", disk, mountpoint="/", device="/dev/vda1", fstype="ext4")
        put(store, clock, "cpu_mode_ratio", iowait, cpu="total", mode="iowait")
        alerts.evaluate()
        return {a.name for a in ops.list_alerts(state="firing")}

    assert cycle(memory=0.5, disk=0.5, iowait=0.01) == set()
    # 5 % of memory and of / left, iowait at 30 %: node_exporter's rules would fire; ours fire
    assert cycle(memory=0.95, disk=0.95, iowait=0.3) == wanted
