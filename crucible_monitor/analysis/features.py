"""The key series the host model watches, read from the metric store into aligned columns.

Gauges are bucket averages; counters are per-second rates (the store's ``rate`` aggregation: no rate across a reset
or before the first point). Series of one key (all disks, all interfaces) are summed. Buckets with no data are NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from crucible_monitor.models import Aggregation
from crucible_monitor.storage.store import History, SeriesData

__all__ = ["KEY_SERIES", "KeySeries", "add_series", "read_columns"]

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class KeySeries:
    """One column of the host model: a metric, a label filter, and how buckets are made."""

    name: str
    metric: str
    labels: Mapping[str, str] = field(default_factory=dict)
    agg: Aggregation = "avg"
    what: str = ""
    min_mad: float = 0.0
    """The smallest spread that counts, in the series' unit (see SeasonalBaseline's min_mad)."""
    unit: str = ""
    """The metric's unit as its collector's catalogue declares it (``ratio``, ``bytes``)."""

    @property
    def value_unit(self) -> str:
        """The unit of the bucket values: per second for rates (``bytes/s``)."""
        return f"{self.unit}/s" if self.agg == "rate" else self.unit

    @property
    def display(self) -> str:
        """The series as people write it: ``cpu_usage_ratio{cpu="total"}``, ``disk_read_bytes_total`` (rate)."""
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        text = f"{self.metric}{{{labels}}}" if labels else self.metric
        return f"rate({text})" if self.agg == "rate" else text


KEY_SERIES: tuple[KeySeries, ...] = (
    KeySeries("cpu", "cpu_usage_ratio", {"cpu": "total"}, what="CPU usage", min_mad=0.02, unit="ratio"),
    KeySeries("load", "load1", what="the 1-minute load average", min_mad=0.1, unit="threads"),
    KeySeries("memory", "memory_used_ratio", what="memory use", min_mad=0.005, unit="ratio"),
    KeySeries("swap", "swap_used_ratio", what="swap use", min_mad=0.005, unit="ratio"),
    KeySeries("blocked", "processes_blocked", what="processes blocked on I/O", min_mad=1.0, unit="processes"),
    KeySeries(
        "disk_read",
        "disk_read_bytes_total",
        agg="rate",
        what="disk reads (bytes/s, all disks)",
        min_mad=65536,
        unit="bytes",
    ),
    KeySeries(
        "disk_write",
        "disk_written_bytes_total",
        agg="rate",
        what="disk writes (bytes/s, all disks)",
        min_mad=65536,
        unit="bytes",
    ),
    KeySeries(
        "net_rx",
        "network_receive_bytes_total",
        agg="rate",
        what="network received (bytes/s)",
        min_mad=16384,
        unit="bytes",
    ),
    KeySeries(
        "net_tx", "network_transmit_bytes_total", agg="rate", what="network sent (bytes/s)", min_mad=16384, unit="bytes"
    ),
    # Hosts with NVIDIA GPUs (the gpu collector); summed over the GPUs, absent (no column) without one.
    KeySeries("gpu_util", "gpu_utilization_ratio", what="GPU utilisation", min_mad=0.02, unit="ratio"),
    KeySeries("gpu_memory", "gpu_memory_used_ratio", what="GPU memory use", min_mad=0.005, unit="ratio"),
    KeySeries("gpu_temp", "gpu_temperature_celsius", what="GPU temperature", min_mad=1.0, unit="celsius"),
)
"""What the host model sees, in column order."""


def read_columns(
    store: History, keys: Sequence[KeySeries], *, start: float, end: float, step: float
) -> tuple[Floats, dict[str, Floats]]:
    """Bucket starts in ``[start, end)`` and, per key with any data, its values on them (NaN where missing)."""
    first = np.floor(start / step) * step
    stamps = np.arange(first, end, step, dtype=np.float64)
    columns: dict[str, Floats] = {}
    for key in keys:
        series = store.query(key.metric, start=first, end=end, step=step, agg=key.agg, labels=key.labels or None)
        if not series:
            continue
        total = np.zeros(len(stamps))
        seen = np.zeros(len(stamps), dtype=bool)
        for s in series:
            add_series(total, seen, s, first=first, step=step)
        if seen.any():
            columns[key.name] = np.where(seen, total, np.nan)
    return stamps, columns


def add_series(total: Floats, seen: npt.NDArray[np.bool_], series: SeriesData, *, first: float, step: float) -> None:
    """Add ``series``' finite values into the buckets of ``total`` (starting at ``first``), marking them ``seen``."""
    index = np.round((np.asarray(series.timestamps) - first) / step).astype(np.int64)
    inside = (index >= 0) & (index < len(total))
    values = np.asarray(series.values, dtype=np.float64)[inside]
    finite = np.isfinite(values)
    np.add.at(total, index[inside][finite], values[finite])
    seen[index[inside][finite]] = True
