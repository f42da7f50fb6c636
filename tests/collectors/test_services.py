"""The services collector against recorded systemd output and a real supervisord.

systemd is not PID 1 on the machines these tests run on, so the systemd side reads recorded ``systemctl`` output of
a Debian 12 host (``tests/fixtures/systemctl/``, described in its README) through the collector's ``run`` seam.
The supervisor side runs against a real supervisord started per test by ``tests/supervisor_fixture.py``.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import xmlrpc.client
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from helpers import assert_contract
from manual_clock import Clock
from pydantic import SecretStr
from supervisor_fixture import Supervisord, free_port, run_supervisord

from crucible_monitor.collectors.base import BlindSpot, Collection
from crucible_monitor.collectors.services import ServicesCollector, guess_category
from crucible_monitor.config import Category, ServicesConfig, SupervisorConfig, SystemdConfig
from crucible_monitor.errors import NotFoundError
from crucible_monitor.managers.supervisor import SupervisorClient, supervisor_restart
from crucible_monitor.managers.systemd import (
    discover_units,
    parse_systemctl_show,
    systemctl_list_units_argv,
    systemctl_restart_argv,
    systemctl_show_argv,
    validate_unit_name,
)
from crucible_monitor.models import EventKind, Severity
from crucible_monitor.schemas import ServiceStatus

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent.parent / "fixtures" / "systemctl"
BAD_NAMES = ["nginx; rm -rf /", "--help", "-x", "../x", "a b", "", "caddy\n", "$(reboot)", "x*"]
POLL_INTERVAL = 0.05  # between polls of a bounded wait on supervisord
DEADLINE = 20.0


def utc(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()


class RecordedSystemctl:
    """Answers the collector's systemctl commands from recordings, unit by unit, as systemctl would."""

    def __init__(self, show: str) -> None:
        self.calls: list[list[str]] = []
        self.list_units = (FIXTURES / "list-units.txt").read_text(encoding="utf-8")
        self.use(show)

    def use(self, show: str) -> None:
        text = (FIXTURES / show).read_text(encoding="utf-8")
        self.blocks = {block.split("\nId=")[1].split("\n")[0]: block for block in text.strip().split("\n\n")}

    def __call__(self, argv: Sequence[str]) -> str:
        self.calls.append(list(argv))
        if list(argv) == systemctl_list_units_argv():
            return self.list_units
        units = list(argv[argv.index("--") + 1 :])
        assert list(argv) == systemctl_show_argv(units)
        return "\n\n".join(self.blocks[unit] for unit in units) + "\n"


def systemd_config(**systemd: object) -> ServicesConfig:
    return ServicesConfig(
        systemd=SystemdConfig.model_validate({"units": ["nginx"], **systemd}),
        supervisor=SupervisorConfig(enabled=False),
    )


def by_name(collector: ServicesCollector) -> dict[str, ServiceStatus]:
    return {status.name: status for status in collector.statuses()}


def sample_values(collection: Collection, metric: str) -> dict[str, float]:
    return {s.labels["service"]: s.value for s in collection.samples if s.metric == metric}


# ---------------------------------------------------------------------------------------------------------------
# systemd, from recorded output


def test_systemctl_show_output_splits_into_one_block_per_unit() -> None:
    blocks = parse_systemctl_show((FIXTURES / "show-1.txt").read_text(encoding="utf-8"))

    assert [b["Id"] for b in blocks] == [
        "nginx.service",
        "caddy.service",
        "mariadb.service",
        "php8.2-fpm.service",
        "redis-server.service",
        "supervisor.service",
    ]
    assert blocks[3]["NRestarts"] == "5"
    assert blocks[3]["MemoryCurrent"] == "[not set]"


def test_discovery_keeps_the_loaded_web_stack_units_only() -> None:
    listing = (FIXTURES / "list-units.txt").read_text(encoding="utf-8")
    listing += "● php8.3-fpm.service loaded failed failed The PHP 8.3 FastCGI Process Manager\n"

    assert discover_units(listing) == [
        "caddy.service",
        "mariadb.service",
        "php8.2-fpm.service",
        "redis-server.service",
        "supervisor.service",
        "php8.3-fpm.service",
    ]


