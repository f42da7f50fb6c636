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
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crucible_monitor.collectors.access_log_endpoints import (
    EndpointKey,
    EndpointTally,
    histogram_bucket,
    rank_endpoints,
)
from crucible_monitor.collectors.access_log_parsers import (
    OTHER_PATH,
    AccessRecord,
    CaddyParser,
    CombinedParser,
    LineParser,
    normalise_path,
    parse_caddy_line,
    parse_combined_line,
)
from crucible_monitor.collectors.base import BlindSpot, Collection, Problems
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


@dataclass(slots=True)
class _VhostCycle:
    """What one collection read for one vhost."""

    statuses: dict[int, int] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)


@dataclass
class _Source:
    config: AccessLogFileConfig
    tailer: Tailer
    parser: LineParser
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
                CaddyParser(file.host) if file.format == "caddy" else CombinedParser(file.host or ""),
            )
            for file in config.files
        ]
        self._requests: dict[tuple[str, str], int] = defaultdict(int)
        self._minutes: dict[int, dict[EndpointKey, EndpointTally]] = {}
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
        merged: dict[EndpointKey, EndpointTally] = defaultdict(EndpointTally)
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
        ranked = rank_endpoints(merged, by, len(merged))
        return TopEndpoints(
            host=host,
            by=by,
            since=iso(start),
            until=iso(now),
            requests=sum(s.requests for s in merged.values()),
            total=len(ranked),
            limit=limit,
            truncated=len(ranked) > limit,
            endpoints=ranked[:limit],
        )

    # -- internals ------------------------------------------------------------------------------------------

    def _collect(self) -> Collection:
        now = self._clock()
        cycle: dict[str, _VhostCycle] = {}
        problems: list[str | BlindSpot] = []
        for index, source in enumerate(self._sources):
            for chunk in source.tailer.read():
                self._ingest(source, chunk.data, cycle)
            key = f"collectors.access_logs.files[{index}].path"
            problems += [BlindSpot(source.config.path, key, problem) for problem in source.tailer.problems]
        self._prune(now)
        samples = self._samples(cycle)
        for source in self._sources:
            try:
                source.tailer.save()
            except OSError:
                logger.exception("cannot save the positions of %s", source.config.path)
        return self._problems.collection(samples, problems, now)

    def _ingest(self, source: _Source, data: bytes, cycle: dict[str, _VhostCycle]) -> None:
        lines = data.split(b"\n")
        lines.pop()  # after the last newline
        source.lines += len(lines)
        minutes, paths_per_vhost, max_paths = self._minutes, self._paths_per_vhost, self.config.max_paths
        bucket_of = histogram_bucket
        current_minute = -1
        endpoints: dict[EndpointKey, EndpointTally] = {}
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
                        key = (vhost, "*", OTHER_PATH)
                    stats = endpoints.setdefault(key, EndpointTally())
                # EndpointTally updated in line: this loop runs once per request
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


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()
