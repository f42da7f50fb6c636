"""Alerting: rules over the agent's state, a persistent alert lifecycle, silences, grouping and notifications.

- :mod:`~crucible_monitor.alerts.rules` and :mod:`~crucible_monitor.alerts.receivers`: what rules and receivers are;
- :mod:`~crucible_monitor.alerts.shorthand`: the main config's ``alerts:`` thresholds as rules and levels;
- :mod:`~crucible_monitor.alerts.config`: the rest of the alerting file's models, and loading;
- :mod:`~crucible_monitor.alerts.conditions`: the inputs and each rule kind's condition;
- :mod:`~crucible_monitor.alerts.engine`: the lifecycle and dispatch cycle over ``state.db``;
- :mod:`~crucible_monitor.alerts.routing`: routes, groups, silences, maintenance windows, inhibition;
- :mod:`~crucible_monitor.alerts.notifiers` and :mod:`~crucible_monitor.alerts.outbox`: delivery;
- :mod:`~crucible_monitor.alerts.operations`: what the Monitor offers (list, acknowledge, silence...), returning
  the views of :mod:`crucible_monitor.schemas.alerts`;
- :mod:`~crucible_monitor.alerts.runtime`: :class:`Alerting`, all of it wired for the agent.
"""

from __future__ import annotations

from crucible_monitor.alerts.conditions import AlertInputs, AnomalyScore, Forecast
from crucible_monitor.alerts.config import AlertingConfig, effective_alerting, load_alerting, parse_alerting
from crucible_monitor.alerts.engine import AlertEngine, CycleReport
from crucible_monitor.alerts.operations import AlertOperations
from crucible_monitor.alerts.runtime import Alerting

__all__ = [
    "AlertEngine",
    "AlertInputs",
    "AlertOperations",
    "Alerting",
    "AlertingConfig",
    "AnomalyScore",
    "CycleReport",
    "Forecast",
    "effective_alerting",
    "load_alerting",
    "parse_alerting",
]