async def test_configured_and_discovered_units_are_read_with_one_show_call() -> None:
    systemctl = RecordedSystemctl("show-1.txt")
    collector = ServicesCollector(systemd_config(units=["nginx", "caddy.service"]), run=systemctl)

    await collector.collect()

    units = ["nginx.service", "caddy.service", "mariadb.service", "php8.2-fpm.service"]
    units += ["redis-server.service", "supervisor.service"]
    list_units, show = systemctl.calls
    assert list_units == ["systemctl", "list-units", "--type=service", "--all", "--plain", "--no-legend", "--no-pager"]
    assert show[:3] == ["systemctl", "show", "--no-pager"]
    assert show[3].startswith("--property=Id,Description,LoadState,ActiveState,SubState,NRestarts,")
    assert show[4:] == ["--", *units]


async def test_systemd_statuses_carry_states_restarts_memory_and_since() -> None:
    now = utc("2026-11-28 09:12:40")
    collector = ServicesCollector(systemd_config(), run=RecordedSystemctl("show-1.txt"), clock=Clock(now))

    await collector.collect()

    statuses = by_name(collector)
    assert statuses["caddy"] == ServiceStatus(
        name="caddy",
        manager="systemd",
        category="web",
        up=True,
        state="active",
        sub_state="running",
        description="Caddy",
        pid=612,
        since=utc("2026-11-28 07:30:17"),
        restarts=0,
        memory_bytes=41357312,
        exit_status=None,
        last_seen=now,
    )
    assert statuses["php8.2-fpm"] == ServiceStatus(
        name="php8.2-fpm",
        manager="systemd",
        category="php",
        up=False,
        state="failed",
        sub_state="failed",
        description="The PHP 8.2 FastCGI Process Manager",
        pid=None,
        since=utc("2026-11-28 08:47:03"),
        restarts=5,
        memory_bytes=None,
        exit_status=78,
        last_seen=now,
    )
    assert (statuses["mariadb"].category, statuses["mariadb"].up) == ("database", True)
    assert (statuses["redis-server"].category, statuses["redis-server"].state) == ("cache", "inactive")
    assert statuses["redis-server"].since == utc("2026-11-28 08:02:11")
    assert statuses["supervisor"].category == "other"
    assert "nginx" not in statuses


async def test_systemd_samples_give_up_restarts_memory_and_uptime_when_known() -> None:
    now = utc("2026-11-28 09:12:40")
    collector = ServicesCollector(systemd_config(), run=RecordedSystemctl("show-1.txt"), clock=Clock(now))

    collection = await collector.collect()

    assert sample_values(collection, "service_up") == {
        "caddy": 1,
        "mariadb": 1,
        "php8.2-fpm": 0,
        "redis-server": 0,
        "supervisor": 1,
    }
    assert sample_values(collection, "service_restarts_total")["php8.2-fpm"] == 5
    assert sample_values(collection, "service_memory_bytes") == {
        "caddy": 41357312,
        "mariadb": 187568128,
        "supervisor": 29458432,
    }
    assert sample_values(collection, "service_uptime_seconds") == {
        "caddy": now - utc("2026-11-28 07:30:17"),
        "mariadb": now - utc("2026-11-28 07:30:21"),
        "supervisor": now - utc("2026-11-28 07:30:18"),
    }
    assert {s.ts for s in collection.samples} == {now}
    caddy_up = next(s for s in collection.samples if s.metric == "service_up" and s.labels["service"] == "caddy")
    assert caddy_up.labels == {"service": "caddy", "manager": "systemd", "category": "web"}


async def test_systemd_samples_are_all_declared_and_every_declared_metric_is_emitted() -> None:
    collector = ServicesCollector(systemd_config(), run=RecordedSystemctl("show-1.txt"))

    collection = await collector.collect()

    assert_contract(collector, collection, complete=True)


