"""The HTTP API (``/api/v1``): routes registered from the operation table over a
:class:`~crucible_monitor.monitor.Monitor`.

Every route but ``/api/v1/health`` needs ``Authorization: Bearer <token>``. The OpenAPI spec is served at
``/api/v1/openapi.json`` (with the token).
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crucible_monitor.errors import HTTP_STATUS, ConfigError, CrucibleError, QueryError, status_for
from crucible_monitor.monitor import Monitor
from crucible_monitor.operation_table import OPERATIONS
from crucible_monitor.operations import Operation, Param, Route
from crucible_monitor.params import parse_labels, parse_seconds, parse_time

__all__ = ["build_api", "install_error_handlers", "require_token"]

_bearer = HTTPBearer(auto_error=False, description="The agent's API token (agent.api_token or <data_dir>/api_token).")


def require_token(token: str) -> Any:
    """A dependency that accepts only ``Authorization: Bearer <token>`` (compared in constant time)."""

    async def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), token.encode()):
            raise HTTPException(
                status_code=401,
                detail="missing or invalid bearer token",
                headers={"WWW-Authenticate": 'Bearer realm="crucible-monitor"'},
            )

    return Depends(check)


def install_error_handlers(app: FastAPI) -> None:
    """Map the package's errors to HTTP statuses (:data:`~crucible_monitor.errors.HTTP_STATUS`), message as
    ``detail``; a rejected config also lists each error in ``errors``."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, ConfigError):
            body["errors"] = str(exc).splitlines()
        return JSONResponse(body, status_code=status_for(exc) if isinstance(exc, CrucibleError) else 500)

    for kind in HTTP_STATUS:
        app.add_exception_handler(kind, handle)


def build_api(monitor: Monitor, token: str) -> APIRouter:
    """The ``/api/v1`` routes of every operation in the table over ``monitor``, guarded by ``token``."""
    public = APIRouter(prefix="/api/v1", tags=["health"])
    api = APIRouter(prefix="/api/v1", dependencies=[require_token(token)])
    for operation in OPERATIONS.values():
        for index, route in enumerate(operation.routes):
            router = public if operation.public else api
            router.add_api_route(
                route.path,
                _endpoint(monitor, operation, index),
                methods=[route.method],
                response_model=operation.result,
                status_code=route.status_code,
                tags=None if operation.public else [route.tag],
                description=route.doc,
            )
    router = APIRouter()
    router.include_router(public)
    router.include_router(api)
    return router


def _endpoint(monitor: Monitor, operation: Operation, index: int) -> Callable[..., Awaitable[Any]]:
    """A FastAPI endpoint whose signature declares the route's parameters and that calls the Monitor method."""
    route = operation.routes[index]
    method = getattr(monitor, operation.name)
    clock = monitor.agent.clock
    body_params = [p for p in route.params if p.where == "body"]
    signature = [_signature_param(p) for p in route.params if p.where != "body" or route.body is None]
    body_model = route.body
    if body_model is not None:
        # A body whose fields all have defaults may be left out (an "ack" button posts nothing).
        optional = all(not p.required for p in body_params)
        default = None if optional else inspect.Parameter.empty
        annotation = body_model | None if optional else body_model
        signature.append(
            inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )

    async def endpoint(**values: Any) -> Any:
        if body_model is not None:
            body = values.pop("body") or body_model()
            values.update({p.wire_name: getattr(body, p.wire_name) for p in body_params})
        return await method(**_arguments(route, values, clock()))

    endpoint.__name__ = operation.name if index == 0 else f"{operation.name}_{index}"
    endpoint.__doc__ = route.doc
    endpoint.__dict__["__signature__"] = inspect.Signature(signature)  # FastAPI reads the parameters from it
    return endpoint


def _signature_param(param: Param) -> inspect.Parameter:
    """The FastAPI declaration of one path, query or whole-body parameter."""
    options: dict[str, Any] = {"description": param.description, **param.constraints}
    marker: Any = {"path": Path, "query": Query, "body": Body}[param.where](**options)
    default = inspect.Parameter.empty if param.required else param.default
    return inspect.Parameter(
        param.wire_name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[param.type, marker],
    )


def _arguments(route: Route, values: dict[str, Any], now: float) -> dict[str, Any]:
    """The wire's values → the Monitor's arguments: times and durations parsed, shorthands applied.

    Raises:
        QueryError: a time, duration or label filter in none of the accepted forms (the message lists them).
    """
    for shorthand in route.params:
        if shorthand.fills is not None and values.get(shorthand.fills) is None:
            values[shorthand.fills] = values.get(shorthand.wire_name)
    arguments: dict[str, Any] = {}
    for param in route.params:
        if param.fills is not None:
            continue
        value = values.get(param.wire_name)
        if value is None and param.fallback is not None:
            value = param.fallback
        try:
            arguments[param.name] = _convert(param, value, now)
        except ValueError as exc:
            raise QueryError(str(exc)) from None
    return arguments


def _convert(param: Param, value: Any, now: float) -> Any:
    if param.kind == "actor":
        return f"api ({value})" if value else "api"
    if value is None or param.kind == "plain":
        return value
    if param.kind == "time":
        return parse_time(value, now)
    if param.kind == "duration":
        return parse_seconds(value)
    return parse_labels(value)
