"""The live detector's series beyond the host's: one per label set of services, checks, applications and custom metrics.

A :class:`Family` names a metric and the labels that tell its series apart (``vhost``, ``pool``, ``queue``...);
each label set the store holds becomes a :class:`~.features.KeySeries` named ``<family>:<label values>``
(``http_5xx:shop.example.com``), read in one query per family (:func:`read_family_columns`). Families are bounded:
at most :data:`PER_FAMILY` series each and :data:`MAX_SERIES` in all (about 20 KiB of detector state per series);
label sets beyond that are left out, and their number is kept in :attr:`KeyRegistry.left_out`.

Series seen once are remembered in ``state.db`` (:class:`KeyRegistry`), so an anomaly of a vhost that has gone
quiet can still be listed and explained after a restart.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt

from crucible_monitor.analysis.features import KeySeries, add_series
from crucible_monitor.models import Aggregation
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import History

__all__ = ["FAMILIES", "MAX_SERIES", "PER_FAMILY", "Family", "KeyRegistry", "custom_families", "read_family_columns"]

logger = logging.getLogger(__name__)

PER_FAMILY = 50
"""Series one family may have (vhosts, pools, queues...); more label sets are left out."""
MAX_SERIES = 400
"""Series all families together may have."""
_STATE_PREFIX = "live_key:"

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Family:
    """A metric whose series the live detector watches one by one."""

    name: str
    metric: str
    split: tuple[str, ...]
    """The labels that name a series; other labels are summed over."""
    fixed: Mapping[str, str] = field(default_factory=dict)
    """Labels a series must have (``quantile="0.95"``)."""
    agg: Aggregation = "avg"
    what: str = ""
    min_mad: float = 0.0
    unit: str = ""

    def named(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that name ``labels``' series (``split`` ``("*",)``: all of them but the fixed ones)."""
        if self.split == ("*",):
            return {k: v for k, v in sorted(labels.items()) if k not in self.fixed}
        return {k: labels.get(k, "") for k in self.split}

    def key(self, named: Mapping[str, str]) -> KeySeries:
        """The key series of one label set, given as :meth:`named` returns it."""
        suffix = ",".join(named.values())
        described = ", ".join(f"{k} {v}" for k, v in named.items() if v)
        return KeySeries(
            f"{self.name}:{suffix}" if suffix else self.name,
            self.metric,
            {**{k: v for k, v in named.items() if v}, **self.fixed},
            agg=self.agg,
            what=f"{self.what} ({described})" if described else self.what,
            min_mad=self.min_mad,
            unit=self.unit,
        )


FAMILIES: tuple[Family, ...] = (
    Family(
        "service_memory",
        "service_memory_bytes",
        ("service",),
        what="the service's memory",
        min_mad=4 << 20,
        unit="bytes",
    ),
    Family(
        "service_restarts",
        "service_restarts_total",
        ("service",),
        agg="rate",
        what="the service's restarts",
        min_mad=0.001,
        unit="restarts",
    ),
    Family(
        "check_latency",
        "http_check_duration_seconds",
        ("check",),
        what="the check's response time",
        min_mad=0.02,
        unit="seconds",
    ),
    Family(
        "http_5xx", "http_server_error_ratio", ("vhost",), what="the 5xx share of requests", min_mad=0.005, unit="ratio"
    ),
    Family(
        "http_p95",
        "http_request_duration_seconds",
        ("vhost",),
        {"quantile": "0.95"},
        what="the p95 latency",
        min_mad=0.01,
        unit="seconds",
    ),
    Family(
        "http_requests",
        "http_requests_total",
        ("vhost",),
        agg="rate",
        what="requests per second",
        min_mad=0.5,
        unit="requests",
    ),
    Family(
        "queue_depth",
        "laravel_queue_jobs",
        ("app", "queue"),
        {"state": "ready"},
        what="jobs waiting",
        min_mad=1.0,
        unit="jobs",
    ),
    Family(
        "queue_age",
        "laravel_queue_oldest_job_age_seconds",
        ("app", "queue"),
        what="the oldest job's age",
        min_mad=5.0,
        unit="seconds",
    ),
    Family(
        "fpm_listen_queue",
        "php_fpm_listen_queue",
        ("pool",),
        what="requests waiting for a PHP-FPM worker",
        min_mad=1.0,
        unit="connections",
    ),
    Family(
        "fpm_active",
        "php_fpm_processes",
        ("pool",),
        {"state": "active"},
        what="busy PHP-FPM workers",
        min_mad=1.0,
        unit="processes",
    ),
    Family("mysql_connections", "mysql_connections", (), what="MySQL connections", min_mad=1.0, unit="connections"),
    Family("mysql_threads", "mysql_threads_running", (), what="MySQL threads running", min_mad=1.0, unit="threads"),
)
"""The built-in families, in the order they are read (the first ones keep their series when the cap is reached)."""


