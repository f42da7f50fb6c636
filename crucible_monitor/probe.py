"""``check-config --probe``: reach every target the config points at, once, and say what to fix.

The collectors do the reaching: each configured collector's ``collect()`` runs once (on a throw-away data
directory, so tail positions of the real agent are left alone) and its blind spots
(:class:`~crucible_monitor.collectors.base.BlindSpot`) are the failures. Only what no collector checks is probed
here: an HTTP check's host is resolved and connected to (nothing is requested), and each ``logs.files`` entry is
opened for reading. Every text shown is scrubbed of the config's secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from rich.table import Table
from rich.text import Text

from crucible_monitor.collectors import ScheduledCollector, build_collectors
from crucible_monitor.collectors.base import BlindSpot
from crucible_monitor.config import Config, SupervisorConfig, iter_secrets
from crucible_monitor.configtypes import REDACTED, mask_url
from crucible_monitor.untrusted import mask_secrets

__all__ = ["ProbeRow", "fix_for", "probe", "probe_table"]

COLLECT_TIMEOUT = 20.0
"""Seconds one collector may take before it counts as not answering."""
CONNECT_TIMEOUT = 3.0
"""The most seconds an HTTP check's connection may take (less when the check's own timeout is shorter)."""


@dataclass(frozen=True, slots=True)
class ProbeRow:
    """One target: ``key`` is the config key to look at, ``error`` what went wrong (empty when ok), ``fix`` advice."""

    target: str
    key: str
    ok: bool
    error: str = ""
    fix: str = ""


@dataclass(frozen=True, slots=True)
class _Target:
    """A configured target and the config key whose blind spots are its failures (the key or keys below it)."""

    name: str
    key: str

    def covers(self, spot: BlindSpot) -> bool:
        """True when ``spot`` is about this target, or about its whole collector (which failed)."""
        return _under(spot.key, self.key) or _under(self.key, spot.key)


def _under(key: str, prefix: str) -> bool:
    return key == prefix or key.startswith((f"{prefix}.", f"{prefix}["))


def _collector_targets(config: Config) -> list[_Target]:
    """What the enabled collectors read, one entry per configured source."""
    settings = config.collectors
    targets: list[_Target] = []
    if settings.system.enabled:
        targets.append(_Target(f"procfs {settings.system.procfs}", "collectors.system"))
    supervisor = settings.services.supervisor
    if settings.services.enabled and supervisor.enabled:
        default = SupervisorConfig.model_fields["url"].default
        absent = supervisor.url == default and not Path(urlsplit(supervisor.url).path).exists()
        if not absent:  # the default socket absent means supervisor is not installed: nothing to reach
            targets.append(_Target(f"supervisor {mask_url(supervisor.url)}", "collectors.services.supervisor.url"))
    mysql = settings.mysql
    if mysql.enabled:
        where = str(mysql.unix_socket) if mysql.unix_socket is not None else f"{mysql.host}:{mysql.port}"
        targets.append(_Target(f"MySQL {where}", "collectors.mysql"))
    if settings.access_logs.enabled:
        targets += [
            _Target(f"access log {file.path}", f"collectors.access_logs.files[{i}].path")
            for i, file in enumerate(settings.access_logs.files)
        ]
    if settings.laravel.enabled:
        for i, app in enumerate(settings.laravel.apps):
            key = f"collectors.laravel.apps[{i}]"
            targets.append(_Target(f"logs of {app.name}", f"{key}.logs"))
            if app.database_url is not None:
                url = mask_url(app.database_url.get_secret_value())
                targets.append(_Target(f"database of {app.name} ({url})", f"{key}.database_url"))
            if app.redis_url is not None:
                url = mask_url(app.redis_url.get_secret_value())
                targets.append(_Target(f"redis of {app.name} ({url})", f"{key}.redis_url"))
    if settings.php_fpm.enabled:
        targets += [
            _Target(f"php-fpm pool {pool.name} ({mask_url(pool.status_url)})", f"collectors.php_fpm.pools[{i}]")
            for i, pool in enumerate(settings.php_fpm.pools)
        ]
    return targets


async def _collect(scheduled: ScheduledCollector) -> list[BlindSpot]:
    """Run one collector once: its blind spots, or the whole collector as one when it fails or hangs."""
    collector = scheduled.collector
    try:
        collection = await asyncio.wait_for(collector.collect(), COLLECT_TIMEOUT)
    except TimeoutError:
        return [BlindSpot(collector.name, scheduled.key, f"no answer within {COLLECT_TIMEOUT:g}s")]
    except Exception as exc:  # a collector raises only when its whole source is unreadable: that is the finding
        return [BlindSpot(collector.name, scheduled.key, f"{collector.name} failed: {exc}")]
    finally:
        aclose = getattr(collector, "aclose", None)
        if aclose is not None:
            await aclose()
    return list(collection.blind)


async def _collector_rows(config: Config) -> list[ProbeRow]:
    """The collectors' targets, each ok or failed with what its collector's blind spots say."""
    with tempfile.TemporaryDirectory(prefix="crucible-probe-") as scratch:
        scratch_config = config.model_copy(
            update={"agent": config.agent.model_copy(update={"data_dir": Path(scratch)})}
        )
        scheduled = [s for s in build_collectors(scratch_config) if not _under(s.key, "collectors.http_checks")]
        found = await asyncio.gather(*(_collect(s) for s in scheduled))
    spots = [spot for spots in found for spot in spots]
    rows: list[ProbeRow] = []
    claimed: set[int] = set()
    for target in _collector_targets(config):
        mine = [(i, spot) for i, spot in enumerate(spots) if target.covers(spot)]
        claimed |= {i for i, _ in mine}
        rows += [_failed(target.name, spot.key, spot.error) for _, spot in mine] or [
            ProbeRow(target.name, target.key, True)
        ]
    rows += [_failed(spot.target, spot.key, spot.error) for i, spot in enumerate(spots) if i not in claimed]
    return rows


async def _http_row(index: int, name: str, url: str, timeout: float) -> ProbeRow:
    """Resolve the check's host and open a TCP connection to it (closed at once, nothing requested)."""
    key = f"collectors.http_checks[{index}].url"
    target = f"http check {name} ({mask_url(url)})"
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.getaddrinfo(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        return _failed(target, key, f"cannot resolve {host}: {_describe(exc)}", resolve=True)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        return _failed(target, key, f"cannot connect to {host}:{port}: {_describe(exc)}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeRow(target, key, True)


def _log_row(name: str, path: Path) -> ProbeRow:
    """Open a ``logs.files`` entry for reading."""
    key = f"logs.files.{name}"
    target = f"log {name} ({path})"
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        return _failed(target, key, f"cannot read {path}: {exc.strerror or exc}")
    return ProbeRow(target, key, True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and isinstance(exc.errno, int) and exc.errno > 0:
        return os.strerror(exc.errno)  # asyncio's connect errors say "Connect call failed" in strerror
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


_RESOLVE = (
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "no address associated",
    "cannot resolve",
    "name resolution",
)


_PATH = re.compile(r"/[^\s:'\"()]+")


def fix_for(key: str, error: str, *, resolve: bool = False) -> str:
    """Advice for a common ``error`` of the target configured at ``key`` (the table shows the key beside it)."""
    text = error.lower()
    if resolve or any(words in text for words in _RESOLVE):
        return "the host name does not resolve: check the name, and the host's DNS (/etc/resolv.conf)"
    if "access denied" in text or "1045" in text or ("auth" in text and ("fail" in text or "invalid" in text)):
        return "check the user and password (or the password_file / defaults_file they are read from)"
    if "permission denied" in text:
        path = _PATH.search(error)
        where = path.group(0) if path else "it"
        return f"the agent's user ({getpass.getuser()}) needs read access to {where} (e.g. the adm group in /var/log)"
    if "refused" in text:
        return "is the service running and listening there? is the address or socket path right?"
    if "no such file" in text or "does not exist" in text or "no file " in text or "no directory " in text:
        if ".sock" in text or key.endswith(("url", "unix_socket", "host")):
            return "is the service running (it creates its socket when it starts)? is the path right?"
        return "correct the path, or create the file"
    if "timed out" in text or "timeout" in text or "no answer within" in text:
        return "no answer in time: is the host right? is a firewall dropping the connection?"
    return "see the error"


def _failed(target: str, key: str, error: str, *, resolve: bool = False) -> ProbeRow:
    error = mask_secrets(error)
    return ProbeRow(target, key, False, error, fix_for(key, error, resolve=resolve))


def _scrub(rows: Iterable[ProbeRow], secrets: Sequence[str]) -> list[ProbeRow]:
    def clean(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        return text

    return [ProbeRow(clean(r.target), r.key, r.ok, clean(r.error), clean(r.fix)) for r in rows]


async def probe(config: Config) -> list[ProbeRow]:
    """Every configured target, reached once: collectors' sources, HTTP checks' hosts, ``logs.files``."""
    checks = config.collectors.http_checks
    http = [
        _http_row(i, c.name, str(c.url), min(CONNECT_TIMEOUT, c.timeout.total_seconds())) for i, c in enumerate(checks)
    ]
    quiet = logging.getLogger("crucible_monitor.collectors")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # what the collectors would log is in the rows
    try:
        collected, reached = await asyncio.gather(_collector_rows(config), asyncio.gather(*http))
    finally:
        quiet.setLevel(level)
    logs = [_log_row(name, path) for name, path in config.logs.files.items()]
    secrets = sorted({s for s in iter_secrets(config) if len(s) >= 3}, key=len, reverse=True)
    return _scrub([*collected, *reached, *logs], secrets)


def probe_table(rows: Sequence[ProbeRow]) -> Table:
    """The rows as a table: target, config key, ok/failed, and for each failure its error and (below) the fix."""
    failed = sum(not r.ok for r in rows)
    table = Table(title=f"Probe: {failed} of {len(rows)} failed", title_justify="left", expand=True)
    table.add_column("target", overflow="fold", ratio=3)
    table.add_column("config key", overflow="fold", ratio=3)
    table.add_column("result", no_wrap=True)
    table.add_column("error and fix", overflow="fold", ratio=5)
    for row in rows:
        result = Text("ok", style="green") if row.ok else Text("failed", style="red")
        why = Text(row.error)
        if row.fix:
            why.append("\nfix: ", style="bold").append(row.fix)
        table.add_row(Text(row.target), Text(row.key), result, why)
    return table