async def test_a_configured_unit_that_is_not_found_is_a_blind_spot_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector = ServicesCollector(systemd_config(discover=False), run=RecordedSystemctl("show-1.txt"))

    with caplog.at_level(logging.INFO, logger="crucible_monitor"):
        first = await collector.collect()
        second = await collector.collect()

    assert collector.statuses() == []
    assert first.samples == []
    warnings = [r for r in caplog.records if "nginx.service" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING]
    spot = BlindSpot(
        "unit nginx.service", "collectors.services.systemd.units[0]", "systemd unit nginx.service not found"
    )
    assert first.blind == second.blind == [spot]
    assert [(e.kind, e.data) for e in first.events] == [(EventKind.COLLECTOR_ERROR, {"config_key": spot.key})]
    assert second.events == []


async def test_the_first_poll_records_no_events_even_for_failed_units() -> None:
    collector = ServicesCollector(systemd_config(), run=RecordedSystemctl("show-1.txt"))

    collection = await collector.collect()

    assert [e for e in collection.events if e.kind is not EventKind.COLLECTOR_ERROR] == []  # nginx: a blind spot


async def test_state_changes_and_restarts_between_two_snapshots_give_events() -> None:
    systemctl = RecordedSystemctl("show-1.txt")
    clock = Clock(utc("2026-11-28 09:12:40"))
    collector = ServicesCollector(systemd_config(), run=systemctl, clock=clock)
    await collector.collect()

    systemctl.use("show-2.txt")
    clock.now = utc("2026-11-28 09:13:40")
    collection = await collector.collect()

    states = {e.subject: e for e in collection.events if e.kind is EventKind.SERVICE_STATE}
    assert set(states) == {"mariadb", "redis-server"}
    assert states["mariadb"].severity is Severity.WARNING
    assert states["mariadb"].data["from"] == "active"
    assert states["mariadb"].data["to"] == "activating"
    assert states["mariadb"].data["sub_state"] == "auto-restart"
    assert states["redis-server"].severity is Severity.INFO
    assert (states["redis-server"].data["from"], states["redis-server"].data["to"]) == ("inactive", "active")
    restarts = [e for e in collection.events if e.kind is EventKind.SERVICE_RESTART]
    assert [(e.subject, e.data["count"], e.data["restarts_total"]) for e in restarts] == [("mariadb", 1, 1)]
    assert {e.ts for e in collection.events} == {clock.now}
    assert sample_values(collection, "service_restarts_total")["mariadb"] == 1
    assert by_name(collector)["mariadb"].exit_status is None  # killed by a signal, not an exit status


async def test_a_restart_counter_that_goes_down_is_followed_without_a_restart_event() -> None:
    systemctl = RecordedSystemctl("show-2.txt")
    collector = ServicesCollector(systemd_config(), run=systemctl)
    await collector.collect()

    systemctl.use("show-1.txt")
    collection = await collector.collect()

    assert [e for e in collection.events if e.kind is EventKind.SERVICE_RESTART] == []
    assert sample_values(collection, "service_restarts_total")["mariadb"] == 0


async def test_unset_or_infinite_memory_is_unknown_and_a_non_utc_time_falls_back_to_monotonic() -> None:
    block = (
        "MainPID=42\nNRestarts=0\nMemoryCurrent=infinity\nId=caddy.service\nLoadState=loaded\n"
        "ActiveState=active\nSubState=running\nActiveEnterTimestamp=Sat 2026-11-28 08:30:17 CET\n"
        "ActiveEnterTimestampMonotonic=0\n"
    )
    collector = ServicesCollector(systemd_config(discover=False, units=["caddy"]), run=lambda argv: block)

    collection = await collector.collect()

    (caddy,) = collector.statuses()
    assert (caddy.memory_bytes, caddy.since, caddy.pid, caddy.description) == (None, None, 42, None)
    assert {s.metric for s in collection.samples} == {"service_up", "service_restarts_total"}


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unit_name_validation_rejects_what_is_not_a_unit_name(name: str) -> None:
    with pytest.raises(ValueError, match="invalid unit name"):
        validate_unit_name(name)
    with pytest.raises(ValueError, match="invalid unit name"):
        systemctl_restart_argv(name)


