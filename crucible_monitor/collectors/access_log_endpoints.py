"""Per-endpoint request statistics of the access-log collector: tallies with a latency histogram, and their ranking.

An endpoint is a vhost, a method and a normalised path. Latencies are counted in logarithmic buckets (each bound
19 % above the last, from 1 ms), so a p95 over any number of minutes comes from merged tallies, within 19 %.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from crucible_monitor.schemas import EndpointRanking, EndpointStats

__all__ = ["EndpointKey", "EndpointTally", "histogram_bucket", "rank_endpoints"]

EndpointKey = tuple[str, str, str]
"""vhost, method, normalised path."""

_HISTOGRAM_BASE = 0.001  # seconds: the upper bound of bucket 0
_HISTOGRAM_FACTOR = 2**0.25  # each bucket's bound is 19 % above the last
_LOG_FACTOR = math.log(_HISTOGRAM_FACTOR)


def histogram_bucket(seconds: float) -> int:
    """The histogram bucket of a duration: the first whose upper bound ``BASE * FACTOR**bucket`` holds it."""
    return math.ceil(math.log(seconds / _HISTOGRAM_BASE) / _LOG_FACTOR - 1e-9) if seconds > _HISTOGRAM_BASE else 0


def _bound(bucket: int) -> float:
    return round(_HISTOGRAM_BASE * _HISTOGRAM_FACTOR**bucket, 6)


@dataclass(slots=True)
class EndpointTally:
    """One endpoint's requests, errors and latency histogram, in one minute or merged over several."""

    requests: int = 0
    client_errors: int = 0
    server_errors: int = 0
    timed: int = 0
    duration_sum: float = 0.0
    duration_max: float = 0.0
    histogram: dict[int, int] = field(default_factory=dict)

    def merge(self, other: EndpointTally) -> None:
        """Add ``other``'s counts to these."""
        self.requests += other.requests
        self.client_errors += other.client_errors
        self.server_errors += other.server_errors
        self.timed += other.timed
        self.duration_sum += other.duration_sum
        self.duration_max = max(self.duration_max, other.duration_max)
        for bucket, count in other.histogram.items():
            self.histogram[bucket] = self.histogram.get(bucket, 0) + count

    def p95(self) -> float | None:
        """The 95th percentile latency, as its bucket's bound (at most the slowest seen); None without timings."""
        if not self.timed:
            return None
        rank = math.ceil(self.timed * 0.95)
        seen = 0
        for bucket in sorted(self.histogram):
            seen += self.histogram[bucket]
            if seen >= rank:
                return min(_bound(bucket), self.duration_max)
        return self.duration_max


def rank_endpoints(
    tallies: Mapping[EndpointKey, EndpointTally], by: EndpointRanking, limit: int
) -> list[EndpointStats]:
    """The ``limit`` slowest (by p95, then average) or most failing (5xx, then 4xx, then fewer requests) endpoints."""
    if by == "errors":
        ranked = sorted(
            ((k, s) for k, s in tallies.items() if s.server_errors or s.client_errors),
            key=lambda item: (item[1].server_errors, item[1].client_errors, -item[1].requests),
            reverse=True,
        )
    else:
        ranked = sorted(
            ((k, s) for k, s in tallies.items() if s.timed),
            key=lambda item: (item[1].p95() or 0.0, item[1].duration_sum / item[1].timed),
            reverse=True,
        )
    return [_endpoint(key, stats) for key, stats in ranked[:limit]]


def _endpoint(key: EndpointKey, stats: EndpointTally) -> EndpointStats:
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
