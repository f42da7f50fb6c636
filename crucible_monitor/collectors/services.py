"""Service states and restarts from systemd (``systemctl show``) and supervisord (XML-RPC).

One :class:`ServicesCollector` reads every watched service per collection: the configured systemd units plus, when
``discover`` is on, the web-stack units found on the host, and supervisord's programs. It keeps a
:class:`ServiceStatus` per service (:meth:`ServicesCollector.statuses`), emits samples labelled
``{service, manager, category}`` and records events: ``SERVICE_STATE`` when a state changes between polls,
``SERVICE_RESTART`` when restarts are detected, and ``COLLECTOR_ERROR`` when a manager that answered stops answering.

Restarts: systemd counts them itself (``NRestarts``). supervisord does not, so every ``spawned:`` line of its main
log (read through ``supervisor.readLog`` from the last offset) counts as one; when the log cannot be followed, a
changed start time between polls counts as one. Commands never go through a shell, and unit and program names are
validated before they reach one. The supervisor password goes into an ``Authorization`` header only: never into a
URL, a log line, an event or a ``repr``.
"""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import http.client
import logging
import os
import re
import shutil
import socket
import subprocess
import time
import xmlrpc.client
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, cast
from urllib.parse import urlsplit
from xml.parsers.expat import ExpatError

from pydantic import BaseModel, ConfigDict

from crucible_monitor.collectors.base import Collection
from crucible_monitor.config import Category, ServicesConfig, SupervisorConfig
from crucible_monitor.errors import CollectorError, NotFoundError
from crucible_monitor.models import Event, EventKind, MetricKind, MetricSpec, Sample, Severity

__all__ = [
    "CATALOGUE",
    "DISCOVER_PATTERNS",
    "Manager",
    "ServiceStatus",
    "ServicesCollector",
    "SUPERVISOR_ERRORS",
    "SupervisorClient",
    "discover_units",
    "guess_category",
    "journalctl_argv",
    "parse_systemctl_show",
    "run_systemctl",
    "supervisor_restart",
    "systemctl_list_units_argv",
    "systemctl_restart_argv",
    "systemctl_show_argv",
    "validate_program_name",
    "validate_unit_name",
]

logger = logging.getLogger(__name__)

Manager = Literal["systemd", "supervisor"]

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

DISCOVER_PATTERNS: tuple[str, ...] = (
    "nginx",
    "caddy",
    "apache2",
    "httpd",
    "mysql",
    "mysqld",
    "mariadb",
    "postgresql*",
    "redis*",
    "memcached",
    "php*-fpm",
    "supervisor*",
    "horizon*",
)
"""Unit names (without ``.service``) that discovery watches: the usual web stack."""

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

_NAME = re.compile(r"[A-Za-z0-9:_.@-]+")
_UNIT_TYPES = frozenset(
    ("service", "socket", "target", "timer", "mount", "automount", "path", "slice", "scope", "swap", "device")
)
_UP_STATES = frozenset(("active", "reloading"))

_SHOW_PROPERTIES = (
    "Id",
    "Description",
    "LoadState",
    "ActiveState",
    "SubState",
    "NRestarts",
    "MainPID",
    "ExecMainPID",
    "ExecMainCode",
    "ExecMainStatus",
    "MemoryCurrent",
    "ActiveEnterTimestamp",
    "ActiveEnterTimestampMonotonic",
    "StateChangeTimestamp",
    "StateChangeTimestampMonotonic",
)
_SYSTEMCTL_TIMEOUT = 10.0
_CLD_EXITED = 1  # ExecMainCode: the main process exited (ExecMainStatus is its exit status)
_UINT64_MAX = 2**64 - 1
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(\.\d+)? (\S+)$")

_SUPERVISOR_TIMEOUT = 10.0
_FAULT_BAD_NAME = 10
_FAULT_NO_FILE = 20
_FAULT_NOT_RUNNING = 70
_SPAWNED = re.compile(r" spawned: '(.+)' with pid \d+$", re.MULTILINE)
_MAX_LOG_PROBE = 2**48
# What a call to supervisord can raise: unreachable, HTTP error, a Fault, or a reply that is not XML.
SUPERVISOR_ERRORS = (OSError, http.client.HTTPException, xmlrpc.client.Error, ExpatError)


