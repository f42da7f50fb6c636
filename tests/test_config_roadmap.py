"""The roadmap's configuration example (configs/examples/roadmap.yaml, copied verbatim) loads and each of its
spellings means what it says; check-config names the canonical keys its aliases are read as."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from crucible_monitor.alerts.receivers import EmailReceiver
from crucible_monitor.alerts.rules import ServiceRule
from crucible_monitor.alerts.shorthand import seed_receivers, shorthand_rules
from crucible_monitor.cli import main
from crucible_monitor.config import AlertsConfig, Config, load_config, parse_config
from crucible_monitor.errors import ConfigError

ROADMAP = Path(__file__).parent.parent / "configs" / "examples" / "roadmap.yaml"


@pytest.fixture(scope="module")
def roadmap() -> Config:
    return load_config(ROADMAP)


def test_the_agent_section(roadmap: Config) -> None:
    agent = roadmap.agent
    assert (agent.listen_addr, agent.data_retention, agent.collect_interval) == (
        "127.0.0.1:9090",
        timedelta(days=30),
        timedelta(seconds=30),
    )


def test_system_metrics_select_the_families(roadmap: Config) -> None:
    assert roadmap.collectors.system.enabled
    assert roadmap.collectors.system.metrics == ["cpu", "memory", "disk", "network", "load"]


def test_services_lists_the_names_to_watch(roadmap: Config) -> None:
    services = roadmap.collectors.services
    assert services.enabled and services.services == ["mysql", "caddy", "php8.4-fpm", "supervisor"]


def test_http_checks(roadmap: Config) -> None:
    main_site, api = roadmap.collectors.http_checks
    assert (main_site.name, main_site.url, main_site.interval, main_site.timeout) == (
        "main_site",
        "https://myapp.com/health",
        timedelta(seconds=30),
        timedelta(seconds=10),
    )
    assert (api.name, api.interval) == ("api_endpoint", timedelta(seconds=60))


def test_the_go_dsn_is_parsed_and_the_slow_query_threshold_set(roadmap: Config) -> None:
    mysql = roadmap.collectors.mysql
    assert mysql.enabled
    assert (mysql.user, mysql.host, mysql.port, mysql.unix_socket, mysql.database) == (
        "monitor",
        "localhost",
        3306,
        None,
        None,
    )
    assert mysql.password is not None and mysql.password.get_secret_value() == "password"
    assert mysql.slow_query_threshold == timedelta(seconds=1)


def test_the_alert_shorthand_and_service_down_immediate(roadmap: Config) -> None:
    alerts = roadmap.alerts
    assert (alerts.cpu_threshold, alerts.memory_threshold, alerts.disk_threshold) == (80.0, 90.0, 85.0)
    assert alerts.response_time_threshold == timedelta(seconds=5)
    assert alerts.service_down == timedelta(0)
    [service_rule] = [r for r in shorthand_rules(alerts) if isinstance(r, ServiceRule)]
    assert service_rule.for_ == timedelta(0)


def test_email_and_webhook(roadmap: Config) -> None:
    email = roadmap.notifications.email
    assert (email.enabled, email.smtp_host, email.smtp_port, email.from_addr, email.to) == (
        True,
        "smtp.gmail.com",
        587,
        "alerts@myapp.com",
        ["admin@myapp.com"],
    )
    webhook = roadmap.notifications.webhook
    assert (webhook.enabled, webhook.url) == (False, "https://hooks.slack.com/services/.../...")
    receivers = seed_receivers(roadmap.notifications)
    assert set(receivers) == {"email"}
    receiver = receivers["email"]
    assert isinstance(receiver, EmailReceiver)
    assert (receiver.host, receiver.port, receiver.from_addr) == ("smtp.gmail.com", 587, "alerts@myapp.com")


def test_check_config_names_the_canonical_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(ROADMAP)]) == 0
    out = capsys.readouterr().out
    assert f"note: {ROADMAP}:28: collectors.mysql.connection is read as user, password, host and port" in out
    assert f"note: {ROADMAP}:41: notifications.email.smtp_server is read as smtp_host + smtp_port" in out
    assert f"note: {ROADMAP}:42: notifications.email.from is read as from_addr" in out
    assert "monitor:password@" not in out  # the DSN, with its password, is not echoed


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("monitor:pw@tcp(db.internal:3307)/shop", {"host": "db.internal", "port": 3307, "database": "shop"}),
        ("monitor:p@ss:w@rd@tcp(127.0.0.1)/", {"host": "127.0.0.1", "port": 3306, "password": "p@ss:w@rd"}),
        ("monitor@unix(/run/mysqld/mysqld.sock)/", {"unix_socket": Path("/run/mysqld/mysqld.sock"), "password": None}),
        (
            "monitor:pw@tcp([::1]:3306)/?timeout=2s&parseTime=true",
            {"host": "::1", "connect_timeout": timedelta(seconds=2)},
        ),
        ("monitor:pw@/", {"host": "127.0.0.1", "user": "monitor"}),
    ],
)
def test_go_dsn_forms(dsn: str, expected: dict[str, object]) -> None:
    mysql = parse_config(f"collectors:\n  mysql:\n    connection: '{dsn}'\n").collectors.mysql
    for key, value in expected.items():
        actual = getattr(mysql, key)
        if key == "password":
            actual = actual.get_secret_value() if actual is not None else None
        assert actual == value, key


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("collectors:\n  mysql:\n    connection: 'monitor@localhost:3306'\n", "no '/' before the database name"),
        ("collectors:\n  mysql:\n    connection: 'm@udp(x)/'\n", "unknown network 'udp'"),
        ("collectors:\n  mysql:\n    connection: 'm@tcp(x/'\n", "unclosed '('"),
        ("collectors:\n  mysql:\n    connection: 'm@tcp(x)/'\n    host: y\n", "give either connection or host"),
        ("notifications:\n  email:\n    smtp_server: smtp.gmail.com\n", "use HOST:PORT"),
        ("notifications:\n  email:\n    smtp_server: a:1\n    smtp_port: 2\n", "give either smtp_server or"),
        ("notifications:\n  email:\n    from: a@b\n    from_addr: c@d\n", "give either from or from_addr"),
        ("alerts:\n  service_down: soon\n", "use a duration (e.g. 1m), immediate, true or false"),
        ("collectors:\n  system:\n    metrics: [cpu, gpu]\n", "'gpu'"),
    ],
)
def test_bad_aliases_say_what_is_valid(yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="<config>:") as error:
        parse_config(yaml_text)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, timedelta(minutes=1)), (False, None), ("immediate", timedelta(0)), ("30s", timedelta(seconds=30))],
)
def test_service_down_forms(value: object, expected: timedelta | None) -> None:
    alerts = AlertsConfig.model_validate({"service_down": value})
    assert alerts.service_down == expected
    rules = [r for r in shorthand_rules(alerts) if isinstance(r, ServiceRule)]
    assert [r.for_ for r in rules] == ([] if expected is None else [expected])