def test_unit_names_get_a_service_suffix_only_when_they_have_no_unit_type() -> None:
    assert validate_unit_name("php8.2-fpm") == "php8.2-fpm.service"
    assert validate_unit_name("postgresql@15-main") == "postgresql@15-main.service"
    assert validate_unit_name("caddy.service") == "caddy.service"
    assert validate_unit_name("certbot.timer") == "certbot.timer"
    assert systemctl_restart_argv("caddy") == ["systemctl", "restart", "--no-ask-password", "caddy.service"]


async def test_an_invalid_configured_unit_never_reaches_systemctl() -> None:
    systemctl = RecordedSystemctl("show-1.txt")
    collector = ServicesCollector(
        systemd_config(discover=False, units=["caddy; reboot", "--help", "caddy"]), run=systemctl
    )

    await collector.collect()

    assert systemctl.calls == [systemctl_show_argv(["caddy.service"])]
    assert [s.name for s in collector.statuses()] == ["caddy"]


async def test_a_failing_systemctl_gives_one_error_event_and_unknown_states() -> None:
    systemctl = RecordedSystemctl("show-1.txt")
    failing = False

    def run(argv: Sequence[str]) -> str:
        if failing:
            raise subprocess.CalledProcessError(
                1, list(argv), "", "Failed to connect to bus: No such file or directory\n"
            )
        return systemctl(argv)

    collector = ServicesCollector(systemd_config(), run=run)
    await collector.collect()
    failing = True

    first = await collector.collect()
    second = await collector.collect()

    (error,) = first.events
    assert (error.kind, error.subject, error.severity) == (EventKind.COLLECTOR_ERROR, "services", Severity.WARNING)
    assert "Failed to connect to bus" in error.message
    assert [(b.target, b.key) for b in first.blind] == [("systemd", "collectors.services.systemd")]
    assert first.samples == second.samples == second.events == []
    assert {s.state for s in collector.statuses()} == {"unknown"}
    assert not any(s.up for s in collector.statuses())

    failing = False
    recovered = await collector.collect()
    assert by_name(collector)["caddy"].state == "active"
    assert [e for e in recovered.events if e.kind is EventKind.SERVICE_STATE] == []


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="systemd is init here")
async def test_without_systemd_as_init_systemd_is_skipped_with_one_info_line(caplog: pytest.LogCaptureFixture) -> None:
    collector = ServicesCollector(ServicesConfig(supervisor=SupervisorConfig(enabled=False)))

    with caplog.at_level(logging.DEBUG, logger="crucible_monitor"):
        first = await collector.collect()
        second = await collector.collect()

    assert first == second == Collection()
    assert [(r.levelno, "systemd is not running" in r.getMessage()) for r in caplog.records] == [(logging.INFO, True)]


def test_categories_from_config_globs_win_in_order_over_the_built_in_guesses() -> None:
    overrides: dict[str, Category] = {"php8.2-*": "queue", "php*": "web", "mysql-backup": "other"}

    assert guess_category("php8.2-fpm", overrides) == "queue"
    assert guess_category("php8.3-fpm", overrides) == "web"
    assert guess_category("mysql-backup", overrides) == "other"
    assert guess_category("mysql", {}) == "database"
    assert guess_category("postgresql@15-main", {}) == "database"
    assert guess_category("redis-server", {}) == "cache"
    assert guess_category("apache2", {}) == "web"
    assert guess_category("laravel-worker", {}) == "queue"
    assert guess_category("horizon", {}) == "queue"
    assert guess_category("mailer", {}, "php /srv/app/artisan queue:work --tries=3") == "queue"
    assert guess_category("cron", {}) == "other"


# ---------------------------------------------------------------------------------------------------------------
# supervisor, against a real supervisord

SLEEPER = {"command": "/bin/sleep 1000", "startsecs": "0", "stopwaitsecs": "5"}
CRASHER = {"command": '/bin/sh -c "exit 3"', "autorestart": "true", "startsecs": "0", "startretries": "1000"}
# Stopped, and a Laravel queue worker by its command (sh runs sleep with $0=artisan, $1=queue:work).
MAILER = {"command": '/bin/sh -c "exec /bin/sleep 1000" artisan queue:work', "autostart": "false"}
PROGRAMS = {"sleeper": SLEEPER, "crasher": CRASHER, "mailer": MAILER}


