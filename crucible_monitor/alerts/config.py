"""Alerting configuration: rules, receivers, routes, inhibition, escalation, maintenance windows, flap detection.

It is read from its own YAML file (``configs/alerts.yaml``, see :func:`load_alerting`) and combined with the main
config's shorthand (``alerts.cpu_threshold``...) and notification settings by :func:`effective_alerting`: each
shorthand threshold becomes a rule and each enabled ``notifications`` entry a receiver; a rule or receiver of the
same name in the alerting file wins. All models are strict and frozen like the rest of the config.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, SecretStr, ValidationError, model_validator

from crucible_monitor.alerts.matchers import MatcherText, parse_matcher
from crucible_monitor.alerts.templating import check_template
from crucible_monitor.config import AlertsConfig, NotificationsConfig, dotted_key, read_yaml
from crucible_monitor.configtypes import Duration, PositiveDuration, StrictModel, WebUrl
from crucible_monitor.errors import ConfigError
from crucible_monitor.models import Severity
from crucible_monitor.schemas.alerts import Recurrence

__all__ = [
    "AlertingConfig",
    "AlertmanagerReceiver",
    "AnomalyRule",
    "Annotations",
    "CertificateRule",
    "CompositeRule",
    "DeliveryConfig",
    "EmailReceiver",
    "Escalation",
    "FlapDetection",
    "ForecastRule",
    "HttpCheckRule",
    "InhibitRule",
    "MaintenanceWindow",
    "Receiver",
    "Recurrence",
    "ResendReceiver",
    "RootRoute",
    "Route",
    "Rule",
    "ServiceRule",
    "SlackReceiver",
    "ThresholdRule",
    "WebhookReceiver",
    "effective_alerting",
    "load_alerting",
    "parse_alerting",
    "shorthand_rules",
]

Operator = Literal[">", ">=", "<", "<=", "==", "!="]


def _check_rule_name(value: object) -> str:
    text = str(value)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise ValueError(f"invalid rule name {text!r}: use letters, digits and _ (e.g. HighCpuUsage)")
    return text


RuleName = Annotated[str, BeforeValidator(_check_rule_name)]
Template = Annotated[str, BeforeValidator(lambda v: check_template(str(v)))]
BaseUrl = Annotated[WebUrl, AfterValidator(lambda v: v.rstrip("/"))]  # a base that API paths are appended to


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

# -- receivers -------------------------------------------------------------------------------------------------


class _ReceiverBase(StrictModel):
    timeout: PositiveDuration = Field(timedelta(seconds=10), description="Per delivery attempt.")


class EmailReceiver(_ReceiverBase):
    """SMTP email with an HTML and a text part."""

    type: Literal["email"]
    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_addr: str = "crucible-monitor@localhost"
    to: list[str] = Field(min_length=1)
    ca_file: Path | None = Field(None, description="CA bundle to verify the server (default: the system's).")


class WebhookReceiver(_ReceiverBase):
    """JSON POST; with a secret, signed in ``X-Crucible-Signature`` (see notifiers)."""

    type: Literal["webhook"]
    url: WebUrl
    secret: SecretStr | None = None


class SlackReceiver(_ReceiverBase):
    """Slack incoming webhook (Block Kit message)."""

    type: Literal["slack"]
    webhook_url: SecretStr


class ResendReceiver(_ReceiverBase):
    """Email through the Resend API."""

    type: Literal["resend"]
    api_key: SecretStr
    from_addr: str
    to: list[str] = Field(min_length=1)
    base_url: BaseUrl = "https://api.resend.com"


class AlertmanagerReceiver(_ReceiverBase):
    """Forward alerts to an Alertmanager (v2 API) for fleets."""

    type: Literal["alertmanager"]
    url: BaseUrl = Field(description="Base URL, e.g. http://alertmanager:9093.")
    ttl: PositiveDuration = Field(
        timedelta(minutes=10),
        description="endsAt of firing alerts is now + ttl; the route's repeat_interval must be shorter.",
    )
    bearer_token: SecretStr | None = None


Receiver = Annotated[
    EmailReceiver | WebhookReceiver | SlackReceiver | ResendReceiver | AlertmanagerReceiver,
    Field(discriminator="type"),
]

# -- routing ---------------------------------------------------------------------------------------------------


class RootRoute(StrictModel):
    """Where alerts go when no route matches, and the timers routes inherit (Alertmanager's meaning)."""

    receivers: list[str] = Field(default_factory=list, description="Empty: every configured receiver.")
    group_by: list[str] = Field(["alertname"], description='Labels that group alerts; ["..."]: every label.')
    group_wait: Duration = Field(timedelta(seconds=30), description="Wait before the first notification of a group.")
    group_interval: PositiveDuration = Field(timedelta(minutes=5), description="Wait between updates of a group.")
    repeat_interval: PositiveDuration = Field(timedelta(hours=4), description="Resend a group that did not change.")


class Route(StrictModel):
    """Alerts matching ``matchers`` go to ``receivers``; unset timers come from the root route."""

    name: str | None = None
    matchers: list[MatcherText] = Field(default_factory=list)
    receivers: list[str] = Field(min_length=1)
    group_by: list[str] | None = None
    group_wait: Duration | None = None
    group_interval: PositiveDuration | None = None
    repeat_interval: PositiveDuration | None = None
    continue_: bool = Field(False, alias="continue", description="Also try the routes after this one.")


class InhibitRule(StrictModel):
    """While an alert matching ``source`` fires, alerts matching ``target`` with equal ``equal`` labels are muted."""

    source: list[MatcherText] = Field(min_length=1)
    target: list[MatcherText] = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)


