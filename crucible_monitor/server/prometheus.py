"""``GET /metrics``: the newest value of every series in Prometheus' text exposition format.

Samples carry no timestamp (Prometheus stamps them with the scrape, and would drop samples stamped in its past
once they are older than its head block); a series whose newest point is older than ``stale_after`` is left out,
so that one no longer collected goes stale in Prometheus as it should. ``crucible_agent_info{host,version} 1``
names the agent (Prometheus adds ``instance`` and ``job``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from crucible_monitor.models import MetricKind, MetricSpec
from crucible_monitor.storage.store import LatestPoint

__all__ = ["CONTENT_TYPE_LATEST", "PREFIX", "exposition"]

PREFIX = "crucible_"
"""Namespace of exported names, so they do not collide with other exporters in one Prometheus."""


STALE_AFTER = 600.0
"""Seconds after which a series' newest point is no longer exported."""


class _LatestCollector(Collector):
    def __init__(self, points: list[LatestPoint], catalogue: Mapping[str, MetricSpec], info: Mapping[str, str]) -> None:
        self.points = points
        self.catalogue = catalogue
        self.info = info

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(f"{PREFIX}agent_info", "The agent: its host name and version.", labels=list(self.info))
        info.add_metric(list(self.info.values()), 1.0)
        yield info
        by_metric: dict[str, list[LatestPoint]] = defaultdict(list)
        for point in self.points:
            by_metric[point.metric].append(point)
        for name, points in sorted(by_metric.items()):
            spec = self.catalogue.get(name)
            label_names = sorted({k for p in points for k in p.labels})
            help_text = spec.description if spec else name
            family: GaugeMetricFamily | CounterMetricFamily
            if spec is not None and spec.kind is MetricKind.COUNTER:
                family = CounterMetricFamily(PREFIX + name, help_text, labels=label_names)
            else:
                family = GaugeMetricFamily(PREFIX + name, help_text, labels=label_names)
            for point in points:
                family.add_metric([point.labels.get(k, "") for k in label_names], point.value)
            yield family


def exposition(
    latest: Callable[[], list[LatestPoint]],
    catalogue: Mapping[str, MetricSpec],
    *,
    info: Mapping[str, str] | None = None,
    now: float | None = None,
    stale_after: float = STALE_AFTER,
) -> bytes:
    """The text format for the current newest points (those newer than ``stale_after`` seconds)."""
    oldest = (time.time() if now is None else now) - stale_after
    points = [p for p in latest() if p.ts >= oldest]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_LatestCollector(points, catalogue, info or {}))
    return generate_latest(registry)