@pytest.fixture
def supervisord(tmp_path: Path) -> Iterator[Supervisord]:
    with run_supervisord(tmp_path, PROGRAMS) as sv:
        yield sv


def supervisor_config(sv: Supervisord, **options: object) -> ServicesConfig:
    supervisor = SupervisorConfig.model_validate({"url": sv.url, **options})
    return ServicesConfig(systemd=SystemdConfig(enabled=False), supervisor=supervisor)


async def collect_until(
    collector: ServicesCollector, condition: Callable[[dict[str, ServiceStatus]], bool]
) -> list[Collection]:
    """Collect until ``condition(statuses by name)`` holds (at most DEADLINE seconds); every collection made."""
    collections: list[Collection] = []
    with anyio.fail_after(DEADLINE):
        while True:
            collections.append(await collector.collect())
            if condition(by_name(collector)):
                return collections
            await anyio.sleep(POLL_INTERVAL)


def running(name: str) -> Callable[[dict[str, ServiceStatus]], bool]:
    return lambda statuses: name in statuses and statuses[name].state == "running"


async def test_supervisor_programs_have_states_categories_memory_and_uptime(supervisord: Supervisord) -> None:
    clock = Clock(1e10)
    collector = ServicesCollector(supervisor_config(supervisord), clock=clock)

    collections = await collect_until(collector, running("sleeper"))

    statuses = by_name(collector)
    assert set(statuses) == {"sleeper", "crasher", "mailer"}
    sleeper, mailer = statuses["sleeper"], statuses["mailer"]
    pid = supervisord.process_info("sleeper")["pid"]
    assert (sleeper.up, sleeper.manager, sleeper.category, sleeper.pid) == (True, "supervisor", "other", pid)
    assert sleeper.since is not None and sleeper.memory_bytes is not None and sleeper.memory_bytes > 0
    assert (sleeper.exit_status, sleeper.last_seen) == (None, clock.now)
    assert (mailer.state, mailer.up, mailer.category) == ("stopped", False, "queue")
    assert (mailer.pid, mailer.since, mailer.memory_bytes, mailer.exit_status) == (None, None, None, None)
    assert statuses["crasher"].category == "other"
    last = collections[-1]
    assert_contract(collector, last)
    assert sample_values(last, "service_uptime_seconds")["sleeper"] == clock.now - sleeper.since
    assert sample_values(last, "service_memory_bytes")["sleeper"] == sleeper.memory_bytes
    assert sample_values(last, "service_up")["mailer"] == 0
    assert {s.labels["manager"] for s in last.samples} == {"supervisor"}


async def test_restarts_of_a_crashing_program_are_counted_with_events(supervisord: Supervisord) -> None:
    collector = ServicesCollector(supervisor_config(supervisord))

    collections = await collect_until(collector, lambda s: s["crasher"].restarts >= 2)

    assert collections[0].events == []  # the first poll only learns where things stand
    restarts = [e for c in collections for e in c.events if e.kind is EventKind.SERVICE_RESTART]
    assert {e.subject for e in restarts} == {"crasher"}
    assert sum(e.data["count"] for e in restarts) == by_name(collector)["crasher"].restarts
    assert restarts[-1].data["restarts_total"] == by_name(collector)["crasher"].restarts
    assert sample_values(collections[-1], "service_restarts_total")["crasher"] >= 2
    assert by_name(collector)["sleeper"].restarts == 0


