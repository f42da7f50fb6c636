"""``GET /metrics``: the newest value of every series in Prometheus' text exposition format."""

from __future__ import annotations

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


class _LatestCollector(Collector):
    def __init__(self, points: list[LatestPoint], catalogue: Mapping[str, MetricSpec]) -> None:
        self.points = points
        self.catalogue = catalogue

    def collect(self) -> Iterator[Metric]:
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
                family.add_metric([point.labels.get(k, "") for k in label_names], point.value, timestamp=point.ts)
            yield family


def exposition(latest: Callable[[], list[LatestPoint]], catalogue: Mapping[str, MetricSpec]) -> bytes:
    """The text format for the current newest points."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_LatestCollector(latest(), catalogue))
    return generate_latest(registry)
