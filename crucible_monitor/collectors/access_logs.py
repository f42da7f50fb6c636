"""Web server access logs: Caddy's JSON log and the nginx/Apache combined format, tailed rotation-safe.

Each configured file (or glob) is followed by a :class:`~crucible_monitor.collectors.tailing.Tailer` whose
positions persist under the collector's state directory, so a restart neither loses nor double-counts lines.
Every request read is counted per virtual host (label ``vhost``: the request's Host without its port, or the file's
configured ``host``) and status class; the requests read in a cycle give that cycle's latency p50/p95/p99 and its
4xx and 5xx shares. Per endpoint (method and normalised path: query dropped, numeric, UUID and long hex segments
collapsed to ``{id}``) and per minute, counts, errors and a latency histogram stay in memory for ``window``:
:meth:`AccessLogsCollector.top_endpoints` ranks the slowest and the most failing endpoints from them.

Latency comes from Caddy's ``duration`` (seconds) and, in the combined format, from an optional last field after
the user agent holding nginx's ``$request_time`` (seconds). Lines that do not parse are counted, never fatal.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import orjson

from crucible_monitor.collectors.base import Collection, Problems
from crucible_monitor.collectors.tailing import Tailer
from crucible_monitor.config import AccessLogFileConfig, AccessLogsConfig
from crucible_monitor.configtypes import format_duration
from crucible_monitor.errors import NotFoundError, QueryError
from crucible_monitor.models import MetricKind, MetricSpec, Sample, iso
from crucible_monitor.schemas import EndpointRanking, EndpointStats, TopEndpoints

__all__ = [
    "CATALOGUE",
    "AccessLogFileConfig",
    "AccessLogsCollector",
    "AccessLogsConfig",
    "AccessRecord",
    "EndpointRanking",
    "EndpointStats",
    "TopEndpoints",
    "normalise_path",
    "parse_caddy_line",
    "parse_combined_line",
]

logger = logging.getLogger(__name__)

_G, _C = MetricKind.GAUGE, MetricKind.COUNTER
CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec(
        "http_requests_total",
        _C,
        "requests",
        "Requests read from access logs since the agent started, by status class (1xx-5xx).",
        ("vhost", "status_class"),
    ),
    MetricSpec(
        "http_request_duration_seconds",
        _G,
        "seconds",
        "Latency quantile (0.5, 0.95, 0.99) of the requests read in the last cycle; none without requests.",
        ("vhost", "quantile"),
    ),
    MetricSpec(
        "http_client_error_ratio", _G, "ratio", "Share of 4xx responses among the last cycle's requests.", ("vhost",)
    ),
    MetricSpec(
        "http_server_error_ratio", _G, "ratio", "Share of 5xx responses among the last cycle's requests.", ("vhost",)
    ),
    MetricSpec("access_log_lines_total", _C, "lines", "Lines read from the file since the agent started.", ("log",)),
    MetricSpec(
        "access_log_unparsed_lines_total", _C, "lines", "Lines that did not parse in the file's format.", ("log",)
    ),
)

_QUANTILES = (0.5, 0.95, 0.99)
_STATUS_CLASSES = {status: f"{status // 100}xx" for status in range(100, 600)}
_HISTOGRAM_BASE = 0.001  # seconds: the upper bound of bucket 0
_HISTOGRAM_FACTOR = 2**0.25  # each bucket's bound is 19 % above the last
_LOG_FACTOR = math.log(_HISTOGRAM_FACTOR)
_OTHER_PATH = "(other)"
_MAX_PATH_CHARS = 200
_CACHE_SIZE = 10_000
_DIGIT = re.compile(r"\d")
_ID_SEGMENT = re.compile(
    r"\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,}"
)
_COMBINED = re.compile(
    rb'\S+ \S+ \S+ \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) \S+'
    rb'(?: "(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*"(?: (\d+(?:\.\d+)?))?)?'
)


class AccessRecord(NamedTuple):
    """One request from an access log."""

    ts: float
    vhost: str
    method: str
    path: str
    """Normalised: see :func:`normalise_path`."""
    status: int
    duration: float | None
    """Seconds, when the log records it."""


def normalise_path(uri: str) -> str:
    """The path of a request target, without query or fragment, with id-like segments as ``{id}``."""
    path = uri.split("?", 1)[0].split("#", 1)[0] or "/"
    if _DIGIT.search(path):
        path = "/".join("{id}" if _ID_SEGMENT.fullmatch(part) else part for part in path.split("/"))
    return path[:_MAX_PATH_CHARS]


def _vhost(host: str) -> str:
    """A Host header without its port, lower case."""
    if host.startswith("["):  # [::1]:8080
        return host[: host.find("]") + 1].lower() or "(none)"
    name, _, port = host.rpartition(":")
    return (name if name and port.isdigit() else host).lower() or "(none)"


_Row = tuple[float, str, str, str, int, float | None]
"""An :class:`AccessRecord`'s fields: the parsers' hot loops make plain tuples."""


class _Parser:
    """Lines of one format to rows, with the caches real traffic makes worthwhile (it repeats its URIs)."""

    def __init__(self, host: str | None) -> None:
        self.host = host
        self._paths: dict[str, str] = {}

    def rows(self, lines: Iterable[bytes]) -> Iterator[_Row | None]:
        """One row per line; None for a line that does not parse."""
        raise NotImplementedError

    def path(self, uri: str) -> str:
        """:func:`normalise_path`, cached."""
        path = self._paths.get(uri)
        if path is None:
            if len(self._paths) >= _CACHE_SIZE:
                self._paths.clear()
            path = self._paths[uri] = normalise_path(uri)
        return path


class _CaddyParser(_Parser):
    """Caddy's JSON: ``ts`` (Unix seconds or ISO 8601), ``request.{host,method,uri}``, ``status``, ``duration``."""

    def __init__(self, host: str | None) -> None:
        super().__init__(host)
        self._vhosts: dict[str, str] = {}

    def rows(self, lines: Iterable[bytes]) -> Iterator[_Row | None]:
        loads, paths, vhosts, host = orjson.loads, self._paths, self._vhosts, self.host
        for line in lines:
            try:
                entry = loads(line)
                request = entry["request"]
                status = entry["status"]
                uri = request["uri"]
                ts = entry["ts"]
                if type(ts) is not float:
                    ts = float(ts) if isinstance(ts, int) else datetime.fromisoformat(ts).timestamp()
                if type(status) is not int:
                    status = int(status)
                if host is None:
                    raw = request.get("host") or ""
                    vhost = vhosts.get(raw)
                    if vhost is None:
                        if len(vhosts) >= _CACHE_SIZE:
                            vhosts.clear()
                        vhost = vhosts[raw] = _vhost(raw)
                else:
                    vhost = host
                path = paths.get(uri) or self.path(uri)
                method = request.get("method") or "-"
                duration = entry.get("duration")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                yield None  # not JSON, not an access entry, or fields of the wrong types
                continue
            yield (
                ts,
                vhost,
                method if type(method) is str else "-",
                path,
                status,
                duration if type(duration) is float else float(duration) if type(duration) is int else None,
            )


