"""Helpers shared by the tests: samples by their labels, the catalogue contract, the host's CPU time."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from crucible_monitor.collectors.base import Collection, Collector
from crucible_monitor.models import MetricKind, Sample

LabelKey = tuple[tuple[str, str], ...]


def label_key(labels: Mapping[str, str], *, without: Iterable[str] = ()) -> LabelKey:
    """``labels`` as sorted items, less the label names in ``without``: a hashable key to compare series by."""
    dropped = set(without)
    return tuple(sorted((k, v) for k, v in labels.items() if k not in dropped))


def values(samples: Iterable[Sample], metric: str, *, without: Iterable[str] = ()) -> dict[LabelKey, float]:
    """The samples of ``metric`` by their label keys (see ``label_key``)."""
    dropped = tuple(without)
    return {label_key(s.labels, without=dropped): s.value for s in samples if s.metric == metric}


def assert_contract(collector: Collector, collection: Collection, *, complete: bool = False) -> None:
    """The catalogue contract: every sample is declared in ``collector.catalogue`` (names unique, each with a unit),
    carries exactly its declared labels and is a finite number; ratios lie in [0, 1], counters and byte sizes are
    not negative. With ``complete``, every declared metric is emitted too.
    """
    declared = {spec.name: spec for spec in collector.catalogue}
    assert len(declared) == len(collector.catalogue), "catalogue names repeat"
    assert all(spec.unit for spec in declared.values()), "a catalogue entry has no unit"
    for s in collection.samples:
        assert s.metric in declared, s.metric
        spec = declared[s.metric]
        assert set(s.labels) == set(spec.labels), s
        assert math.isfinite(s.value), s
        if s.metric.endswith("_ratio"):
            assert 0.0 <= s.value <= 1.0, s
        elif spec.kind is MetricKind.COUNTER or s.metric.endswith("_bytes"):
            assert s.value >= 0, s
    if complete:
        assert {s.metric for s in collection.samples} == set(declared)


def host_cpu_jiffies() -> int:
    """CPU time the kernel has counted on all CPUs together, in clock ticks: the first eight columns of the ``cpu``
    line of ``/proc/stat``, the window the system collector's CPU ratios divide by (guest and guest_nice, the last
    two columns, are already counted in user and nice).
    """
    with open("/proc/stat", encoding="ascii") as stat:
        return sum(int(v) for v in stat.readline().split()[1:9])


ALWAYS_FIRING_RULES = """
rules:
  - name: MemoryPresent
    kind: threshold
    metric: memory_total_bytes
    op: ">"
    value: 0
    for: 0s
    annotations:
      summary: "memory is {{ value }} bytes"
"""
"""An alerting file whose one rule fires on any host at the first evaluation (memory is always present)."""
