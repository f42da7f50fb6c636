"""Which notifications an alert leads to: routes and groups, silences and maintenance windows, inhibition.

Pure functions over labels and config, so the engine and the operations answer "is this alert muted, and why" the
same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from crucible_monitor.alerts.config import AlertingConfig, InhibitRule, MaintenanceWindow, Recurrence, Route
from crucible_monitor.alerts.matchers import Matcher, matches_all, parse_matcher
from crucible_monitor.alerts.store import SilenceRow
from crucible_monitor.models import labels_key

__all__ = [
    "ActiveSilence",
    "ResolvedRoute",
    "active_silences",
    "group_of",
    "inhibited",
    "recurrence_active",
    "resolve_routes",
    "routes_for",
    "silenced_by",
]


@dataclass(frozen=True, slots=True)
class ResolvedRoute:
    """A route with the root's defaults filled in and its receivers spelled out."""

    name: str
    matchers: tuple[Matcher, ...]
    receivers: tuple[str, ...]
    group_by: tuple[str, ...]
    group_wait: float
    group_interval: float
    repeat_interval: float
    continue_: bool = False


def resolve_routes(config: AlertingConfig) -> tuple[list[ResolvedRoute], ResolvedRoute]:
    """The child routes in order, and the root route (whose empty receiver list means every receiver)."""
    root = config.route
    default = ResolvedRoute(
        name="root",
        matchers=(),
        receivers=tuple(root.receivers or sorted(config.receivers)),
        group_by=tuple(root.group_by),
        group_wait=root.group_wait.total_seconds(),
        group_interval=root.group_interval.total_seconds(),
        repeat_interval=root.repeat_interval.total_seconds(),
    )

    def child(index: int, route: Route) -> ResolvedRoute:
        def seconds(value: timedelta | None, fallback: float) -> float:
            return fallback if value is None else value.total_seconds()

        return ResolvedRoute(
            name=route.name or f"routes[{index}]",
            matchers=tuple(route.matchers),
            receivers=tuple(route.receivers),
            group_by=tuple(route.group_by if route.group_by is not None else root.group_by),
            group_wait=seconds(route.group_wait, default.group_wait),
            group_interval=seconds(route.group_interval, default.group_interval),
            repeat_interval=seconds(route.repeat_interval, default.repeat_interval),
            continue_=route.continue_,
        )

    return [child(i, r) for i, r in enumerate(config.routes)], default


def routes_for(labels: Mapping[str, str], routes: Sequence[ResolvedRoute], root: ResolvedRoute) -> list[ResolvedRoute]:
    """The first matching route (and those after it while ``continue`` is set); the root when none matches."""
    chosen = []
    for route in routes:
        if matches_all(route.matchers, labels):
            chosen.append(route)
            if not route.continue_:
                break
    return chosen or [root]


def group_of(route: ResolvedRoute, labels: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """The group key and labels of an alert on a route (``...`` in group_by: every label)."""
    every = "..." in route.group_by
    grouped = dict(labels) if every else {name: labels.get(name, "") for name in route.group_by}
    return f"{route.name}:{labels_key(grouped)}", grouped


@dataclass(frozen=True, slots=True)
class ActiveSilence:
    """A silence or maintenance window in force now."""

    id: str
    matchers: tuple[Matcher, ...]


def recurrence_active(recurrence: Recurrence, now: float) -> bool:
    """Whether ``now`` falls inside an occurrence of a recurring window (in the window's time zone)."""
    local = datetime.fromtimestamp(now, ZoneInfo(recurrence.timezone))
    start: datetime = croniter(recurrence.expression, local + timedelta(seconds=1)).get_prev(datetime)
    return start <= local < start + recurrence.duration


def active_silences(
    rows: Iterable[SilenceRow], windows: Iterable[MaintenanceWindow], now: float
) -> list[ActiveSilence]:
    """The silences from ``state.db`` and the config's maintenance windows that are in force at ``now``."""
    active = []
    for row in rows:
        if row.deleted_at is not None or not row.starts_at <= now < row.ends_at:
            continue
        if row.recurrence is not None and not recurrence_active(
            Recurrence.model_validate(json.loads(row.recurrence)), now
        ):
            continue
        active.append(ActiveSilence(row.id, tuple(parse_matcher(m) for m in row.matchers)))
    active.extend(
        ActiveSilence(f"window:{w.name}", tuple(w.matchers)) for w in windows if recurrence_active(w.schedule, now)
    )
    return active


def silenced_by(labels: Mapping[str, str], silences: Iterable[ActiveSilence]) -> list[str]:
    """The ids of the silences that mute an alert with these labels."""
    return [s.id for s in silences if matches_all(s.matchers, labels)]


def inhibited(
    labels: Mapping[str, str],
    fingerprint: str,
    firing: Iterable[tuple[str, Mapping[str, str]]],
    rules: Sequence[InhibitRule],
) -> bool:
    """Whether a firing alert (other than this one) matching an inhibit rule's source mutes these labels.

    ``firing`` holds ``(fingerprint, labels)`` of the firing alerts. Labels named in ``equal`` must have the same
    value on both (an absent label is ``""``), as in Alertmanager.
    """
    targeted = [r for r in rules if matches_all(r.target, labels)]
    if not targeted:
        return False
    for source_fp, source in firing:
        if source_fp == fingerprint:
            continue
        for rule in targeted:
            if matches_all(rule.source, source) and all(source.get(n, "") == labels.get(n, "") for n in rule.equal):
                return True
    return False
