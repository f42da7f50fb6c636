"""The one exception hierarchy of crucible-monitor.

CrucibleError
 ├── ConfigError        a config file or value is invalid (names file, line and key)
 ├── CollectorError     a collector could not read its source
 ├── StorageError       the data directory cannot be written or read
 │    └── DiskFull      no space: samples held in memory until there is
 ├── QueryError         a metrics query names an unknown metric, aggregation or range
 ├── MetricsRejected    pushed metrics refused: a bad name or label, a label limit, one of the agent's own names
 │    └── PushLimit     a push over a series limit (``limit`` names the setting)
 ├── NotFoundError      an id (alert, service, check) that does not exist
 │    └── AgentNotStarted  what exists only while the agent runs (state.db, alerting, analysis), asked too early
 └── ActionRefused      an action the guard rails refuse (allowlist, budget, read-only)
      └── ScopeRequired  the caller's token has too small a scope (names the one needed)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "HTTP_STATUS",
    "ActionRefused",
    "AgentNotStarted",
    "CollectorError",
    "ConfigError",
    "CrucibleError",
    "NotFoundError",
    "QueryError",
    "DiskFull",
    "MetricsRejected",
    "PushLimit",
    "ScopeRequired",
    "StorageError",
    "error_for_status",
    "status_for",
]


class CrucibleError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(CrucibleError):
    """A configuration file or value is invalid."""


class CollectorError(CrucibleError):
    """A collector could not read its source."""


class StorageError(CrucibleError):
    """The data directory cannot be written or read."""


class DiskFull(StorageError):
    """The WAL could not be written for lack of space: the batch is held in memory (bounded) until space returns."""


class QueryError(CrucibleError):
    """A query is invalid: the message lists the valid choices."""


class MetricsRejected(CrucibleError):
    """Pushed metrics the agent refuses, the whole push: a bad name or label, too many labels, a label too long,
    one of the agent's own metric names; the message says which series and why."""


class PushLimit(MetricsRejected):
    """A push over a series limit (per push, or distinct series in all): ``limit`` names the setting."""

    def __init__(self, message: str, limit: str = "") -> None:
        super().__init__(message)
        self.limit = limit


class NotFoundError(CrucibleError):
    """An object referred to by id or name does not exist."""


class AgentNotStarted(NotFoundError):
    """What exists only while the agent runs (``state.db``, alerting, the anomaly engine) was asked for before
    :meth:`~crucible_monitor.agent.Agent.start` or after :meth:`~crucible_monitor.agent.Agent.stop`."""


class ActionRefused(CrucibleError):
    """An action (a restart) was refused: not allowed, over budget, or read-only mode; the message says which."""


class ScopeRequired(ActionRefused):
    """The caller's token may not do this: ``required_scope`` names the scope it needs."""

    def __init__(self, required_scope: str, message: str) -> None:
        super().__init__(message)
        self.required_scope = required_scope


HTTP_STATUS: dict[type[CrucibleError], int] = {
    QueryError: 400,
    ActionRefused: 403,
    NotFoundError: 404,
    PushLimit: 413,
    ConfigError: 422,
    MetricsRejected: 422,
    CollectorError: 503,
}
"""The one mapping of errors to HTTP statuses: the API answers with it and RemoteMonitor raises by it."""


def status_for(exc: CrucibleError) -> int:
    """The HTTP status of ``exc`` (500 for an error without one)."""
    return next((code for kind, code in HTTP_STATUS.items() if isinstance(exc, kind)), 500)


def error_for_status(status: int, body: Any, text: str) -> CrucibleError:
    """The error an API answer with ``status`` stands for; ``body`` is the decoded JSON (or None), ``text`` the raw.

    A 422 whose ``detail`` is a list is FastAPI's own parameter validation: a :class:`QueryError` (an argument out
    of range or not among the choices), unlike a rejected config, which names each error in ``errors``; any other
    422 refuses pushed metrics.
    """
    detail = body.get("detail", text) if isinstance(body, dict) else text
    if status == 422 and isinstance(detail, list):
        return QueryError("; ".join(_validation_message(item) for item in detail))
    message = str(detail)
    if status == 422 and not (isinstance(body, dict) and "errors" in body):
        return MetricsRejected(message)
    if status == 413:
        return PushLimit(message, body.get("limit") or "" if isinstance(body, dict) else "")
    if status == 401:
        return CrucibleError(f"the agent refused the token ({message}); check agent.api_token or <data_dir>/api_token")
    kind = next((kind for kind, code in HTTP_STATUS.items() if code == status), None)
    return kind(message) if kind is not None else CrucibleError(f"the agent answered {status}: {message}")


def _validation_message(item: Any) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(part) for part in item.get("loc", ())[1:])
    return f"{where}: {item.get('msg', item)}" if where else str(item.get("msg", item))