class ServiceStatus(BaseModel):
    """The last known state of one watched service."""

    model_config = ConfigDict(frozen=True)

    name: str
    manager: Manager
    category: Category
    up: bool
    state: str
    """systemd ActiveState or supervisor statename, lower case; ``unknown`` while its manager does not answer."""
    sub_state: str | None = None
    description: str | None = None
    pid: int | None = None
    since: float | None = None
    """Unix time the service entered its current state (became active, failed, stopped), when known."""
    restarts: int = 0
    memory_bytes: int | None = None
    exit_status: int | None = None
    last_seen: float
    """Unix time of the last poll that read this service."""


# ---------------------------------------------------------------------------------------------------------------
# Names and commands


def validate_unit_name(unit: str) -> str:
    """The unit name with ``.service`` appended when it has no unit type suffix.

    Raises:
        ValueError: the name has characters outside ``A-Za-z0-9:_.@-`` or starts with ``-`` or ``.``.
    """
    if not _NAME.fullmatch(unit) or unit.startswith(("-", ".")):
        raise ValueError(f"invalid unit name {unit!r}: use letters, digits and : _ . @ - (not first - or .)")
    return unit if unit.rpartition(".")[2] in _UNIT_TYPES else f"{unit}.service"


def validate_program_name(program: str) -> str:
    """A supervisor program name (``name`` or ``group:name``), checked.

    Raises:
        ValueError: the name has characters outside ``A-Za-z0-9:_.@-`` or starts with ``-``.
    """
    if not _NAME.fullmatch(program) or program.startswith("-"):
        raise ValueError(f"invalid program name {program!r}: use letters, digits and : _ . @ - (not first -)")
    return program


def systemctl_restart_argv(unit: str) -> list[str]:
    """The exact argument list that restarts ``unit`` (no shell, no sudo, no password prompt).

    Raises:
        ValueError: the unit name is invalid.
    """
    return ["systemctl", "restart", "--no-ask-password", validate_unit_name(unit)]


def journalctl_argv(unit: str, lines: int) -> list[str]:
    """The last ``lines`` journal lines of ``unit``, as an argument list (no shell).

    Raises:
        ValueError: the unit name is invalid.
    """
    return [
        "journalctl",
        f"--unit={validate_unit_name(unit)}",
        f"--lines={int(lines)}",
        "--no-pager",
        "--output=short-iso",
        "--utc",
    ]


def systemctl_show_argv(units: Sequence[str]) -> list[str]:
    """``systemctl show`` of the properties this collector reads, for ``units`` (already validated)."""
    return ["systemctl", "show", "--no-pager", f"--property={','.join(_SHOW_PROPERTIES)}", "--", *units]


def systemctl_list_units_argv() -> list[str]:
    """``systemctl list-units`` of every loaded service, one plain line each."""
    return ["systemctl", "list-units", "--type=service", "--all", "--plain", "--no-legend", "--no-pager"]


def run_systemctl(argv: Sequence[str], *, timeout: float = _SYSTEMCTL_TIMEOUT) -> str:
    """Run a systemd tool (systemctl, journalctl) without a shell, in the C locale with UTC times and no colours or
    pager; return its stdout.

    Raises:
        OSError: the command cannot be started.
        subprocess.CalledProcessError: it exited with a non-zero status.
        subprocess.TimeoutExpired: it took longer than ``timeout`` seconds.
    """
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "SYSTEMD_COLORS": "0",
        "SYSTEMD_PAGER": "",
        "SYSTEMD_URLIFY": "0",
    }
    completed = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        env=env,
        check=True,
    )
    return completed.stdout


# ---------------------------------------------------------------------------------------------------------------
# systemd output


