"""The operations that change something: a restart, an acknowledgement, silences, the config, pushed metrics.

Each declares the scope it needs (above ``read``); :data:`~crucible_monitor.operation_table.OPERATIONS` holds them
with the rest, and the API, RemoteMonitor and the MCP tools follow the declarations alike.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from crucible_monitor.errors import (
    ActionRefused,
    ConfigError,
    MetricsRejected,
    NotFoundError,
    PushLimit,
    QueryError,
)
from crucible_monitor.operations import ID_RANGE, Operation, Param, Route
from crucible_monitor.schemas import (
    PUSH_MEDIA_TYPES,
    AcknowledgeRequest,
    AlertView,
    ConfigUpdate,
    PushResult,
    Recurrence,
    RestartBody,
    RestartResult,
    SilenceRequest,
    SilenceView,
)

__all__ = ["CHANGES"]


def _op(name: str, result: Any, *routes: Route, **options: Any) -> Operation:
    return Operation(name, result, routes, **options)


_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_PUSH_TEXT: dict[str, Any] = {
    "schema": {"type": "string", "description": "Prometheus text exposition format (version 0.0.4)."},
    "example": '# TYPE backup_age_seconds gauge\nbackup_age_seconds{target="db"} 3600\n',
}
_PUSH_JSON: dict[str, Any] = {
    "schema": {
        "description": "{name: value}, or a list of {name, labels, value, type (gauge or counter), help}.",
        "anyOf": [
            {"type": "object", "additionalProperties": {"type": "number"}, "description": "{name: value}"},
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "value"],
                    "properties": {
                        "name": {"type": "string"},
                        "labels": _LABELS,
                        "value": {"type": "number"},
                        "type": {"enum": ["gauge", "counter"], "default": "gauge"},
                        "help": {"type": "string"},
                    },
                },
            },
        ],
    },
    "example": [{"name": "queue_depth", "labels": {"queue": "mail"}, "value": 12}],
}
_PUSH_BODY = dict(zip(PUSH_MEDIA_TYPES, (_PUSH_TEXT, _PUSH_JSON), strict=True))
"""What a push may be (Prometheus text, JSON), as the OpenAPI spec shows it."""

CHANGES: tuple[Operation, ...] = (
    _op(
        "restart_service",
        RestartResult,
        Route(
            "POST",
            "/services/{name}/restart",
            "Restart an allowlisted service (within its budget, audited). ``confirm`` must be true; try ``dry_run``.",
            "services",
            (
                Param("name", str, where="path"),
                Param("reason", str, where="body"),
                Param("claimed_by", str | None, None, where="body", wire="actor"),
                Param("actor", str, None, kind="principal"),
                Param("confirmed", bool, where="body", wire="confirm"),
                Param("dry_run", bool, False, where="body"),
            ),
            body=RestartBody,
        ),
        read_only=False,
        scope="operate",
        errors=(ActionRefused,),
    ),
    _op(
        "acknowledge_alert",
        AlertView,
        Route(
            "POST",
            "/alerts/{alert_id}/acknowledge",
            "Acknowledge an alert: no re-notification until it resolves or the acknowledgement expires.",
            "alerts",
            (
                Param("alert_id", int, where="path", constraints=ID_RANGE),
                Param("by", str, "api", where="body", kind="actor"),
                Param("note", str | None, None, where="body"),
                Param("expires", timedelta | None, None, where="body"),
            ),
            body=AcknowledgeRequest,
        ),
        read_only=False,
        scope="operate",
        errors=(NotFoundError, QueryError),
    ),
    _op(
        "silence_alerts",
        SilenceView,
        Route(
            "POST",
            "/silences",
            "Mute the alerts matching every matcher for ``duration`` (optionally only inside recurring windows).",
            "alerts",
            (
                Param("matchers", list[str], where="body"),
                Param("duration", timedelta, where="body"),
                Param("reason", str, where="body"),
                Param("author", str, where="body", kind="actor"),
                Param("starts_at", float | None, None, where="body"),
                Param("recurrence", Recurrence | None, None, where="body"),
            ),
            body=SilenceRequest,
            status_code=201,
        ),
        read_only=False,
        scope="operate",
        errors=(QueryError,),
    ),
    _op(
        "delete_silence",
        SilenceView,
        Route(
            "DELETE",
            "/silences/{silence_id}",
            "End a silence now.",
            "alerts",
            (Param("silence_id", str, where="path"), Param("by", str, kind="actor", constraints={"min_length": 1})),
        ),
        read_only=False,
        scope="operate",
        errors=(NotFoundError,),
    ),
    _op(
        "update_config",
        ConfigUpdate,
        Route(
            "POST",
            "/config",
            "Validate and apply a config change live; an invalid one is rejected (422) with every error named.",
            "config",
            (
                Param(
                    "patch",
                    dict[str, Any],
                    where="body",
                    description="A partial config tree merged onto the current one.",
                ),
            ),
        ),
        read_only=False,
        scope="admin",
        errors=(ConfigError,),
    ),
    _op(
        "push_metrics",
        PushResult,
        Route(
            "POST",
            "/metrics",
            "Store series pushed as Prometheus text (`text/plain`, `version=0.0.4`) or JSON (`application/json`: "
            '{"name": value} or [{"name", "labels", "value", "type", "help"}]), stamped with the time they arrive; '
            "they join the catalogue (collector push). Over a push: limit 413, a bad name or label 422, naming it.",
            "metrics",
            (
                Param("body", str, where="body", kind="raw", description="Prometheus text or JSON."),
                Param("content_type", str, "text/plain", where="body", kind="media"),
            ),
            media=_PUSH_BODY,
        ),
        read_only=False,
        scope="operate",
        errors=(PushLimit, MetricsRejected),
    ),
)
"""Every operation that changes something, in the order the API lists them."""
