"""The ``analysis:`` settings: the host model, the live streaming detector and capacity forecasts."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal, Self, get_args

from pydantic import Field, SecretStr, model_validator

from crucible_monitor.configtypes import PositiveDuration, StrictModel, WebUrl

__all__ = ["AnalysisConfig", "KeySeriesName", "LiveFamilyName", "PrometheusSourceConfig"]


KeySeriesName = Literal[
    "cpu",
    "load",
    "memory",
    "swap",
    "blocked",
    "disk_read",
    "disk_write",
    "net_rx",
    "net_tx",
    "gpu_util",
    "gpu_memory",
    "gpu_temp",
]
"""The key series of ``analysis/features.py`` (a test keeps the two the same)."""

LiveFamilyName = Literal[
    "service_memory",
    "service_restarts",
    "check_latency",
    "http_5xx",
    "http_p95",
    "http_requests",
    "queue_depth",
    "queue_age",
    "fpm_listen_queue",
    "fpm_active",
    "mysql_connections",
    "mysql_threads",
]
"""The live detector's families of ``analysis/livekeys.py``: one series per vhost, pool, queue... (a test keeps the
two the same)."""
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


class PrometheusSourceConfig(StrictModel):
    """Where analysis reads history when ``analysis.source`` is ``prometheus``: one scrape target of a Prometheus."""

    url: WebUrl = Field(description="Prometheus' base URL, e.g. http://prometheus:9090.")
    token: SecretStr | None = Field(None, description="A bearer token, when Prometheus needs one (or token_file).")
    job: str = Field("crucible", description="The scrape job of the agents.")
    instance: str | None = Field(None, description="The target as Prometheus labels it (host:port); default: any.")


class AnalysisConfig(StrictModel):
    """The anomaly engine: host model refits, scoring, anomalies and capacity forecasts."""

    enabled: bool = True
    source: Literal["local", "prometheus"] = Field(
        "local", description="Where baselines, detectors, forecasts and explanations read history."
    )
    prometheus: PrometheusSourceConfig | None = Field(None, description="The Prometheus of source: prometheus.")
    step: PositiveDuration = Field(timedelta(minutes=1), description="Bucket width the models see.")
    training_window: PositiveDuration = Field(timedelta(days=7), description="History each refit learns from.")
    refit_interval: PositiveDuration = Field(timedelta(hours=6), description="How often models are refitted.")
    score_interval: PositiveDuration = Field(timedelta(minutes=1), description="How often new buckets are scored.")
    min_training_buckets: int = Field(120, ge=30, description="Buckets of history needed before the first fit.")
    n_estimators: int = Field(100, ge=10, le=1000, description="Trees of the host model.")
    contamination: float = Field(0.001, gt=0, lt=0.5, description="Expected share of anomalous training buckets.")
    min_threshold: float = Field(0.65, gt=0.5, lt=1, description="Lowest anomaly threshold (0.5 is ordinary).")
    min_buckets: int = Field(2, ge=1, description="Buckets above the threshold (within anomaly_gap) to open one.")
    anomaly_gap: PositiveDuration = Field(timedelta(minutes=5), description="Quiet time that ends an anomaly.")
    forecast_history: PositiveDuration = Field(timedelta(days=14), description="History a forecast fits.")
    forecast_horizon: PositiveDuration = Field(timedelta(days=30), description="Default forecast horizon.")
    snapshot_retention: PositiveDuration = Field(timedelta(days=7), description="Process snapshots kept.")
    models_kept: int = Field(3, ge=1, description="Model files kept on disk (registry rows stay).")
    streaming: bool = Field(True, description="The streaming detector on every key series, from the first bucket.")
    streaming_threshold: float = Field(
        0.24, gt=0, lt=1, description="Streaming score that counts (NAB: most windows at <= 0.3 false alerts a file)."
    )
    streaming_warmup: int = Field(30, ge=10, le=4000, description="Buckets before a series' first streaming score.")
    live_series: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="More metrics for the streaming detector (custom ones: textfile, command, plugins, pushed), "
        "one series per label set; counters as rates.",
    )
    sensitivity: dict[str, Annotated[float, Field(gt=0, le=100)]] = Field(
        default_factory=dict,
        description="Per key series (cpu, load, memory...), family (http_5xx, queue_depth...), one series of a "
        "family (http_5xx:shop.example.com) or live_series metric: 2 counts half the excess beyond the range, "
        "0.5 twice.",
    )

    @model_validator(mode="after")
    def _sensitivity_named(self) -> Self:
        for name in self.live_series:
            if not _METRIC_NAME.fullmatch(name):
                raise ValueError(f"live_series: {name!r} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
        valid = [*get_args(KeySeriesName), *get_args(LiveFamilyName), *self.live_series]
        unknown = sorted(n for n in self.sensitivity if n.split(":", 1)[0] not in valid)
        if unknown:
            raise ValueError(
                f"sensitivity: unknown series {', '.join(unknown)}; valid: {', '.join(valid)} "
                "(or <family>:<labels> for one series of a family)"
            )
        return self

    @model_validator(mode="after")
    def _source_named(self) -> Self:
        if self.source == "prometheus" and self.prometheus is None:
            raise ValueError("source: prometheus needs analysis.prometheus (url, job, instance)")
        return self