class Escalation(StrictModel):
    """A firing alert matching ``matchers`` and unacknowledged after ``after`` is also sent to ``receivers``."""

    matchers: list[MatcherText] = Field(default_factory=lambda: [parse_matcher("severity=critical")])
    after: PositiveDuration = timedelta(minutes=30)
    receivers: list[str] = Field(min_length=1)


class MaintenanceWindow(StrictModel):
    """A recurring silence defined in the config file."""

    name: str
    matchers: list[MatcherText] = Field(min_length=1)
    schedule: Recurrence
    reason: str = "maintenance window"


class FlapDetection(StrictModel):
    """An alert that fires and resolves too often is flapping: its notifications wait until it settles.

    Hysteresis: flapping starts at ``start_at`` transitions within ``window`` and ends below ``stop_below``.
    """

    enabled: bool = True
    window: PositiveDuration = timedelta(hours=1)
    start_at: int = Field(6, ge=2)
    stop_below: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.stop_below > self.start_at:
            raise ValueError("stop_below must not exceed start_at")
        return self


class DeliveryConfig(StrictModel):
    """Outbox retries: exponential backoff for 5xx and timeouts, Retry-After for 429; other 4xx are not retried."""

    initial_backoff: PositiveDuration = timedelta(seconds=10)
    max_backoff: PositiveDuration = timedelta(minutes=30)
    give_up_after: PositiveDuration = Field(timedelta(days=1), description="A notification older than this fails.")