async def test_every_spawn_after_the_first_poll_is_counted_exactly(tmp_path: Path) -> None:
    # startsecs=1 makes each quick exit a failed start: 1 start + 2 retries, then FATAL and quiet.
    failing = {"command": '/bin/sh -c "exit 3"', "autostart": "false", "startsecs": "1", "startretries": "2"}
    with run_supervisord(tmp_path, {"failing": failing}) as sv:
        collector = ServicesCollector(supervisor_config(sv))
        await collector.collect()
        with sv.rpc() as rpc:
            try:
                rpc.supervisor.startProcess("failing", False)
            except xmlrpc.client.Fault as fault:
                # SPAWN_ERROR when the shell has already exited by the time supervisord looks (a loaded machine):
                # it was spawned all the same, and is retried
                assert "SPAWN_ERROR" in fault.faultString, fault

        collections = await collect_until(collector, lambda s: s["failing"].state == "fatal")

        spawned = sv.log_path.read_text(encoding="utf-8").count("spawned: 'failing'")
    assert spawned == 3
    assert by_name(collector)["failing"].restarts == 3
    restarts = [e for c in collections for e in c.events if e.kind is EventKind.SERVICE_RESTART]
    assert sum(e.data["count"] for e in restarts) == 3
    failed = by_name(collector)["failing"]
    assert failed.exit_status is None  # supervisord keeps no exit status for a start that failed
    assert failed.description is not None and "Exited too quickly" in failed.description


async def test_supervisor_restart_changes_the_pid_and_is_counted(supervisord: Supervisord) -> None:
    collector = ServicesCollector(supervisor_config(supervisord))
    await collect_until(collector, running("sleeper"))
    before = by_name(collector)["sleeper"]

    supervisor_restart(SupervisorConfig(url=supervisord.url), "sleeper")
    collection = await collector.collect()

    after = by_name(collector)["sleeper"]
    assert after.state == "running"
    assert after.pid not in (None, before.pid)
    assert after.restarts == before.restarts + 1
    (event,) = [e for e in collection.events if e.kind is EventKind.SERVICE_RESTART and e.subject == "sleeper"]
    assert event.data["count"] == 1


async def test_supervisor_restart_starts_a_stopped_program(supervisord: Supervisord) -> None:
    supervisor_restart(SupervisorConfig(url=supervisord.url), "mailer")

    assert supervisord.process_info("mailer")["statename"] == "RUNNING"


@pytest.mark.parametrize("name", BAD_NAMES)
def test_supervisor_restart_rejects_invalid_program_names(name: str) -> None:
    with pytest.raises(ValueError, match="invalid program name"):
        supervisor_restart(SupervisorConfig(url="unix:///nonexistent.sock"), name)


def test_supervisor_restart_of_an_unknown_program_is_not_found(supervisord: Supervisord) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        supervisor_restart(SupervisorConfig(url=supervisord.url), "nope")


async def test_stopping_and_starting_a_program_gives_state_events(supervisord: Supervisord) -> None:
    collector = ServicesCollector(supervisor_config(supervisord))
    await collect_until(collector, running("sleeper"))

    with supervisord.rpc() as rpc:
        rpc.supervisor.stopProcess("sleeper")
    stopped = await collector.collect()
    with supervisord.rpc() as rpc:
        rpc.supervisor.startProcess("sleeper")
    started = await collector.collect()

    (down,) = [e for e in stopped.events if e.kind is EventKind.SERVICE_STATE and e.subject == "sleeper"]
    assert (down.severity, down.data["from"], down.data["to"]) == (Severity.WARNING, "running", "stopped")
    assert down.data["manager"] == "supervisor"
    (up,) = [e for e in started.events if e.kind is EventKind.SERVICE_STATE and e.subject == "sleeper"]
    assert (up.severity, up.data["from"], up.data["to"]) == (Severity.INFO, "stopped", "running")


async def test_a_dead_supervisord_gives_an_error_event_not_an_exception(supervisord: Supervisord) -> None:
    collector = ServicesCollector(supervisor_config(supervisord))
    await collect_until(collector, running("sleeper"))

    supervisord.stop()
    first = await collector.collect()
    second = await collector.collect()

    (error,) = first.events
    assert (error.kind, error.subject, error.severity) == (EventKind.COLLECTOR_ERROR, "services", Severity.WARNING)
    assert error.data == {"manager": "supervisor", "config_key": "collectors.services.supervisor.url"}
    assert first.samples == second.samples == second.events == []
    assert first.blind == second.blind  # blind every cycle, reported once
    assert {s.state for s in collector.statuses()} == {"unknown"}
    assert not any(s.up or s.pid for s in collector.statuses())