def custom_families(metrics: Sequence[str]) -> list[Family]:
    """A family per metric of ``analysis.live_series`` (custom ones: textfile, command, plugins, pushed): every label
    set is a series; a ``*_total`` metric (a counter, by the Prometheus convention) is read as a per-second rate."""
    return [
        Family(
            m,
            m,
            ("*",),
            agg="rate" if m.endswith("_total") else "avg",
            what=m + (" per second" if m.endswith("_total") else ""),
        )
        for m in metrics
    ]


class KeyRegistry(Mapping[str, KeySeries]):
    """Every key series by name: the host's, and each family series seen (kept in ``state.db``)."""

    def __init__(self, state: StateDB, keys: Sequence[KeySeries]) -> None:
        self.state = state
        self._keys = {k.name: k for k in keys}
        self.left_out: dict[str, int] = {}
        """Label sets per family left out by the caps, at the last read."""

    def __getitem__(self, name: str) -> KeySeries:
        key = self._keys.get(name)
        if key is not None:
            return key
        rows = self.state.execute("SELECT value FROM analysis_state WHERE key = ?", (_STATE_PREFIX + name,))
        if not rows:
            raise KeyError(name)
        fields = json.loads(rows[0]["value"])
        key = self._keys[name] = KeySeries(**fields)
        return key

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def remember(self, key: KeySeries) -> None:
        """Add a family series (stored once, so it can be read back after a restart)."""
        if key.name in self._keys:
            return
        self._keys[key.name] = key
        fields = {**asdict(key), "labels": dict(key.labels)}
        self.state.execute(
            "INSERT INTO analysis_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (_STATE_PREFIX + key.name, json.dumps(fields)),
        )


def read_family_columns(
    store: History, families: Sequence[Family], registry: KeyRegistry, *, start: float, end: float, step: float
) -> tuple[Floats, list[tuple[KeySeries, Floats]]]:
    """Bucket starts in ``[start, end)`` and each family series with data on them (NaN where missing), within the
    caps; the series are remembered in ``registry``."""
    first = np.floor(start / step) * step
    stamps = np.arange(first, end, step, dtype=np.float64)
    out: list[tuple[KeySeries, Floats]] = []
    left_out: dict[str, int] = {}
    for family in families:
        series = store.query(
            family.metric, start=first, end=end, step=step, agg=family.agg, labels=dict(family.fixed) or None
        )
        grouped: dict[tuple[tuple[str, str], ...], tuple[Floats, npt.NDArray[np.bool_]]] = {}
        for s in series:
            name = tuple(family.named(s.labels).items())
            if name not in grouped:
                if len(grouped) >= PER_FAMILY or len(out) + len(grouped) >= MAX_SERIES:
                    left_out[family.name] = left_out.get(family.name, 0) + 1
                    continue
                grouped[name] = (np.zeros(len(stamps)), np.zeros(len(stamps), dtype=bool))
            total, seen = grouped[name]
            add_series(total, seen, s, first=first, step=step)
        for name, (total, seen) in grouped.items():
            if seen.any():
                key = family.key(dict(name))
                registry.remember(key)
                out.append((key, np.where(seen, total, np.nan)))
    if left_out and left_out != registry.left_out:
        logger.warning(
            "live detector: series left out by its caps (%d a family, %d in all): %s",
            PER_FAMILY,
            MAX_SERIES,
            ", ".join(f"{k} {v}" for k, v in left_out.items()),
        )
    registry.left_out = left_out
    return stamps, out
