"""Alert rules: each kind of condition the engine evaluates (threshold, service, HTTP check, certificate, anomaly,
forecast, composite), as strict, frozen models; :data:`Rule` is their tagged union (by ``kind``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, model_validator

from crucible_monitor.alerts.templating import check_template
from crucible_monitor.configtypes import Duration, PositiveDuration, StrictModel, matching
from crucible_monitor.models import Severity

__all__ = [
    "Annotations",
    "AnomalyRule",
    "CertificateRule",
    "CompositeRule",
    "ForecastRule",
    "HttpCheckRule",
    "Operator",
    "Rule",
    "RuleName",
    "ServiceRule",
    "ThresholdRule",
]

Operator = Literal[">", ">=", "<", "<=", "==", "!="]
RuleName = Annotated[
    str,
    matching(r"[A-Za-z_][A-Za-z0-9_]*", "invalid rule name {text!r}: use letters, digits and _ (e.g. HighCpuUsage)"),
]
Template = Annotated[str, BeforeValidator(lambda v: check_template(str(v)))]


class Annotations(StrictModel):
    """Human text attached to an alert; templates (see :mod:`crucible_monitor.alerts.templating`)."""

    summary: Template | None = None
    description: Template | None = None
    runbook_url: Template | None = None


class _RuleBase(StrictModel):
    name: RuleName = Field(description="The alert name (label alertname); unique.")
    severity: Severity = Severity.WARNING
    labels: dict[str, str] = Field(default_factory=dict, description="Added to every alert of the rule.")
    annotations: Annotations = Annotations()
    for_: Duration = Field(
        timedelta(0), alias="for", description="How long the condition must hold before the alert fires."
    )
    keep_firing_for: Duration = Field(timedelta(0), description="How long a firing alert stays after it clears.")
    enabled: bool = True


class ThresholdRule(_RuleBase):
    """A metric compared with a value: each matching series is one alert."""

    kind: Literal["threshold"]
    metric: str
    match: dict[str, str] = Field(default_factory=dict, description="Only series with these labels (exact).")
    op: Operator = ">"
    value: float
    clear: float | None = Field(
        None, description="Hysteresis: a firing alert clears only past this value (e.g. fire > 90, clear < 85)."
    )
    function: Literal["value", "rate"] = Field("value", description="rate: per-second increase of a counter.")
    window: PositiveDuration | None = Field(None, description="Compare an aggregate over this window instead.")
    agg: Literal["avg", "min", "max", "p95"] = Field("avg", description="The aggregate over window.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.clear is not None:
            if self.op in ("==", "!="):
                raise ValueError(f"clear (hysteresis) needs op >, >=, < or <=, not {self.op}")
            if (self.op in (">", ">=") and self.clear > self.value) or (
                self.op in ("<", "<=") and self.clear < self.value
            ):
                raise ValueError(f"clear {self.clear} must lie on the non-firing side of {self.op} {self.value}")
        if self.function == "rate" and self.window is not None:
            raise ValueError("function: rate compares the latest rate; it cannot be combined with window")
        return self


class ServiceRule(_RuleBase):
    """A watched service is down, or restarted ``restarts`` times within ``within``."""

    kind: Literal["service"]
    services: list[str] = Field(["*"], description="Service names (globs).")
    condition: Literal["down", "restarts"] = "down"
    restarts: int = Field(3, ge=1)
    within: PositiveDuration = timedelta(minutes=15)


class HttpCheckRule(_RuleBase):
    """An HTTP check failing ``failures`` times in a row, or slower than ``slower_than``."""

    kind: Literal["http_check"]
    checks: list[str] = Field(["*"], description="Check names (globs).")
    condition: Literal["failing", "slow"] = "failing"
    failures: int = Field(3, ge=1)
    slower_than: PositiveDuration | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.condition == "slow" and self.slower_than is None:
            raise ValueError("condition slow needs slower_than (e.g. 2s)")
        return self


class CertificateRule(_RuleBase):
    """The TLS certificate of an HTTPS check expires within ``days``."""

    kind: Literal["certificate"]
    checks: list[str] = Field(["*"], description="Check names (globs).")
    days: float = Field(gt=0)


class AnomalyRule(_RuleBase):
    """The anomaly engine's newest score reaches ``score``, or its anomaly rate over ``window`` reaches ``rate``."""

    kind: Literal["anomaly"]
    match: dict[str, str] = Field(default_factory=dict, description="Only scores with these labels.")
    score: float | None = Field(None, ge=0, le=1, description="Score in [0, 1]; higher is more anomalous.")
    rate: float | None = Field(None, gt=0, le=1, description="Share of anomalous points in window.")
    window: PositiveDuration = timedelta(minutes=15)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.score is None) == (self.rate is None):
            raise ValueError("give exactly one of score or rate")
        return self


class ForecastRule(_RuleBase):
    """A forecast says a resource is full within ``within`` (the alert's value: hours left)."""

    kind: Literal["forecast"]
    metric: str = Field(description="The forecast series, e.g. filesystem_used_ratio.")
    match: dict[str, str] = Field(default_factory=dict)
    within: PositiveDuration
    min_quality: float = Field(0.0, ge=0, le=1, description="Ignore forecasts whose fit quality is below this.")


class CompositeRule(_RuleBase):
    """All (or any) of other rules' conditions hold at once, per value of the ``on`` labels."""

    kind: Literal["composite"]
    mode: Literal["all", "any"] = "all"
    of: list[RuleName] = Field(min_length=2, description="Names of non-composite rules.")
    on: list[str] = Field(default_factory=list, description="Labels that must agree; empty: one alert overall.")


Rule = Annotated[
    ThresholdRule | ServiceRule | HttpCheckRule | CertificateRule | AnomalyRule | ForecastRule | CompositeRule,
    Field(discriminator="kind"),
]
