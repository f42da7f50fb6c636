"""The HTTP API (``/api/v1``): routes registered from the operation table over a
:class:`~crucible_monitor.monitor.Monitor`.

Every route but ``/api/v1/health`` needs ``Authorization: Bearer <token>`` of the scope its operation declares
(``read``, ``operate``, ``admin``); a 403 names the scope needed. The OpenAPI spec is served at
``/api/v1/openapi.json`` (with a token).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from crucible_monitor.config import Scope
from crucible_monitor.errors import (
    HTTP_STATUS,
    ConfigError,
    CrucibleError,
    PushLimit,
    QueryError,
    ScopeRequired,
    status_for,
)
from crucible_monitor.monitor import Monitor
from crucible_monitor.operation_table import OPERATIONS
from crucible_monitor.operations import Operation, Param, Route, listed_model
from crucible_monitor.params import parse_labels, parse_seconds, parse_time
from crucible_monitor.tokens import Principal, TokenRegistry, allows

__all__ = ["ErrorBody", "OverLimit", "build_api", "install_error_handlers", "require_scope", "responses"]

_bearer = HTTPBearer(
    auto_error=False, description="An API token: the default (admin) one, one of agent.tokens, or `token create`'s."
)


class ErrorBody(BaseModel):
    """What an error answers: the message, and for a 403 of scope the scope the token would need."""

    detail: str
    required_scope: Scope | None = None


class OverLimit(BaseModel):
    """A 413: the message, and for a push over a series limit the setting (``push.max_series``)."""

    detail: str
    limit: str | None = None


class Rejected(BaseModel):
    """A 422: FastAPI's list of invalid arguments in ``detail``, or a rejected config's message and ``errors``."""

    detail: str | list[dict[str, Any]]
    errors: list[str] | None = None


def require_scope(tokens: TokenRegistry, scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency that accepts only ``Authorization: Bearer <token>`` of a known token of ``scope`` or above.

    Raises:
        HTTPException: 401 without a token or with an unknown one.
        ScopeRequired: (403) the token's scope is below ``scope``; the answer names the scope.
    """

    async def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
        principal = tokens.verify(credentials.credentials) if credentials is not None else None
        if principal is None:
            raise HTTPException(
                status_code=401,
                detail="missing or invalid bearer token",
                headers={"WWW-Authenticate": 'Bearer realm="crucible-monitor"'},
            )
        if not allows(principal.scope, scope):
            raise ScopeRequired(
                scope, f"this needs a token of scope {scope} (or above); token {principal.name!r} is {principal.scope}"
            )
        return principal

    return check