async def test_a_supervisord_that_stops_answering_gives_an_error_event(supervisord: Supervisord) -> None:
    collector = ServicesCollector(supervisor_config(supervisord))
    await collect_until(collector, running("sleeper"))

    orphan = by_name(collector)["sleeper"].pid
    assert orphan is not None
    supervisord.process.kill()  # SIGKILL: the socket file stays but nothing answers on it
    supervisord.process.wait()
    try:
        collection = await collector.collect()
    finally:
        os.kill(orphan, signal.SIGTERM)  # supervisord could not stop its programs

    (error,) = collection.events
    assert (error.kind, error.subject) == (EventKind.COLLECTOR_ERROR, "services")
    assert "does not answer" in error.message
    assert [b.key for b in collection.blind] == ["collectors.services.supervisor.url"]
    assert {s.state for s in collector.statuses()} == {"unknown"}


async def test_a_configured_socket_that_does_not_exist_is_a_blind_spot_logged_once_as_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = ServicesConfig(
        systemd=SystemdConfig(enabled=False), supervisor=SupervisorConfig(url=f"unix://{tmp_path}/none.sock")
    )
    collector = ServicesCollector(config)

    with caplog.at_level(logging.DEBUG, logger="crucible_monitor"):
        first = await collector.collect()
        second = await collector.collect()

    expected = BlindSpot(
        "supervisor", "collectors.services.supervisor.url", f"supervisord's socket {tmp_path}/none.sock does not exist"
    )
    assert first.blind == second.blind == [expected]
    assert [e.kind for e in first.events] == [EventKind.COLLECTOR_ERROR]
    assert second.events == []
    assert collector.statuses() == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [expected.error]


@pytest.mark.skipif(Path("/var/run/supervisor.sock").exists(), reason="supervisord is installed on this host")
async def test_the_default_socket_absent_means_not_installed_one_info_line_and_no_blind_spot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    collector = ServicesCollector(ServicesConfig(systemd=SystemdConfig(enabled=False)))

    with caplog.at_level(logging.DEBUG, logger="crucible_monitor"):
        first = await collector.collect()
        second = await collector.collect()

    assert first == second == Collection()
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "does not exist" in caplog.records[0].getMessage()


async def test_the_programs_setting_filters_what_is_watched(supervisord: Supervisord) -> None:
    collector = ServicesCollector(supervisor_config(supervisord, programs=["sleeper", "mailer"]))

    collection = await collector.collect()

    assert {s.name for s in collector.statuses()} == {"sleeper", "mailer"}
    assert {s.labels["service"] for s in collection.samples} == {"sleeper", "mailer"}


async def test_a_truncated_main_log_is_followed_again_without_losing_a_restart(tmp_path: Path) -> None:
    with run_supervisord(tmp_path, {"sleeper": SLEEPER}) as sv:
        collector = ServicesCollector(supervisor_config(sv))
        config = SupervisorConfig(url=sv.url)
        await collect_until(collector, running("sleeper"))
        await collector.collect()
        assert by_name(collector)["sleeper"].restarts == 0

        os.truncate(sv.log_path, 0)  # as a log rotation would
        supervisor_restart(config, "sleeper")
        await collector.collect()  # resynchronises; the restart is seen from the new pid
        supervisor_restart(config, "sleeper")
        supervisor_restart(config, "sleeper")
        await collector.collect()  # follows the log again

    assert by_name(collector)["sleeper"].restarts == 3


async def test_the_supervisor_password_never_appears_in_logs_events_or_reprs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr3t-Pa55word"
    with run_supervisord(tmp_path, {"sleeper": SLEEPER}, username="crucible", password=secret) as sv:
        good = ServicesCollector(supervisor_config(sv, username="crucible", password=secret))
        bad = ServicesCollector(supervisor_config(sv, username="crucible", password="not-" + secret))
        with caplog.at_level(logging.DEBUG):
            ok = await collect_until(good, running("sleeper"))
            refused = await bad.collect()
            supervisor_restart(SupervisorConfig(url=sv.url, username="crucible", password=SecretStr(secret)), "sleeper")

    (error,) = refused.events
    assert (error.kind, "401" in error.message) == (EventKind.COLLECTOR_ERROR, True)
    assert by_name(good)["sleeper"].up
    client = SupervisorClient(SupervisorConfig(url=sv.url, username="crucible", password=SecretStr(secret)))
    client.close()
    seen = [caplog.text, repr(good), repr(bad), repr(client), repr(good.statuses()), repr(ok), repr(refused)]
    seen += [repr(vars(good)), repr(vars(bad))]
    assert not [text for text in seen if secret in text]


