"""The ``analysis:`` settings: the host model, the live streaming detector and capacity forecasts."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, model_validator

from crucible_monitor.configtypes import PositiveDuration, StrictModel, WebUrl

__all__ = ["AnalysisConfig", "KeySeriesName", "PrometheusSourceConfig"]


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
    sensitivity: dict[KeySeriesName, Annotated[float, Field(gt=0, le=100)]] = Field(
        default_factory=dict,
        description="Per key series (cpu, load, memory, ...): 2 counts half the excess beyond the range, 0.5 twice.",
    )

    @model_validator(mode="after")
    def _source_named(self) -> Self:
        if self.source == "prometheus" and self.prometheus is None:
            raise ValueError("source: prometheus needs analysis.prometheus (url, job, instance)")
        return self
