"""History from Prometheus' query API, in the shape :meth:`MetricStore.query` gives (``analysis.source: prometheus``).

A metric ``m`` is read as Prometheus stores what this agent exports: ``crucible_m`` (or ``crucible_m_total`` for a
counter) of one scrape target, chosen by ``job`` and ``instance``. Buckets are range queries: ``avg``, ``min``,
``max`` and ``last`` become ``*_over_time`` over the step, ``rate`` becomes ``rate()``; each value is stamped with
the start of its bucket, as the local store stamps them. Any host Prometheus scrapes can be read so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import httpx

from crucible_monitor.anomalyconfig import AnalysisConfig
from crucible_monitor.errors import QueryError, StorageError
from crucible_monitor.models import Aggregation
from crucible_monitor.storage.store import History, LatestPoint, SeriesData

__all__ = ["PrometheusHistory", "history_source", "promql"]

PREFIX = "crucible_"
_OVER_TIME = {"avg": "avg_over_time", "min": "min_over_time", "max": "max_over_time", "last": "last_over_time"}
_DROPPED = ("__name__", "job", "instance")
MIN_WINDOW = 30.0
"""The shortest range a bucket reads (a few scrapes: ``rate()`` needs two)."""
MAX_POINTS = 11_000
"""Prometheus refuses more than 11,000 points per series."""


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def promql(metric: str, agg: Aggregation, step: float, selector: Mapping[str, str]) -> str:
    """The PromQL expression of one bucketed series."""
    if agg not in _OVER_TIME and agg != "rate":
        raise QueryError(f"aggregation {agg!r} cannot be read from Prometheus; valid: avg, min, max, last, rate")
    if not metric.replace("_", "").replace(":", "").isalnum():
        raise QueryError(f"invalid metric name {metric!r}")
    names = f"{PREFIX}{metric}" if metric.endswith("_total") else f"{PREFIX}{metric}(_total)?"
    matchers = [f'__name__=~"{names}"', *(f'{k}="{_quote(v)}"' for k, v in sorted(selector.items()))]
    window = f"{max(step, MIN_WINDOW):g}s"
    inner = "{" + ",".join(matchers) + "}" + f"[{window}]"
    return f"rate({inner})" if agg == "rate" else f"{_OVER_TIME[agg]}({inner})"


class PrometheusHistory:
    """Reads one scrape target's series from Prometheus (``job`` and ``instance`` pick it).

    Args:
        url: Prometheus' base URL.
        token: a bearer token, when Prometheus sits behind one.
        job: the scrape job of the agent.
        instance: the target, as Prometheus labels it (``host:port``); None reads every instance of the job.
    """

    def __init__(
        self, url: str, *, job: str, instance: str | None = None, token: str | None = None, timeout: float = 30.0
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        self.selector = {"job": job, **({"instance": instance} if instance else {})}

    def query(
        self,
        metric: str,
        *,
        start: float,
        end: float,
        step: float,
        agg: Aggregation = "avg",
        labels: Mapping[str, str] | None = None,
    ) -> list[SeriesData]:
        """Points of ``metric`` between ``start`` and ``end`` in buckets of ``step`` seconds, as the store gives them.

        Raises:
            QueryError: an aggregation Prometheus cannot give, or too many points.
            StorageError: Prometheus does not answer or refuses the query (its message included).
        """
        if step <= 0 or (end - start) / step > MAX_POINTS:
            raise QueryError(
                f"too many points: {(end - start) / step:.0f} buckets of {step:g} s (at most {MAX_POINTS})"
            )
        expression = promql(metric, agg, step, {**self.selector, **(labels or {})})
        first = math.floor(start / step) * step + step  # evaluation at a bucket's end reads the whole bucket
        params = {"query": expression, "start": f"{first:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        body = self._get("/api/v1/query_range", params, expression)
        out = []
        for series in body["data"]["result"]:
            points = [(float(ts) - step, float(value)) for ts, value in series["values"]]
            kept = [(ts, v) for ts, v in points if ts >= start - step and not math.isnan(v)]
            labels_of = {k: v for k, v in series["metric"].items() if k not in _DROPPED}
            out.append(SeriesData(metric, labels_of, [ts for ts, _ in kept], [v for _, v in kept], ("prometheus",)))
        return out

    def latest(self, metric: str | None = None, labels: Mapping[str, str] | None = None) -> list[LatestPoint]:
        """The newest point of each series of ``metric`` within the last 5 minutes (a metric must be named).

        Raises:
            QueryError: no metric named.
            StorageError: see :meth:`query`.
        """
        if metric is None:
            raise QueryError("the newest points of every metric are not read from Prometheus: name one")
        expression = promql(metric, "last", 300.0, {**self.selector, **(labels or {})})
        body = self._get("/api/v1/query", {"query": expression}, expression)
        return [
            LatestPoint(metric, _labels(s["metric"]), float(s["value"][0]), float(s["value"][1]), None, None)
            for s in body["data"]["result"]
        ]

    def _get(self, path: str, params: dict[str, str], expression: str) -> dict[str, Any]:
        try:
            response = self._client.get(path, params=params)
            body: dict[str, Any] = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise StorageError(f"Prometheus at {self._client.base_url} does not answer: {exc}") from exc
        if body.get("status") != "success":
            raise StorageError(f"Prometheus refused {expression}: {body.get('error', response.text[:200])}")
        return body

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def _labels(metric: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in metric.items() if k not in _DROPPED}


def history_source(config: AnalysisConfig, store: History) -> History:
    """What analysis reads: ``store``, or the Prometheus ``config.source`` names."""
    if config.source != "prometheus" or config.prometheus is None:
        return store
    source = config.prometheus
    token = source.token.get_secret_value() if source.token else None
    return PrometheusHistory(source.url, job=source.job, instance=source.instance, token=token)
