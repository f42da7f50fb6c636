"""The main config's shorthand: ``alerts:`` thresholds become rules, ``notifications:`` entries receivers.

:func:`shorthand_levels` is the one reading of the thresholds: the rules are built from it, and the status summary
(:mod:`crucible_monitor.status`) judges the same resources by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from crucible_monitor.alerts.receivers import EmailReceiver, Receiver, SlackReceiver, WebhookReceiver
from crucible_monitor.alerts.rules import HttpCheckRule, Rule, ServiceRule, ThresholdRule
from crucible_monitor.config import AlertsConfig, NotificationsConfig

__all__ = ["CRITICAL_RATIO", "Levels", "ResourceLevel", "seed_receivers", "shorthand_levels", "shorthand_rules"]

CRITICAL_RATIO = 0.95
"""A resource this full is critical, whatever its (lower) warning threshold."""
_HYSTERESIS = 0.05


@dataclass(frozen=True, slots=True)
class ResourceLevel:
    """The levels of one resource ratio (0..1) that an ``alerts:`` threshold stands for.

    The shorthand rule fires (severity warning) at ``warning`` and clears below ``clear``; the status summary calls
    the resource critical from ``critical`` on.
    """

    metric: str
    percent: float
    """The threshold as configured, in percent."""

    @property
    def warning(self) -> float:
        """Where the rule fires."""
        return self.percent / 100

    @property
    def clear(self) -> float:
        """Where a firing rule clears (hysteresis)."""
        return max(0.0, self.warning - _HYSTERESIS)

    @property
    def critical(self) -> float:
        """Where the status summary calls it critical."""
        return max(CRITICAL_RATIO, self.warning)


@dataclass(frozen=True, slots=True)
class Levels:
    """Every level the ``alerts:`` shorthand sets; None where its threshold is null (no rule)."""

    cpu: ResourceLevel | None
    memory: ResourceLevel | None
    disk: ResourceLevel | None
    """Filesystem space; the status summary holds inodes to it too."""
    slow_check: timedelta | None
    """An HTTP check slower than this is slow."""


def shorthand_levels(alerts: AlertsConfig) -> Levels:
    """The levels of the main config's ``alerts`` shorthand."""

    def level(metric: str, percent: float | None) -> ResourceLevel | None:
        return None if percent is None else ResourceLevel(metric, percent)

    return Levels(
        cpu=level("cpu_usage_ratio", alerts.cpu_threshold),
        memory=level("memory_used_ratio", alerts.memory_threshold),
        disk=level("filesystem_used_ratio", alerts.disk_threshold),
        slow_check=alerts.response_time_threshold,
    )


def shorthand_rules(alerts: AlertsConfig) -> list[Rule]:
    """The rules the main config's ``alerts`` shorthand stands for (a threshold set to null gives none)."""
    levels = shorthand_levels(alerts)
    rules: list[Rule] = []

    def threshold(name: str, level: ResourceLevel | None, resource: str, summary: str, **extra: Any) -> None:
        if level is None:
            return
        rules.append(
            ThresholdRule.model_validate(
                {
                    "kind": "threshold",
                    "name": name,
                    "metric": level.metric,
                    "value": level.warning,
                    "clear": level.clear,
                    "for": "5m",
                    "labels": {"resource": resource},
                    "annotations": {"summary": summary},
                    **extra,
                }
            )
        )

    threshold(
        "HighCpuUsage",
        levels.cpu,
        "cpu",
        "CPU busy {{ value:.0% }} on {{ host }} (threshold {{ threshold:.0% }})",
        match={"cpu": "total"},
    )
    threshold(
        "HighMemoryUsage",
        levels.memory,
        "memory",
        "Memory {{ value:.0% }} used on {{ host }} (threshold {{ threshold:.0% }})",
    )
    threshold(
        "DiskSpaceLow",
        levels.disk,
        "disk",
        "{{ labels.mountpoint }} is {{ value:.0% }} full on {{ host }} (threshold {{ threshold:.0% }})",
    )
    if alerts.service_down is not None:
        rules.append(
            ServiceRule.model_validate(
                {
                    "kind": "service",
                    "name": "ServiceDown",
                    "severity": "critical",
                    "for": alerts.service_down,
                    "annotations": {"summary": "{{ labels.service }} is down on {{ host }}"},
                }
            )
        )
    if levels.slow_check is not None:
        rules.append(
            HttpCheckRule.model_validate(
                {
                    "kind": "http_check",
                    "name": "SlowHttpCheck",
                    "condition": "slow",
                    "slower_than": levels.slow_check,
                    "for": "3m",
                    "annotations": {
                        "summary": "HTTP check {{ labels.check }} took {{ value:.2f }} s (limit {{ threshold }} s)"
                    },
                }
            )
        )
    return rules


def seed_receivers(notifications: NotificationsConfig) -> dict[str, Receiver]:
    """The receivers the main config's enabled ``notifications`` entries stand for."""
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