async def test_supervisord_is_also_read_over_http_with_basic_auth(tmp_path: Path) -> None:
    port = free_port()
    with run_supervisord(tmp_path, {"sleeper": SLEEPER}, username="crucible", password="pw", http_port=port) as sv:
        url = f"http://127.0.0.1:{port}"
        collector = ServicesCollector(supervisor_config(sv, url=url, username="crucible", password="pw"))
        await collect_until(collector, running("sleeper"))
        supervisor_restart(SupervisorConfig(url=url, username="crucible", password=SecretStr("pw")), "sleeper")
        collection = await collector.collect()

    assert by_name(collector)["sleeper"].restarts == 1
    assert [e.subject for e in collection.events if e.kind is EventKind.SERVICE_RESTART] == ["sleeper"]


async def test_an_unsupported_supervisor_url_is_a_blind_spot_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    config = ServicesConfig(systemd=SystemdConfig(enabled=False), supervisor=SupervisorConfig(url="ftp://host/x"))
    collector = ServicesCollector(config)

    with caplog.at_level(logging.INFO, logger="crucible_monitor"):
        first = await collector.collect()
        second = await collector.collect()

    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "unsupported supervisor URL" in caplog.text
    assert [b.key for b in first.blind] == [b.key for b in second.blind] == ["collectors.services.supervisor.url"]
    assert first.samples == second.samples == second.events == []


# ---------------------------------------------------------------------------------------------------------------
# collectors.services.services: names watched through whichever manager has them


class SystemctlWithUnknownUnits(RecordedSystemctl):
    """The recordings, and ``LoadState=not-found`` for any other unit, as systemctl answers for a unit it lacks
    (systemd is not init on the test hosts, so its side is recorded; supervisord is real)."""

    def __call__(self, argv: Sequence[str]) -> str:
        if "--" in argv:
            for unit in argv[list(argv).index("--") + 1 :]:
                self.blocks.setdefault(unit, f"MainPID=0\nId={unit}\nLoadState=not-found\nActiveState=inactive")
        return super().__call__(argv)


async def test_services_are_watched_through_whichever_manager_has_the_name(
    supervisord: Supervisord, caplog: pytest.LogCaptureFixture
) -> None:
    config = ServicesConfig(
        systemd=SystemdConfig(discover=False),
        supervisor=SupervisorConfig(url=supervisord.url, programs=["crasher"]),
        services=["caddy", "sleeper", "ghost"],
    )
    collector = ServicesCollector(config, run=SystemctlWithUnknownUnits("show-1.txt"))

    with caplog.at_level(logging.INFO, logger="crucible_monitor"):
        await collect_until(collector, running("sleeper"))
        await collector.collect()

    managers = {status.name: status.manager for status in collector.statuses()}
    assert managers == {"caddy": "systemd", "sleeper": "supervisor", "crasher": "supervisor"}  # not mailer
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if "ghost" in w] == [
        "collectors.services.services: 'ghost' is neither a systemd unit nor a supervisor program here"
    ]
    assert not [w for w in warnings if "sleeper" in w or "caddy" in w]


async def test_a_program_still_starting_is_neither_up_nor_down(tmp_path: Path) -> None:
    # startsecs=600: supervisord reports STARTING until the program has run ten minutes.
    slow = {"command": "/bin/sleep 1000", "startsecs": "600"}
    with run_supervisord(tmp_path, {"slow": slow}) as sv:
        collector = ServicesCollector(supervisor_config(sv))
        await collect_until(collector, lambda s: "slow" in s and s["slow"].state == "starting")
    slow_status = by_name(collector)["slow"]
    assert (slow_status.up, slow_status.settled) == (False, False), "not up, and not down either: on its way"