def responses(operation: Operation | None = None) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route: 401 and 403 (unless public) and the status of each error it declares."""
    found: dict[int | str, dict[str, Any]] = {}
    if operation is None or not operation.public:
        scope = operation.scope if operation else "read"
        found[401] = {"model": ErrorBody, "description": "No token, or one the agent does not know."}
        found[403] = {"model": ErrorBody, "description": f"The token's scope is below {scope} (or an action refused)."}
    routes = operation.routes if operation else ()
    if any(route.media for route in routes):
        found[413] = {"model": OverLimit, "description": "Over a limit: the message (and `limit`) names it."}
        found[415] = {"model": ErrorBody, "description": "A Content-Type the route does not take (it lists them)."}
    if any(route.params or route.body for route in routes):
        found[400] = {
            "model": ErrorBody,
            "description": "A time, duration or label filter in none of the accepted "
            "forms (the message lists them), or a body that is not JSON.",
        }
        found[422] = {"model": Rejected, "description": "An argument out of its range or not among its choices."}
    for kind in operation.errors if operation else ():
        code = status_for(kind(""))
        if code not in found:
            found[code] = {"model": ErrorBody, "description": (kind.__doc__ or kind.__name__).splitlines()[0]}
    return found


def install_error_handlers(app: FastAPI) -> None:
    """Map the package's errors to HTTP statuses (:data:`~crucible_monitor.errors.HTTP_STATUS`), message as
    ``detail``; a rejected config also lists each error in ``errors``."""

    async def handle(_: Request, exc: Exception) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, ConfigError):
            body["errors"] = str(exc).splitlines()
        if isinstance(exc, ScopeRequired):
            body["required_scope"] = exc.required_scope
        if isinstance(exc, PushLimit):
            body["limit"] = exc.limit
        return JSONResponse(body, status_code=status_for(exc) if isinstance(exc, CrucibleError) else 500)

    for kind in HTTP_STATUS:
        app.add_exception_handler(kind, handle)


def build_api(monitor: Monitor, tokens: TokenRegistry) -> APIRouter:
    """The ``/api/v1`` routes of every operation in the table over ``monitor``, each guarded by its scope."""
    router = APIRouter(prefix="/api/v1")
    for operation in OPERATIONS.values():
        check = None if operation.public else require_scope(tokens, operation.scope)
        for index, route in enumerate(operation.routes):
            router.add_api_route(
                route.path,
                _endpoint(monitor, operation, index, check),
                methods=[route.method],
                response_model=listed_model(operation.result) or operation.result,
                status_code=route.status_code,
                tags=[route.tag],
                description=route.doc,
                responses=responses(operation),
                openapi_extra={"requestBody": {"required": True, "content": route.media}} if route.media else None,
            )
    return router


def _endpoint(
    monitor: Monitor, operation: Operation, index: int, check: Callable[..., Awaitable[Principal]] | None
) -> Callable[..., Awaitable[Any]]:
    """A FastAPI endpoint whose signature declares the route's parameters (and the caller's token, checked by
    ``check``) and that calls the Monitor method."""
    route = operation.routes[index]
    method = getattr(monitor, operation.name)
    clock = monitor.agent.clock
    body_params = [p for p in route.params if p.where == "body"]
    wire = [p for p in route.params if p.kind not in ("principal", "raw", "media")]
    signature = [_signature_param(p) for p in wire if p.where != "body" or route.body is None]
    if route.media:  # the raw body: read from the request, not declared as JSON
        signature.append(inspect.Parameter("request", inspect.Parameter.KEYWORD_ONLY, annotation=Request))
    if check is not None:
        caller = Annotated[Principal, Depends(check)]
        signature.append(inspect.Parameter("caller", inspect.Parameter.KEYWORD_ONLY, annotation=caller))
    body_model = route.body
    if body_model is not None:
        # A body whose fields all have defaults may be left out (an "ack" button posts nothing).
        optional = all(not p.required for p in body_params)
        default = None if optional else inspect.Parameter.empty
        annotation = body_model | None if optional else body_model
        signature.append(
            inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )

    listed = listed_model(operation.result)
    limit_param = next((p for p in route.params if p.name == "limit"), None)
    limit_cap = limit_param.constraints.get("le") if limit_param is not None else None

    async def endpoint(**values: Any) -> Any:
        caller: Principal | None = values.pop("caller", None)
        if route.media:
            raw = next(p for p in route.params if p.kind == "raw")
            media = next(p for p in route.params if p.kind == "media")
            values[raw.wire_name], values[media.wire_name] = await _raw_body(values.pop("request"), route)
        if body_model is not None:
            body = values.pop("body") or body_model()
            values.update({p.wire_name: getattr(body, p.wire_name) for p in body_params})
        arguments = _arguments(route, values, clock(), caller.name if caller else "api")
        if listed is None:
            return await method(**arguments)
        limit = arguments.get("limit")
        if limit_cap is not None and limit is not None:
            arguments["limit"] = limit_cap  # count what matched (up to the cap), show ``limit`` of it
        found = await method(**arguments)
        shown = found if limit is None else found[:limit]
        truncated = len(found) > len(shown) or (limit_cap is not None and len(found) >= limit_cap > len(shown))
        return {
            "items": shown,
            "total": len(found),
            "limit": len(shown) if limit is None else limit,
            "truncated": truncated,
        }

    endpoint.__name__ = operation.name if index == 0 else f"{operation.name}_{index}"
    endpoint.__doc__ = route.doc
    endpoint.__dict__["__signature__"] = inspect.Signature(signature)  # FastAPI reads the parameters from it
    return endpoint


async def _raw_body(request: Request, route: Route) -> tuple[str, str]:
    """The body of a request to a raw-body route, as text, and its media type.

    Raises:
        HTTPException: 415 for a media type the route does not take, 413 for a body over its ``max_body``.
        QueryError: (400) a body that is not UTF-8.
    """
    media = request.headers.get("content-type", "")
    if media.partition(";")[0].strip().lower() not in route.media:
        raise HTTPException(415, f"Content-Type {media or 'none'!r}: send {' or '.join(route.media)}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > route.max_body:
            raise HTTPException(413, f"the body is over {route.max_body} bytes, the most one request may send")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8"), media
    except UnicodeDecodeError as exc:
        raise QueryError(f"the body is not UTF-8 text (byte {exc.start})") from None


_EXAMPLES: dict[str, list[str]] = {
    "time": ["1h", "now", "2026-11-28T10:00:00Z", "1764324000"],
    "duration": ["1m", "1h", "30d"],
    "labels": ["mountpoint=/", "service=mysql,state=down"],
}


def _signature_param(param: Param) -> inspect.Parameter:
    """The FastAPI declaration of one path, query or whole-body parameter."""
    options: dict[str, Any] = {"description": param.description, **param.constraints}
    if param.kind in _EXAMPLES:  # text whose forms a schema cannot state: the spec shows one of each
        options["examples"] = _EXAMPLES[param.kind]
    marker: Any = {"path": Path, "query": Query, "body": Body}[param.where](**options)
    default = inspect.Parameter.empty if param.required else param.default
    return inspect.Parameter(
        param.wire_name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[param.type, marker],
    )


def _arguments(route: Route, values: dict[str, Any], now: float, who: str) -> dict[str, Any]:
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
            arguments[param.name] = _convert(param, value, now, who)
        except ValueError as exc:
            raise QueryError(str(exc)) from None
    return arguments


def _convert(param: Param, value: Any, now: float, who: str) -> Any:
    if param.kind == "principal":
        return who
    if param.kind in ("raw", "media"):
        return value
    if param.kind == "actor":  # the token's name first: what the caller says is only its claim
        return f"{who} ({value})" if value and value not in (who, param.default) else who
    if value is None or param.kind == "plain":
        return value
    if param.kind == "time":
        return parse_time(value, now)
    if param.kind == "duration":
        return parse_seconds(value)
    return parse_labels(value)