class _CombinedParser(_Parser):
    """The combined format, with an optional ``$request_time`` (seconds) after the user agent."""

    def __init__(self, host: str) -> None:
        super().__init__(host)
        self._time_text = b""
        self._time = 0.0

    def rows(self, lines: Iterable[bytes]) -> Iterator[_Row | None]:
        host = self.host or "(none)"
        for line in lines:
            match = _COMBINED.match(line)
            if match is None:
                yield None
                continue
            try:
                ts = self._timestamp(match.group(1))
            except (UnicodeDecodeError, ValueError):
                yield None
                continue
            method, _, rest = match.group(2).decode("utf-8", "replace").partition(" ")
            target = rest.rpartition(" HTTP/")[0] or rest
            duration = match.group(4)
            yield (
                ts,
                host,
                method or "-",
                self.path(target) if target.startswith("/") else _OTHER_PATH,
                int(match.group(3)),
                float(duration) if duration is not None else None,
            )

    def _timestamp(self, text: bytes) -> float:
        """``28/Nov/2026:10:00:00 +0000`` as Unix seconds (consecutive lines mostly share it)."""
        if text != self._time_text:
            self._time = datetime.strptime(text.decode("ascii"), "%d/%b/%Y:%H:%M:%S %z").timestamp()
            self._time_text = text
        return self._time


def parse_caddy_line(line: bytes, host: str | None = None) -> AccessRecord | None:
    """One line of Caddy's JSON access log; None when it is not an access entry.

    ``host`` overrides the request's Host as the vhost.
    """
    row = next(_CaddyParser(host).rows([line]))
    return AccessRecord(*row) if row is not None else None


def parse_combined_line(line: bytes, host: str) -> AccessRecord | None:
    """One line of the combined format (an optional ``$request_time`` after the user agent); None if it is not one."""
    row = next(_CombinedParser(host).rows([line]))
    return AccessRecord(*row) if row is not None else None


def _bucket(seconds: float) -> int:
    """The histogram bucket of a duration: the first whose upper bound ``BASE * FACTOR**bucket`` holds it."""
    return math.ceil(math.log(seconds / _HISTOGRAM_BASE) / _LOG_FACTOR - 1e-9) if seconds > _HISTOGRAM_BASE else 0


def _bound(bucket: int) -> float:
    return round(_HISTOGRAM_BASE * _HISTOGRAM_FACTOR**bucket, 6)


