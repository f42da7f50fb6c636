"""The alerting file: routes, inhibition, escalation, maintenance windows, flap detection, delivery, and loading.

It is read from its own YAML file (``configs/alerts.yaml``, see :func:`load_alerting`) and combined with the main
config's shorthand (:mod:`~crucible_monitor.alerts.shorthand`) by :func:`effective_alerting`: each shorthand threshold
becomes a rule and each enabled ``notifications`` entry a receiver; a rule or receiver of the same name in the
alerting file wins. All models are strict and frozen like the rest of the config; rules are in
:mod:`~crucible_monitor.alerts.rules`, receivers in :mod:`~crucible_monitor.alerts.receivers`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Self

from pydantic import Field, ValidationError, model_validator

from crucible_monitor.alerts.matchers import MatcherText, parse_matcher
from crucible_monitor.alerts.receivers import AlertmanagerReceiver, Receiver
from crucible_monitor.alerts.rules import CompositeRule, Rule
from crucible_monitor.alerts.shorthand import seed_receivers, shorthand_rules
from crucible_monitor.config import AlertsConfig, NotificationsConfig
from crucible_monitor.configfile import read_text, read_yaml, validate
from crucible_monitor.configtypes import Duration, PositiveDuration, StrictModel, check_unique
from crucible_monitor.errors import ConfigError
from crucible_monitor.schemas.alerts import Recurrence

__all__ = [
    "AlertingConfig",
    "DeliveryConfig",
    "Escalation",
    "FlapDetection",
    "InhibitRule",
    "MaintenanceWindow",
    "Recurrence",
    "RootRoute",
    "Route",
    "effective_alerting",
    "load_alerting",
    "parse_alerting",
]


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
        check_unique((r.name for r in self.rules), "rule names")
        check_unique((w.name for w in self.maintenance_windows), "maintenance window names")
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


def effective_alerting(
    alerting: AlertingConfig, alerts: AlertsConfig, notifications: NotificationsConfig
) -> AlertingConfig:
    """The alerting file plus the main config's shorthand rules and notification receivers (the file wins).

    Raises:
        ConfigError: a composite rule, route or escalation names a rule or receiver that does not exist.
    """
    own = {r.name for r in alerting.rules}
    rules = [r for r in shorthand_rules(alerts) if r.name not in own] + list(alerting.rules)
    receivers = {**seed_receivers(notifications), **alerting.receivers}
    fields = {name: getattr(alerting, name) for name in type(alerting).model_fields}
    try:
        merged = AlertingConfig(**{**fields, "rules": rules, "receivers": receivers})
    except ValidationError as exc:
        raise ConfigError(f"alerting: {exc.errors(include_url=False)[0]['msg']}") from None
    merged.check_references()
    return merged


def parse_alerting(text: str, source: str = "<alerts>") -> AlertingConfig:
    """Validate the YAML text of an alerting file.

    Raises:
        ConfigError: YAML syntax or invalid content, one line per problem with file, line and key.
    """
    data, located = read_yaml(text, source, sections="rules, receivers, routes")
    return validate(AlertingConfig, data, source, located)


def load_alerting(path: Path) -> AlertingConfig:
    """Read and validate an alerting file.

    Raises:
        ConfigError: the file cannot be read or is invalid.
    """
    return parse_alerting(read_text(path, "the alerting file named by alerts.rules_file"), str(path))