def parse_systemctl_show(text: str) -> list[dict[str, str]]:
    """Split ``systemctl show`` output for several units into one ``{property: value}`` dict per unit."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    if current:
        blocks.append(current)
    return blocks


def discover_units(list_units_output: str, patterns: Sequence[str] = DISCOVER_PATTERNS) -> list[str]:
    """The loaded ``.service`` units of ``systemctl list-units --plain --no-legend`` whose name matches a pattern."""
    units: list[str] = []
    for line in list_units_output.splitlines():
        fields = line.split()
        if fields and fields[0] in ("●", "*"):  # a failed unit's marker, should --plain ever keep it
            fields = fields[1:]
        if len(fields) < 2 or fields[1] != "loaded" or not fields[0].endswith(".service"):
            continue
        unit = fields[0]
        if _NAME.fullmatch(unit) and any(fnmatch.fnmatchcase(unit.removesuffix(".service"), p) for p in patterns):
            units.append(unit)
    return units


def _systemd_time(properties: dict[str, str], name: str, now: float) -> float | None:
    """``<name>`` as Unix time: the wall-clock text (UTC) or else the monotonic variant; None when never."""
    match = _TIMESTAMP.search(properties.get(name, ""))
    if match and match.group(3) in ("UTC", "GMT"):
        parsed = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        return parsed.timestamp() + float(match.group(2) or 0)
    monotonic_us = int(properties.get(f"{name}Monotonic") or 0)
    if monotonic_us <= 0:
        return None
    return now - (time.monotonic() - monotonic_us / 1e6)


def _optional_int(value: str | None) -> int | None:
    if value is None or value in ("", "[not set]", "infinity"):
        return None
    number = int(value)
    return None if number == _UINT64_MAX else number


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


# ---------------------------------------------------------------------------------------------------------------
# supervisord XML-RPC


class _UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a unix socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Transport(xmlrpc.client.Transport):
    """XML-RPC over a unix socket or plain HTTP, with a timeout and extra headers (basic auth)."""

    def __init__(self, socket_path: str | None, timeout: float, headers: list[tuple[str, str]]) -> None:
        super().__init__(headers=headers)
        self._socket_path = socket_path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._connection[1] is not None and host == self._connection[0]:
            return self._connection[1]
        chost, self._extra_headers, _ = self.get_host_info(host)
        connection = (
            _UnixHTTPConnection(self._socket_path, self._timeout)
            if self._socket_path is not None
            else http.client.HTTPConnection(chost, timeout=self._timeout)
        )
        self._connection = host, connection
        return connection


class SupervisorClient:
    """supervisord's XML-RPC API (``unix:///path.sock`` or ``http://host:port``); close it, or use ``with``.

    Methods raise what ``xmlrpc.client`` raises: ``xmlrpc.client.Fault`` when supervisord refuses,
    ``xmlrpc.client.ProtocolError`` on an HTTP error (401 for bad credentials), ``OSError`` when it cannot be reached.
    The constructor raises ``ValueError`` for a URL that is neither ``unix://`` nor ``http://``.
    """

    def __init__(self, config: SupervisorConfig, *, timeout: float = _SUPERVISOR_TIMEOUT) -> None:
        self.url = config.url
        headers: list[tuple[str, str]] = []
        if config.username is not None and config.password is not None:
            token = f"{config.username}:{config.password.get_secret_value()}".encode()
            headers.append(("Authorization", f"Basic {base64.b64encode(token).decode('ascii')}"))
        self.socket_path: str | None = None
        if config.url.startswith("unix://"):
            self.socket_path = config.url.removeprefix("unix://")
            endpoint = "http://localhost/RPC2"
        elif config.url.startswith("http://"):
            parts = urlsplit(config.url)
            endpoint = f"http://{parts.netloc}{parts.path.rstrip('/') or '/RPC2'}"
        else:
            raise ValueError(f"unsupported supervisor URL {config.url!r}: use unix:///path.sock or http://host:port")
        transport = _Transport(self.socket_path, timeout, headers)
        self._proxy = xmlrpc.client.ServerProxy(endpoint, transport=transport)

    def __repr__(self) -> str:
        return f"SupervisorClient({self.url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (a later call opens a new one)."""
        self._proxy("close")()

    def socket_exists(self) -> bool:
        """False when the URL is a unix socket that does not exist (supervisord not running); True for HTTP."""
        return self.socket_path is None or os.path.exists(self.socket_path)

    def all_process_info(self) -> list[dict[str, Any]]:
        """``supervisor.getAllProcessInfo()``."""
        return cast(list[dict[str, Any]], self._proxy.supervisor.getAllProcessInfo())

    def all_config_info(self) -> list[dict[str, Any]]:
        """``supervisor.getAllConfigInfo()``: each program's configuration, its command included."""
        return cast(list[dict[str, Any]], self._proxy.supervisor.getAllConfigInfo())

    def read_log(self, offset: int, length: int) -> str:
        """``supervisor.readLog(offset, length)``: the main log from ``offset`` (``length`` 0: to its end)."""
        return cast(str, self._proxy.supervisor.readLog(offset, length))

    def tail(self, name: str, length: int) -> tuple[str, str]:
        """The last ``length`` bytes of a program's stdout and stderr logs (empty where it has none)."""
        out = cast(list[Any], self._proxy.supervisor.tailProcessStdoutLog(name, 0, length))[0]
        err = cast(list[Any], self._proxy.supervisor.tailProcessStderrLog(name, 0, length))[0]
        return str(out), str(err)

    def stop(self, name: str) -> None:
        """Stop a program and wait until it has stopped."""
        self._proxy.supervisor.stopProcess(name, True)

    def start(self, name: str) -> None:
        """Start a program and wait until it is running."""
        self._proxy.supervisor.startProcess(name, True)