@dataclass(slots=True)
class _Stats:
    """One endpoint in one minute."""

    requests: int = 0
    client_errors: int = 0
    server_errors: int = 0
    timed: int = 0
    duration_sum: float = 0.0
    duration_max: float = 0.0
    histogram: dict[int, int] = field(default_factory=dict)

    def merge(self, other: _Stats) -> None:
        self.requests += other.requests
        self.client_errors += other.client_errors
        self.server_errors += other.server_errors
        self.timed += other.timed
        self.duration_sum += other.duration_sum
        self.duration_max = max(self.duration_max, other.duration_max)
        for bucket, count in other.histogram.items():
            self.histogram[bucket] = self.histogram.get(bucket, 0) + count

    def p95(self) -> float | None:
        if not self.timed:
            return None
        rank = math.ceil(self.timed * 0.95)
        seen = 0
        for bucket in sorted(self.histogram):
            seen += self.histogram[bucket]
            if seen >= rank:
                return min(_bound(bucket), self.duration_max)
        return self.duration_max


@dataclass(slots=True)
class _VhostCycle:
    """What one collection read for one vhost."""

    statuses: dict[int, int] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)


@dataclass
class _Source:
    config: AccessLogFileConfig
    tailer: Tailer
    parser: _Parser
    lines: int = 0
    unparsed: int = 0


