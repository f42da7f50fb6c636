"""Service states and restarts from systemd (``systemctl show``) and supervisord (XML-RPC).

One :class:`ServicesCollector` reads every watched service per collection: the configured systemd units plus, when
``discover`` is on, the web-stack units found on the host, and supervisord's programs. It keeps a
:class:`ServiceStatus` per service (:meth:`ServicesCollector.statuses`), emits samples labelled
``{service, manager, category}`` and records events: ``SERVICE_STATE`` when a state changes between polls,
``SERVICE_RESTART`` when restarts are detected, and ``COLLECTOR_ERROR`` when a manager that is configured (or that
answered before) cannot be read: a blind spot of the collection, until it answers. supervisord's default socket
missing means supervisor is not installed: one INFO line, not a blind spot.

Restarts: systemd counts them itself (``NRestarts``). supervisord does not, so every ``spawned:`` line of its main
log (read through ``supervisor.readLog`` from the last offset) counts as one; when the log cannot be followed, a
changed start time between polls counts as one. The managers themselves are driven through
:mod:`crucible_monitor.managers.systemd` and :mod:`crucible_monitor.managers.supervisor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import os
import shutil
import subprocess
import time
import xmlrpc.client
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from crucible_monitor.collectors.base import BlindSpot, Collection, Problems
from crucible_monitor.config import Category, ServicesConfig, SupervisorConfig
from crucible_monitor.managers import describe_error
from crucible_monitor.managers.supervisor import SUPERVISOR_ERRORS, MainLog, SupervisorClient, full_name
from crucible_monitor.managers.systemd import (
    CLD_EXITED,
    UP_STATES,
    discover_units,
    parse_systemctl_show,
    run_systemctl,
    systemctl_list_units_argv,
    systemctl_show_argv,
    systemd_int,
    systemd_time,
    validate_unit_name,
)
from crucible_monitor.models import Event, EventKind, MetricKind, MetricSpec, Sample, Severity
from crucible_monitor.schemas import Manager, ServiceStatus
from crucible_monitor.untrusted import mask_secrets

__all__ = ["CATALOGUE", "ServicesCollector", "guess_category"]

logger = logging.getLogger(__name__)

_LABELS = ("service", "manager", "category")
CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec("service_up", MetricKind.GAUGE, "boolean", "1 when the service is running (active), else 0.", _LABELS),
    MetricSpec(
        "service_restarts_total",
        MetricKind.COUNTER,
        "restarts",
        "Restarts: systemd's NRestarts; for supervisor, spawns counted since the agent started.",
        _LABELS,
    ),
    MetricSpec(
        "service_memory_bytes",
        MetricKind.GAUGE,
        "bytes",
        "Memory of the service: systemd's MemoryCurrent (cgroup), supervisor's main process RSS; when known.",
        _LABELS,
    ),
    MetricSpec(
        "service_uptime_seconds", MetricKind.GAUGE, "seconds", "Seconds since the service became active.", _LABELS
    ),
)

_BUILTIN_CATEGORIES: tuple[tuple[str, Category], ...] = (
    ("nginx*", "web"),
    ("caddy*", "web"),
    ("apache2*", "web"),
    ("httpd*", "web"),
    ("mysql*", "database"),
    ("mariadb*", "database"),
    ("postgres*", "database"),
    ("redis*", "cache"),
    ("memcached*", "cache"),
    ("php*-fpm*", "php"),
    ("*worker*", "queue"),
    ("*queue*", "queue"),
    ("*horizon*", "queue"),
)
_QUEUE_COMMANDS = ("artisan queue:work", "artisan queue:listen", "artisan horizon")


def guess_category(name: str, overrides: dict[str, Category], command: str | None = None) -> Category:
    """The category of a service: the first matching ``overrides`` glob, else a guess from its command and name."""
    for pattern, category in overrides.items():
        if fnmatch.fnmatchcase(name, pattern):
            return category
    if command is not None and any(queue in command for queue in _QUEUE_COMMANDS):
        return "queue"
    lowered = name.lower()
    for pattern, category in _BUILTIN_CATEGORIES:
        if fnmatch.fnmatchcase(lowered, pattern):
            return category
    return "other"


_DEFAULT_SUPERVISOR_URL = SupervisorConfig.model_fields["url"].default
_KEYS: dict[Manager, str] = {
    "systemd": "collectors.services.systemd",
    "supervisor": "collectors.services.supervisor.url",
}


class _SourceError(Exception):
    """A service manager that is configured, or was readable, cannot be read now."""


class ServicesCollector:
    """systemd units and supervisor programs: states, restarts, memory, uptime; events on changes."""

    name = "services"
    catalogue = CATALOGUE

    def __init__(
        self,
        config: ServicesConfig,
        *,
        run: Callable[[Sequence[str]], str] | None = None,
        clock: Callable[[], float] = time.time,
        procfs: Path = Path("/proc"),
    ) -> None:
        self._config = config
        self._run = run if run is not None else run_systemctl
        self._clock = clock
        self._procfs = procfs
        # An injected runner stands in for a running systemd; the real one needs systemd as init.
        self._systemd_ok: bool | None = True if run is not None else None
        self._statuses: dict[tuple[Manager, str], ServiceStatus] = {}
        self._known: dict[tuple[Manager, str], tuple[str, bool]] = {}
        self._failing: set[Manager] = set()
        self._skip_logged: set[str] = set()
        self._main_log = MainLog()
        self._spawns: dict[str, tuple[int, float]] = {}  # last pid and start time per program
        self._commands: dict[str, str] = {}
        self._missing_units: list[BlindSpot] = []
        self._unit_problems = Problems(self.name, "systemd")
        """Configured systemd units that the last read could not watch (invalid names, not found)."""

    def statuses(self) -> list[ServiceStatus]:
        """Every watched service's last known status, by manager then name."""
        return [self._statuses[key] for key in sorted(self._statuses)]

    async def collect(self) -> Collection:
        """Read systemd and supervisord once (in a worker thread: both block)."""
        return await asyncio.to_thread(self._collect)

    def _collect(self) -> Collection:
        now = self._clock()
        collection = Collection()
        sources: list[tuple[Manager, Callable[[float], tuple[list[ServiceStatus], dict[str, int]] | None]]] = []
        if self._config.systemd.enabled:
            sources.append(("systemd", self._read_systemd))
        if self._config.supervisor.enabled:
            sources.append(("supervisor", self._read_supervisor))
        self._missing_units = []
        for manager, read in sources:
            try:
                result = read(now)
            except _SourceError as exc:
                self._fail(manager, str(exc), now, collection)
                continue
            if result is not None:
                if manager in self._failing:
                    self._failing.discard(manager)
                    logger.info("%s answers again", manager)
                self._apply(manager, *result, now, collection)
        collection.events += self._unit_problems.update(self._missing_units, now)
        collection.blind += self._missing_units
        if not self._failing:
            self._warn_unwatched()
        return collection

    def _either_units(self) -> dict[str, str]:
        """The ``services`` names that are valid unit names, as units (``mysql`` → ``mysql.service``) → name."""
        units: dict[str, str] = {}
        for name in self._config.services:
            with contextlib.suppress(ValueError):  # not a unit name: only supervisor may have it
                units[validate_unit_name(name)] = name
        return units

    def _warn_unwatched(self) -> None:
        """One warning for each ``services`` name that neither systemd nor supervisor has (once both answered)."""
        watched = {status.name for status in self._statuses.values()}
        watched |= {name.removesuffix(".service") for name in watched}
        for name in self._config.services:
            if name not in watched and name.removesuffix(".service") not in watched:
                self._log_once(
                    f"service:{name}",
                    "collectors.services.services: %r is neither a systemd unit nor a supervisor program here",
                    name,
                    level=logging.WARNING,
                )

    # -- systemd --------------------------------------------------------------------------------------------

    def _read_systemd(self, now: float) -> tuple[list[ServiceStatus], dict[str, int]] | None:
        if self._systemd_ok is None:
            self._systemd_ok = Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None
            if not self._systemd_ok:
                logger.info("systemd is not running here (or systemctl is missing): not watching systemd units")
        if not self._systemd_ok:
            return None
        units: list[str] = []
        configured: dict[str, str] = {}  # unit → its config key
        for index, unit in enumerate(self._config.systemd.units):
            key = f"collectors.services.systemd.units[{index}]"
            try:
                units.append(validate_unit_name(unit))
            except ValueError:  # a blind spot: logged and recorded by _unit_problems
                self._missing_units.append(BlindSpot(f"unit {unit}", key, f"{unit!r} is not a valid unit name"))
            else:
                configured.setdefault(units[-1], key)
        either = self._either_units()
        units += [unit for unit in either if unit not in units]
        try:
            if self._config.systemd.discover:
                units += discover_units(self._run(systemctl_list_units_argv()))
            units = list(dict.fromkeys(units))
            text = self._run(systemctl_show_argv(units)) if units else ""
        except (OSError, subprocess.SubprocessError) as exc:
            raise _SourceError(f"systemctl failed: {describe_error(exc)}") from None
        statuses: list[ServiceStatus] = []
        restarted: dict[str, int] = {}
        for properties in parse_systemctl_show(text):
            unit = properties.get("Id", "")
            if properties.get("LoadState") == "not-found":
                if unit in configured:
                    spot = BlindSpot(f"unit {unit}", configured[unit], f"systemd unit {unit} not found")
                    self._missing_units.append(spot)
                elif unit not in either:  # a name from ``services`` may be a supervisor program instead
                    self._log_once(f"unit:{unit}", "skipping systemd unit %s: not found", unit, level=logging.WARNING)
                continue
            try:
                status = self._systemd_status(properties, now)
            except (KeyError, ValueError):
                logger.warning("skipping systemd unit %s: unexpected systemctl show output", unit or "(no Id)")
                continue
            statuses.append(status)
            previous = self._statuses.get(("systemd", status.name))
            if previous is not None and status.restarts > previous.restarts:
                restarted[status.name] = status.restarts - previous.restarts
        return statuses, restarted

    def _systemd_status(self, properties: dict[str, str], now: float) -> ServiceStatus:
        name = properties["Id"].removesuffix(".service")
        state = properties["ActiveState"].lower()
        up = state in UP_STATES
        pid = systemd_int(properties.get("MainPID")) or (systemd_int(properties.get("ExecMainPID")) if up else None)
        exited = systemd_int(properties.get("ExecMainCode")) == CLD_EXITED
        since_property = "ActiveEnterTimestamp" if up else "StateChangeTimestamp"
        return ServiceStatus(
            name=name,
            manager="systemd",
            category=guess_category(name, self._config.categories),
            up=up,
            state=state,
            sub_state=properties.get("SubState") or None,
            description=properties.get("Description") or None,
            pid=pid or None,
            since=systemd_time(properties, since_property, now),
            restarts=systemd_int(properties.get("NRestarts")) or 0,
            memory_bytes=systemd_int(properties.get("MemoryCurrent")),
            exit_status=systemd_int(properties.get("ExecMainStatus")) if exited else None,
            last_seen=now,
        )

    # -- supervisor -----------------------------------------------------------------------------------------

    def _read_supervisor(self, now: float) -> tuple[list[ServiceStatus], dict[str, int]] | None:
        config = self._config.supervisor
        try:
            client = SupervisorClient(config)
        except ValueError as exc:
            raise _SourceError(f"not watching supervisor: {exc}") from None
        try:
            if not client.socket_exists():
                if any(manager == "supervisor" for manager, _ in self._statuses):
                    raise _SourceError(f"supervisord's socket {client.socket_path} is gone")
                if config.url != _DEFAULT_SUPERVISOR_URL:  # configured: a wrong path, not an absent supervisor
                    raise _SourceError(f"supervisord's socket {client.socket_path} does not exist")
                self._log_once(
                    "supervisor", "supervisord socket %s does not exist: not watching supervisor", config.url
                )
                return None
            try:
                infos = client.all_process_info()
                if config.programs:
                    wanted = {*config.programs, *self._config.services}
                    infos = [i for i in infos if full_name(i) in wanted or i["group"] in wanted]
                if any(full_name(info) not in self._commands for info in infos):
                    self._commands = {**{full_name(info): "" for info in infos}, **self._read_commands(client)}
                spawns = self._main_log.spawns(client)
            except SUPERVISOR_ERRORS as exc:
                raise _SourceError(f"supervisord at {config.url} does not answer: {describe_error(exc)}") from None
        finally:
            client.close()
        statuses: list[ServiceStatus] = []
        restarted: dict[str, int] = {}
        for info in infos:
            try:
                status, spawned = self._supervisor_status(info, spawns, now)
            except (KeyError, TypeError, ValueError):
                logger.warning("skipping supervisor process %r: unexpected process info", info.get("name"))
                continue
            statuses.append(status)
            if spawned:
                restarted[status.name] = spawned
        return statuses, restarted

    def _read_commands(self, client: SupervisorClient) -> dict[str, str]:
        try:
            return {full_name(info): str(info.get("command", "")) for info in client.all_config_info()}
        except xmlrpc.client.Fault:
            return {}

    def _supervisor_status(
        self, info: dict[str, Any], spawns: dict[str, int] | None, now: float
    ) -> tuple[ServiceStatus, int]:
        name = full_name(info)
        state = str(info["statename"]).lower()
        up = state == "running"
        pid = int(info["pid"]) or None
        start, stop = float(info["start"]), float(info["stop"])
        previous = self._statuses.get(("supervisor", name))
        last = self._spawns.get(name)
        if spawns is not None:
            spawned = spawns.get(str(info["name"]), 0)
        else:  # the log cannot be followed: a new pid or start time means at least one spawn
            spawned = int(last is not None and ((pid or 0) not in (0, last[0]) or start not in (0, last[1])))
        self._spawns[name] = (pid or 0, start)
        ended = state in ("stopped", "exited", "fatal")
        return (
            ServiceStatus(
                name=name,
                manager="supervisor",
                category=guess_category(name, self._config.categories, self._commands.get(name)),
                up=up,
                state=state,
                description=str(info.get("description") or "") or None,
                pid=pid,
                since=(stop if ended else start) or None,
                restarts=(previous.restarts if previous is not None else 0) + spawned,
                memory_bytes=self._rss(pid) if up and pid else None,
                exit_status=int(info["exitstatus"]) if state == "exited" else None,  # stale in other states
                last_seen=now,
            ),
            spawned,
        )

    def _rss(self, pid: int) -> int | None:
        try:
            statm = (self._procfs / str(pid) / "statm").read_text(encoding="ascii")
            return int(statm.split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            logger.debug("cannot read the RSS of pid %d", pid)
            return None

    # -- common ---------------------------------------------------------------------------------------------

    def _apply(
        self, manager: Manager, statuses: list[ServiceStatus], restarted: dict[str, int], now: float, out: Collection
    ) -> None:
        """Record ``manager``'s new statuses: events against the last known states, then samples."""
        for status in statuses:
            key = (manager, status.name)
            data = {"manager": manager, "category": status.category}
            known = self._known.get(key)
            if known is not None and known[0] != status.state:
                severity = Severity.WARNING if known[1] and not status.up else Severity.INFO
                message = f"{manager} service {status.name} is {status.state} (was {known[0]})"
                changed = {**data, "from": known[0], "to": status.state, "sub_state": status.sub_state}
                out.events.append(Event(EventKind.SERVICE_STATE, status.name, message, severity, changed, now))
            if restarted.get(status.name):
                count = restarted[status.name]
                message = f"{manager} service {status.name} restarted {count} time{'s' if count > 1 else ''}"
                counts = {**data, "count": count, "restarts_total": status.restarts}
                out.events.append(Event(EventKind.SERVICE_RESTART, status.name, message, Severity.WARNING, counts, now))
            self._known[key] = (status.state, status.up)
            out.samples.extend(_samples(status, now))
        others = {key: status for key, status in self._statuses.items() if key[0] != manager}
        self._statuses = others | {(manager, status.name): status for status in statuses}

    def _fail(self, manager: Manager, message: str, now: float, out: Collection) -> None:
        """Mark ``manager``'s services unknown, a blind spot; record the error once, when it starts."""
        message = mask_secrets(message)
        out.blind.append(BlindSpot(manager, _KEYS[manager], message))
        for key, status in self._statuses.items():
            if key[0] == manager:
                unknown = {"state": "unknown", "up": False, "sub_state": None, "pid": None, "memory_bytes": None}
                self._statuses[key] = status.model_copy(update=unknown)
        if manager in self._failing:
            logger.debug("%s", message)
            return
        self._failing.add(manager)
        logger.warning("%s", message)
        data = {"manager": manager, "config_key": _KEYS[manager]}
        out.events.append(Event(EventKind.COLLECTOR_ERROR, self.name, message, Severity.WARNING, data, now))

    def _log_once(self, key: str, message: str, *args: object, level: int = logging.INFO) -> None:
        if key not in self._skip_logged:
            self._skip_logged.add(key)
            logger.log(level, message, *args)


def _samples(status: ServiceStatus, now: float) -> list[Sample]:
    labels = {"service": status.name, "manager": status.manager, "category": status.category}
    samples = [
        Sample("service_up", 1.0 if status.up else 0.0, labels, now),
        Sample("service_restarts_total", float(status.restarts), labels, now),
    ]
    if status.memory_bytes is not None:
        samples.append(Sample("service_memory_bytes", float(status.memory_bytes), labels, now))
    if status.up and status.since is not None:
        samples.append(Sample("service_uptime_seconds", round(max(0.0, now - status.since), 3), labels, now))
    return samples