def supervisor_restart(config: SupervisorConfig, program: str) -> None:
    """Restart a supervisor program (``name`` or ``group:name``): stop it if it runs, then start it.

    Raises:
        ValueError: the program name or the supervisor URL is invalid.
        NotFoundError: supervisord has no such program.
        CollectorError: supervisord cannot be reached or refuses (e.g. the program fails to start).
    """
    name = validate_program_name(program)
    try:
        with SupervisorClient(config) as client:
            try:
                client.stop(name)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode != _FAULT_NOT_RUNNING:
                    raise
            client.start(name)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode == _FAULT_BAD_NAME:
            raise NotFoundError(f"supervisord has no program {name!r}") from None
        raise CollectorError(f"supervisord refused to restart {name!r}: {fault.faultString}") from None
    except SUPERVISOR_ERRORS as exc:
        raise CollectorError(f"cannot reach supervisord at {config.url}: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, xmlrpc.client.ProtocolError):
        return f"HTTP {exc.errcode} {exc.errmsg}"
    if isinstance(exc, subprocess.CalledProcessError):
        stderr = exc.stderr.strip().splitlines() if isinstance(exc.stderr, str) else []
        return f"exit status {exc.returncode}" + (f": {stderr[0]}" if stderr else "")
    return str(exc) or type(exc).__name__


def _full_name(info: dict[str, Any]) -> str:
    name, group = str(info["name"]), str(info["group"])
    return name if name == group else f"{group}:{name}"


class _MainLog:
    """Follows supervisord's main log through ``readLog`` and counts ``spawned:`` lines per process name."""

    def __init__(self) -> None:
        self.usable = True
        self.offset: int | None = None
        self.tail = ""  # the last line read, to notice a rotated or truncated log

    def spawns(self, client: SupervisorClient) -> dict[str, int] | None:
        """Spawns per process name since the last call; None when unknown (first call, log rotated or unreadable).

        Raises:
            OSError: supervisord cannot be reached.
        """
        if not self.usable:
            return None
        try:
            if self.offset is None:
                self._sync(client)
                return None
            start = self.offset - len(self.tail.encode())
            text = client.read_log(start, 0)
            if not text.startswith(self.tail):
                logger.info("supervisord's main log was rotated or truncated; resynchronising")
                self._sync(client)
                return None
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == _FAULT_NO_FILE:
                logger.info("supervisord's main log is not a readable file; counting restarts from start times")
                self.usable = False
            self.offset = None
            return None
        except (xmlrpc.client.ProtocolError, http.client.HTTPException, ExpatError):
            self.offset = None  # e.g. a read that began inside a multi-byte character (HTTP 500)
            return None
        new = text[len(self.tail) :]
        complete = new[: new.rfind("\n") + 1]
        if complete:
            self.offset += len(complete.encode())
            self.tail = complete[complete.rfind("\n", 0, -1) + 1 :]
        return dict(Counter(match.group(1) for match in _SPAWNED.finditer(complete)))

    def _sync(self, client: SupervisorClient) -> None:
        """Find the end of the log (readLog has no size call: search for the first offset with nothing to read)."""
        low, high = 0, 1
        while high < _MAX_LOG_PROBE and self._has_data(client, high):
            low, high = high, high * 2
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if self._has_data(client, middle) else (low, middle)
        size = high if self._has_data(client, low) else low
        self.tail = ""
        if size:
            try:
                self.tail = client.read_log(size - 1, 1)
            except (xmlrpc.client.ProtocolError, ExpatError):
                self.tail = ""
        self.offset = size

    @staticmethod
    def _has_data(client: SupervisorClient, offset: int) -> bool:
        try:
            return client.read_log(offset, 1) != ""
        except ExpatError:  # a control character, which XML cannot carry: there is data
            return True
        except xmlrpc.client.ProtocolError as exc:
            if exc.errcode == 500:  # the byte there is part of a multi-byte character: there is data
                return True
            raise


# ---------------------------------------------------------------------------------------------------------------
# The collector


class _SourceError(Exception):
    """A service manager that was readable cannot be read now."""


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
        self._main_log = _MainLog()
        self._spawns: dict[str, tuple[int, float]] = {}  # last pid and start time per program
        self._commands: dict[str, str] = {}

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
        return collection

    # -- systemd --------------------------------------------------------------------------------------------

    def _read_systemd(self, now: float) -> tuple[list[ServiceStatus], dict[str, int]] | None:
        if self._systemd_ok is None:
            self._systemd_ok = Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None
            if not self._systemd_ok:
                logger.info("systemd is not running here (or systemctl is missing): not watching systemd units")
        if not self._systemd_ok:
            return None
        units: list[str] = []
        for unit in self._config.systemd.units:
            try:
                units.append(validate_unit_name(unit))
            except ValueError:
                self._log_once(f"unit:{unit}", "skipping systemd unit %r: not a valid unit name", unit)
        try:
            if self._config.systemd.discover:
                units += discover_units(self._run(systemctl_list_units_argv()))
            units = list(dict.fromkeys(units))
            text = self._run(systemctl_show_argv(units)) if units else ""
        except (OSError, subprocess.SubprocessError) as exc:
            raise _SourceError(f"systemctl failed: {_describe(exc)}") from None
        statuses: list[ServiceStatus] = []
        restarted: dict[str, int] = {}
        for properties in parse_systemctl_show(text):
            unit = properties.get("Id", "")
            if properties.get("LoadState") == "not-found":
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
        up = state in _UP_STATES
        pid = _optional_int(properties.get("MainPID")) or (_optional_int(properties.get("ExecMainPID")) if up else None)
        exited = _optional_int(properties.get("ExecMainCode")) == _CLD_EXITED
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
            since=_systemd_time(properties, since_property, now),
            restarts=_optional_int(properties.get("NRestarts")) or 0,
            memory_bytes=_optional_int(properties.get("MemoryCurrent")),
            exit_status=_optional_int(properties.get("ExecMainStatus")) if exited else None,
            last_seen=now,
        )

    # -- supervisor -----------------------------------------------------------------------------------------

    def _read_supervisor(self, now: float) -> tuple[list[ServiceStatus], dict[str, int]] | None:
        config = self._config.supervisor
        try:
            client = SupervisorClient(config)
        except ValueError as exc:
            self._log_once("supervisor", "not watching supervisor: %s", exc, level=logging.WARNING)
            return None
        try:
            if not client.socket_exists():
                if any(manager == "supervisor" for manager, _ in self._statuses):
                    raise _SourceError(f"supervisord's socket {client.socket_path} is gone")
                self._log_once(
                    "supervisor", "supervisord socket %s does not exist: not watching supervisor", config.url
                )
                return None
            try:
                infos = client.all_process_info()
                if config.programs:
                    infos = [i for i in infos if _full_name(i) in config.programs or i["group"] in config.programs]
                if any(_full_name(info) not in self._commands for info in infos):
                    self._commands = {**{_full_name(info): "" for info in infos}, **self._read_commands(client)}
                spawns = self._main_log.spawns(client)
            except SUPERVISOR_ERRORS as exc:
                raise _SourceError(f"supervisord at {config.url} does not answer: {_describe(exc)}") from None
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
            return {_full_name(info): str(info.get("command", "")) for info in client.all_config_info()}
        except xmlrpc.client.Fault:
            return {}

    def _supervisor_status(
        self, info: dict[str, Any], spawns: dict[str, int] | None, now: float
    ) -> tuple[ServiceStatus, int]:
        name = _full_name(info)
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
        """Mark ``manager``'s services unknown; record the error once, when it starts."""
        for key, status in self._statuses.items():
            if key[0] == manager:
                unknown = {"state": "unknown", "up": False, "sub_state": None, "pid": None, "memory_bytes": None}
                self._statuses[key] = status.model_copy(update=unknown)
        if manager in self._failing:
            logger.debug("%s", message)
            return
        self._failing.add(manager)
        logger.warning("%s", message)
        out.events.append(
            Event(EventKind.COLLECTOR_ERROR, manager, message, Severity.WARNING, {"collector": self.name}, now)
        )

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