class AccessLogsCollector:
    """Tails the configured access logs; keeps per-endpoint minutes for :meth:`top_endpoints`."""

    name = "access_logs"
    catalogue: Sequence[MetricSpec] = CATALOGUE

    def __init__(self, config: AccessLogsConfig, *, state_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._sources = [
            _Source(
                file,
                Tailer([file.path], state_dir / f"access_logs-{_digest(file.path)}.json"),
                _CaddyParser(file.host) if file.format == "caddy" else _CombinedParser(file.host or ""),
            )
            for file in config.files
        ]
        self._requests: dict[tuple[str, str], int] = defaultdict(int)
        self._minutes: dict[int, dict[tuple[str, str, str], _Stats]] = {}
        """Minute start → (vhost, method, path) → statistics."""
        self._paths_per_vhost: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()
        self._problems = Problems(self.name, "access logs")

    async def collect(self) -> Collection:
        """Read what the logs gained since the last cycle (in a worker thread: file reads and parsing block)."""
        return await asyncio.to_thread(self._collect)

    def top_endpoints(
        self,
        host: str | None = None,
        by: EndpointRanking = "latency",
        *,
        since: float | None = None,
        limit: int = 10,
    ) -> TopEndpoints:
        """The slowest (by p95, then average) or most failing (5xx, then 4xx, then fewer requests) endpoints.

        ``host`` is a vhost as in the ``vhost`` label (None: every vhost). ``since`` defaults to the start of the
        window (earlier times are clamped to it) and counts whole minutes: the minute it falls in is included.

        Raises:
            QueryError: ``by`` is neither latency nor errors.
            NotFoundError: no request of ``host`` is in the window (the message lists the vhosts that are).
        """
        if by not in ("latency", "errors"):
            raise QueryError(f"invalid ranking {by!r}; valid: latency, errors")
        now = self._clock()
        start = max(since if since is not None else 0.0, now - self.config.window.total_seconds())
        merged: dict[tuple[str, str, str], _Stats] = defaultdict(_Stats)
        hosts: set[str] = set()
        with self._lock:
            for minute, endpoints in self._minutes.items():
                if minute + 60 <= start:
                    continue
                for key, stats in endpoints.items():
                    hosts.add(key[0])
                    if host is None or key[0] == host:
                        merged[key].merge(stats)
        if host is not None and host not in hosts:
            known = ", ".join(sorted(hosts)) or "none yet"
            window = format_duration(self.config.window)
            raise NotFoundError(f"no requests for host {host!r} in the last {window}; hosts: {known}")
        if by == "errors":
            ranked = sorted(
                ((k, s) for k, s in merged.items() if s.server_errors or s.client_errors),
                key=lambda item: (item[1].server_errors, item[1].client_errors, -item[1].requests),
                reverse=True,
            )
        else:
            ranked = sorted(
                ((k, s) for k, s in merged.items() if s.timed),
                key=lambda item: (item[1].p95() or 0.0, item[1].duration_sum / item[1].timed),
                reverse=True,
            )
        return TopEndpoints(
            host=host,
            by=by,
            since=iso(start),
            until=iso(now),
            requests=sum(s.requests for s in merged.values()),
            endpoints=[_endpoint(key, stats) for key, stats in ranked[:limit]],
        )

    # -- internals ------------------------------------------------------------------------------------------

    def _collect(self) -> Collection:
        now = self._clock()
        cycle: dict[str, _VhostCycle] = {}
        problems: list[str] = []
        for source in self._sources:
            for chunk in source.tailer.read():
                self._ingest(source, chunk.data, cycle)
            problems += source.tailer.problems
        self._prune(now)
        samples = self._samples(cycle)
        for source in self._sources:
            try:
                source.tailer.save()
            except OSError:
                logger.exception("cannot save the positions of %s", source.config.path)
        return Collection(samples=samples, events=self._problems.update(problems, now))

    def _ingest(self, source: _Source, data: bytes, cycle: dict[str, _VhostCycle]) -> None:
        lines = data.split(b"\n")
        lines.pop()  # after the last newline
        source.lines += len(lines)
        minutes, paths_per_vhost, max_paths = self._minutes, self._paths_per_vhost, self.config.max_paths
        bucket_of = _bucket
        current_minute = -1
        endpoints: dict[tuple[str, str, str], _Stats] = {}
        with self._lock:
            for row in source.parser.rows(lines):
                if row is None:
                    source.unparsed += 1
                    continue
                ts, vhost, method, path, status, duration = row
                vhost_cycle = cycle.get(vhost)
                if vhost_cycle is None:
                    vhost_cycle = cycle[vhost] = _VhostCycle()
                statuses = vhost_cycle.statuses
                statuses[status] = statuses.get(status, 0) + 1
                if duration is not None:
                    vhost_cycle.durations.append(duration)
                minute = int(ts // 60) * 60
                if minute != current_minute:
                    endpoints = minutes.setdefault(minute, {})
                    current_minute = minute
                key = (vhost, method, path)
                stats = endpoints.get(key)
                if stats is None:
                    count = paths_per_vhost[minute, vhost] = paths_per_vhost.get((minute, vhost), 0) + 1
                    if count > max_paths:
                        key = (vhost, "*", _OTHER_PATH)
                    stats = endpoints.setdefault(key, _Stats())
                # _Stats updated in line: this loop runs once per request
                stats.requests += 1
                if status >= 500:
                    stats.server_errors += 1
                elif status >= 400:
                    stats.client_errors += 1
                if duration is not None:
                    stats.timed += 1
                    stats.duration_sum += duration
                    if duration > stats.duration_max:
                        stats.duration_max = duration
                    bucket = bucket_of(duration)
                    histogram = stats.histogram
                    histogram[bucket] = histogram.get(bucket, 0) + 1

    def _prune(self, now: float) -> None:
        oldest = now - self.config.window.total_seconds() - 60
        with self._lock:
            for minute in [m for m in self._minutes if m < oldest]:
                del self._minutes[minute]
            for key in [k for k in self._paths_per_vhost if k[0] < oldest]:
                del self._paths_per_vhost[key]

    def _samples(self, cycle: dict[str, _VhostCycle]) -> list[Sample]:
        samples: list[Sample] = []
        for vhost, read in sorted(cycle.items()):
            requests = sum(read.statuses.values())
            classes: dict[str, int] = defaultdict(int)
            for status, count in read.statuses.items():
                classes[_STATUS_CLASSES.get(status, "other")] += count
                self._requests[vhost, _STATUS_CLASSES.get(status, "other")] += count
            labels = {"vhost": vhost}
            samples.append(Sample("http_client_error_ratio", round(classes["4xx"] / requests, 4), labels))
            samples.append(Sample("http_server_error_ratio", round(classes["5xx"] / requests, 4), labels))
            durations = sorted(read.durations)
            for quantile in _QUANTILES if durations else ():
                value = durations[max(0, math.ceil(quantile * len(durations)) - 1)]
                labels_q = {"vhost": vhost, "quantile": f"{quantile:g}"}
                samples.append(Sample("http_request_duration_seconds", round(value, 6), labels_q))
        samples += [
            Sample("http_requests_total", float(count), {"vhost": vhost, "status_class": status_class})
            for (vhost, status_class), count in sorted(self._requests.items())
        ]
        for source in self._sources:
            labels = {"log": source.config.path}
            samples.append(Sample("access_log_lines_total", float(source.lines), labels))
            samples.append(Sample("access_log_unparsed_lines_total", float(source.unparsed), labels))
        return samples


def _endpoint(key: tuple[str, str, str], stats: _Stats) -> EndpointStats:
    vhost, method, path = key
    return EndpointStats(
        vhost=vhost,
        method=method,
        path=path,
        requests=stats.requests,
        client_errors=stats.client_errors,
        server_errors=stats.server_errors,
        server_error_ratio=round(stats.server_errors / stats.requests, 4),
        avg_seconds=round(stats.duration_sum / stats.timed, 6) if stats.timed else None,
        p95_seconds=round(p95, 6) if (p95 := stats.p95()) is not None else None,
        max_seconds=round(stats.duration_max, 6) if stats.timed else None,
    )


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
