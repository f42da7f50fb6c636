"""The metric catalogue, history queries, metric reports and what a push of metrics stored."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "HistorySeries",
    "MetricHistory",
    "MetricInfo",
    "MetricReport",
    "MetricsReport",
    "PUSH_MEDIA_TYPES",
    "PushResult",
    "SeriesReport",
]


class MetricInfo(BaseModel):
    """One entry of the metric catalogue."""

    name: str
    kind: Literal["gauge", "counter"]
    unit: str
    description: str
    labels: list[str]
    collector: str


class HistorySeries(BaseModel):
    """One series of a history query: ``points`` are ``[unix_seconds, value]`` pairs."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


class MetricHistory(BaseModel):
    """The result of a history query."""

    metric: str
    kind: Literal["gauge", "counter"]
    unit: str
    agg: str
    start: str
    end: str
    step_seconds: float
    tiers: list[str] = Field(description="Storage tiers the points came from (raw, 1m, 1h).")
    series: list[HistorySeries]


class SeriesReport(BaseModel):
    """One series of a metrics report: summary statistics and a bounded number of points."""

    labels: dict[str, str]
    points: list[tuple[str, float]] = Field(description="[ISO 8601 time, value], at most max_points")
    stats: dict[str, float] = Field(description="min, max, avg, p95, last over the range")
    human: dict[str, str] = Field(description="The same statistics as people read them")
    sparkline: str | None = Field(None, description="The points' shape, oldest first, ▁ lowest to █ highest.")


class MetricReport(BaseModel):
    """One metric over a range, summarised."""

    metric: str
    kind: Literal["gauge", "counter"]
    unit: str = Field(description="Unit of the values: a counter's rate is per second.")
    description: str
    agg: str
    start: str
    end: str
    step_seconds: float
    series: list[SeriesReport]
    series_total: int = Field(description="Series that matched, before the report kept the top ones.")
    series_limit: int = Field(description="The top series kept at most (max_series).")
    truncated: bool = Field(description="Fewer series are listed than matched.")


class MetricsReport(BaseModel):
    """The result of get_metrics: one report per metric (several for a group)."""

    reports: list[MetricReport]
    hint: str


PUSH_MEDIA_TYPES = ("text/plain", "application/json")
"""What a push may be: Prometheus text (``text/plain; version=0.0.4``) or JSON."""


class PushResult(BaseModel):
    """What one push stored: every sample, stamped with the time the agent received it."""

    accepted: int = Field(description="Series stored (one sample each).")
    skipped: int = Field(description="Samples left out: NaN or infinite values.")
    metrics: list[str] = Field(description="The metric names of this push (list_metrics shows them, collector push).")
    received_at: str = Field(description="The time every sample was stamped with (ISO 8601).")
    series: int = Field(description="Distinct pushed series now counted against the limit.")
    max_series: int = Field(description="The limit: push.max_series.")
