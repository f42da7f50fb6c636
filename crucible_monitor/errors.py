"""The one exception hierarchy of crucible-monitor.

CrucibleError
 ├── ConfigError        a config file or value is invalid (names file, line and key)
 ├── CollectorError     a collector could not read its source
 ├── StorageError       the data directory cannot be written or read
 ├── QueryError         a metrics query names an unknown metric, aggregation or range
 ├── NotFoundError      an id (alert, service, check) that does not exist
 │    └── AgentNotStarted  what exists only while the agent runs (state.db, alerting, analysis), asked too early
 └── ActionRefused      an action the guard rails refuse (allowlist, budget, read-only)
"""

from __future__ import annotations

__all__ = [
    "ActionRefused",
    "AgentNotStarted",
    "CollectorError",
    "ConfigError",
    "CrucibleError",
    "NotFoundError",
    "QueryError",
    "StorageError",
]


class CrucibleError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(CrucibleError):
    """A configuration file or value is invalid."""


class CollectorError(CrucibleError):
    """A collector could not read its source."""


class StorageError(CrucibleError):
    """The data directory cannot be written or read."""


class QueryError(CrucibleError):
    """A query is invalid: the message lists the valid choices."""


class NotFoundError(CrucibleError):
    """An object referred to by id or name does not exist."""


class AgentNotStarted(NotFoundError):
    """What exists only while the agent runs (``state.db``, alerting, the anomaly engine) was asked for before
    :meth:`~crucible_monitor.agent.Agent.start` or after :meth:`~crucible_monitor.agent.Agent.stop`."""


class ActionRefused(CrucibleError):
    """An action (a restart) was refused: not allowed, over budget, or read-only mode; the message says which."""
