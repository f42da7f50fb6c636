"""systemd through its command-line tools: argument lists, the runner, and parsers of their output.

Every command is an argument list run without a shell, in the C locale with UTC times; unit names are validated
(:func:`validate_unit_name`) before they reach one.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime

__all__ = [
    "CLD_EXITED",
    "DISCOVER_PATTERNS",
    "SHOW_PROPERTIES",
    "UP_STATES",
    "discover_units",
    "journalctl_argv",
    "parse_systemctl_show",
    "run_systemctl",
    "systemctl_list_units_argv",
    "systemctl_restart_argv",
    "systemctl_show_argv",
    "systemd_int",
    "systemd_time",
    "validate_unit_name",
]

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

_NAME = re.compile(r"[A-Za-z0-9:_.@-]+")
_UNIT_TYPES = frozenset(
    ("service", "socket", "target", "timer", "mount", "automount", "path", "slice", "scope", "swap", "device")
)
UP_STATES = frozenset(("active", "reloading"))
"""ActiveState values that count as up."""

SHOW_PROPERTIES = (
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
"""The properties :func:`systemctl_show_argv` asks for."""
_SYSTEMCTL_TIMEOUT = 10.0
CLD_EXITED = 1
"""ExecMainCode: the main process exited (ExecMainStatus is its exit status)."""
_UINT64_MAX = 2**64 - 1
_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(\.\d+)? (\S+)$")


def validate_unit_name(unit: str) -> str:
    """The unit name with ``.service`` appended when it has no unit type suffix.

    Raises:
        ValueError: the name has characters outside ``A-Za-z0-9:_.@-`` or starts with ``-`` or ``.``.
    """
    if not _NAME.fullmatch(unit) or unit.startswith(("-", ".")):
        raise ValueError(f"invalid unit name {unit!r}: use letters, digits and : _ . @ - (not first - or .)")
    return unit if unit.rpartition(".")[2] in _UNIT_TYPES else f"{unit}.service"


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
    """``systemctl show`` of :data:`SHOW_PROPERTIES` (what the services collector reads) for ``units``, validated."""
    return ["systemctl", "show", "--no-pager", f"--property={','.join(SHOW_PROPERTIES)}", "--", *units]


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


def systemd_time(properties: dict[str, str], name: str, now: float) -> float | None:
    """``<name>`` as Unix time: the wall-clock text (UTC) or else the monotonic variant; None when never."""
    match = _TIMESTAMP.search(properties.get(name, ""))
    if match and match.group(3) in ("UTC", "GMT"):
        parsed = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        return parsed.timestamp() + float(match.group(2) or 0)
    monotonic_us = int(properties.get(f"{name}Monotonic") or 0)
    if monotonic_us <= 0:
        return None
    return now - (time.monotonic() - monotonic_us / 1e6)


def systemd_int(value: str | None) -> int | None:
    """A numeric property, None when unset, infinite or ``[not set]``."""
    if value is None or value in ("", "[not set]", "infinity"):
        return None
    number = int(value)
    return None if number == _UINT64_MAX else number