class AlertingConfig(StrictModel):
    """The content of the alerting file."""

    evaluation_interval: PositiveDuration | None = Field(None, description="Default: agent.collect_interval.")
    stale_after: PositiveDuration = Field(timedelta(minutes=5), description="Samples older than this count as absent.")
    rules: list[Rule] = Field(default_factory=list)
    receivers: dict[str, Receiver] = Field(default_factory=dict)
    route: RootRoute = RootRoute()
    routes: list[Route] = Field(default_factory=list)
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    escalations: list[Escalation] = Field(default_factory=list)
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)
    flapping: FlapDetection = FlapDetection()
    delivery: DeliveryConfig = DeliveryConfig()

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        names = [r.name for r in self.rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule names must be unique; repeated: {', '.join(repeated)}")
        windows = [w.name for w in self.maintenance_windows]
        if len(set(windows)) != len(windows):
            raise ValueError("maintenance window names must be unique")
        return self

    def check_references(self) -> None:
        """Check what names other things: composite rules' rules, routes' and escalations' receivers.

        Raises:
            ConfigError: an unknown name, or an Alertmanager route whose repeat_interval is not below its ttl.
        """
        problems: list[str] = []
        plain = {r.name for r in self.rules if not isinstance(r, CompositeRule)}
        for rule in self.rules:
            if isinstance(rule, CompositeRule):
                problems.extend(
                    f"composite rule {rule.name} refers to {name!r}, which is not a non-composite rule; "
                    f"valid: {', '.join(sorted(plain)) or '(none)'}"
                    for name in rule.of
                    if name not in plain
                )
        uses: list[tuple[str, list[str], timedelta | None]] = [
            ("route", self.route.receivers, self.route.repeat_interval)
        ]
        for i, route in enumerate(self.routes):
            uses.append((f"routes[{i}]", route.receivers, route.repeat_interval or self.route.repeat_interval))
        uses.extend((f"escalations[{i}]", e.receivers, None) for i, e in enumerate(self.escalations))
        valid = ", ".join(sorted(self.receivers)) or "(none)"
        for where, names, repeat in uses:
            for name in names:
                receiver = self.receivers.get(name)
                if receiver is None:
                    problems.append(f"{where}: unknown receiver {name!r}; valid: {valid}")
                elif isinstance(receiver, AlertmanagerReceiver) and repeat is not None and repeat >= receiver.ttl:
                    problems.append(
                        f"{where}: receiver {name!r} is an Alertmanager with ttl {receiver.ttl}; the route's "
                        "repeat_interval must be shorter, or Alertmanager expires the alerts between sends"
                    )
        if problems:
            raise ConfigError("\n".join(f"alerting: {p}" for p in problems))


# -- the seed shorthand and notification settings ----------------------------------------------------------------


def shorthand_rules(alerts: AlertsConfig) -> list[Rule]:
    """The rules the main config's ``alerts`` shorthand stands for (a threshold set to null gives none)."""
    rules: list[Rule] = []

    def threshold(name: str, metric: str, percent: float, resource: str, summary: str, **extra: Any) -> None:
        rules.append(
            ThresholdRule.model_validate(
                {
                    "kind": "threshold",
                    "name": name,
                    "metric": metric,
                    "value": percent / 100,
                    "clear": max(0.0, percent / 100 - 0.05),
                    "for": "5m",
                    "labels": {"resource": resource},
                    "annotations": {"summary": summary},
                    **extra,
                }
            )
        )

    if alerts.cpu_threshold is not None:
        threshold(
            "HighCpuUsage",
            "cpu_usage_ratio",
            alerts.cpu_threshold,
            "cpu",
            "CPU busy {{ value:.0% }} on {{ host }} (threshold {{ threshold:.0% }})",
            match={"cpu": "total"},
        )
    if alerts.memory_threshold is not None:
        threshold(
            "HighMemoryUsage",
            "memory_used_ratio",
            alerts.memory_threshold,
            "memory",
            "Memory {{ value:.0% }} used on {{ host }} (threshold {{ threshold:.0% }})",
        )
    if alerts.disk_threshold is not None:
        threshold(
            "DiskSpaceLow",
            "filesystem_used_ratio",
            alerts.disk_threshold,
            "disk",
            "{{ labels.mountpoint }} is {{ value:.0% }} full on {{ host }} (threshold {{ threshold:.0% }})",
        )
    if alerts.service_down:
        rules.append(
            ServiceRule.model_validate(
                {
                    "kind": "service",
                    "name": "ServiceDown",
                    "severity": "critical",
                    "for": "1m",
                    "annotations": {"summary": "{{ labels.service }} is down on {{ host }}"},
                }
            )
        )
    if alerts.response_time_threshold is not None:
        rules.append(
            HttpCheckRule.model_validate(
                {
                    "kind": "http_check",
                    "name": "SlowHttpCheck",
                    "condition": "slow",
                    "slower_than": alerts.response_time_threshold,
                    "for": "3m",
                    "annotations": {
                        "summary": "HTTP check {{ labels.check }} took {{ value:.2f }} s (limit {{ threshold }} s)"
                    },
                }
            )
        )
    return rules


def _seed_receivers(notifications: NotificationsConfig) -> dict[str, Receiver]:
    receivers: dict[str, Receiver] = {}
    email = notifications.email
    if email.enabled and email.to:
        receivers["email"] = EmailReceiver(
            type="email",
            host=email.smtp_host,
            port=email.smtp_port,
            security=email.security,
            username=email.username,
            password=email.password,
            from_addr=email.from_addr,
            to=email.to,
        )
    webhook = notifications.webhook
    if webhook.enabled and webhook.url:
        receivers["webhook"] = WebhookReceiver(type="webhook", url=webhook.url, secret=webhook.secret)
    slack = notifications.slack
    if slack.enabled and slack.webhook_url is not None:
        receivers["slack"] = SlackReceiver(type="slack", webhook_url=slack.webhook_url)
    return receivers


def effective_alerting(
    alerting: AlertingConfig, alerts: AlertsConfig, notifications: NotificationsConfig
) -> AlertingConfig:
    """The alerting file plus the main config's shorthand rules and notification receivers (the file wins).

    Raises:
        ConfigError: a composite rule, route or escalation names a rule or receiver that does not exist.
    """
    own = {r.name for r in alerting.rules}
    rules = [r for r in shorthand_rules(alerts) if r.name not in own] + list(alerting.rules)
    receivers = {**_seed_receivers(notifications), **alerting.receivers}
    fields = {name: getattr(alerting, name) for name in type(alerting).model_fields}
    try:
        merged = AlertingConfig(**{**fields, "rules": rules, "receivers": receivers})
    except ValidationError as exc:
        raise ConfigError(f"alerting: {exc.errors(include_url=False)[0]['msg']}") from None
    merged.check_references()
    return merged


# -- loading ---------------------------------------------------------------------------------------------------


def parse_alerting(text: str, source: str = "<alerts>") -> AlertingConfig:
    """Validate the YAML text of an alerting file.

    Raises:
        ConfigError: YAML syntax or invalid content, one line per problem with file, line and key.
    """
    data, located = read_yaml(text, source, sections="rules, receivers, routes")
    problems: list[tuple[int, str]] = []
    config = None
    try:
        config = AlertingConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc, parent = _walk(data, error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = f"unknown key {loc[-1]!r}" + _valid_keys(parent)
            elif error["type"] == "union_tag_invalid":
                context = error.get("ctx", {})
                key = str(context.get("discriminator", "kind")).strip("'")
                loc = (*loc, key)
                message = f"invalid {key} {context.get('tag')!r}; valid: {context.get('expected_tags')}"
            line = located.line_of(loc) or 0
            problems.append((line, f"{source}{f':{line}' if line else ''}: {dotted_key(loc)}: {message}"))
    messages = located.errors + [text for _, text in sorted(problems, key=lambda p: p[0])]
    if messages or config is None:
        raise ConfigError("\n".join(messages))
    return config


def _walk(data: Any, loc: tuple[str | int, ...]) -> tuple[tuple[str | int, ...], Any]:
    """``loc`` without pydantic's union tags, and the model that validates the data at ``loc[:-1]``."""
    current: Any = AlertingConfig
    value: Any = data
    clean: list[str | int] = []
    parent: Any = None
    for part in loc:
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        current = _unwrap(current, value)
        if isinstance(value, dict) and part not in value and part in (value.get("kind"), value.get("type")):
            continue  # pydantic puts a tagged union member's tag in the location
        parent = current
        clean.append(part)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            current = field.annotation if field is not None else None
        elif get_origin(current) in (list, dict):
            current = get_args(current)[-1]
        else:
            current = None
        if isinstance(value, dict):
            value = value.get(part)
        else:
            value = value[part] if isinstance(value, list) and isinstance(part, int) and part < len(value) else None
    return tuple(clean), parent


def _valid_keys(model: Any) -> str:
    """`` (valid keys: ...)`` when ``model`` is a model class."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return f" (valid keys: {', '.join(f.alias or n for n, f in model.model_fields.items())})"
    return ""


def _unwrap(annotation: Any, value: Any) -> Any:
    """Strip ``Annotated`` and ``| None``; pick a tagged union's member by the data's ``kind`` or ``type``."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0], value)
        tag = value.get("kind", value.get("type")) if isinstance(value, dict) else None
        for member in members:
            field = member.model_fields.get("kind") or member.model_fields.get("type")
            if field is not None and tag in get_args(field.annotation):
                return member
        return None
    return annotation


def load_alerting(path: Path) -> AlertingConfig:
    """Read and validate an alerting file.

    Raises:
        ConfigError: the file cannot be read or is invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read alerting config: {exc.strerror}") from None
    return parse_alerting(text, str(path))
