"""RemoteMonitor: the Monitor's operations over a running agent's HTTP API (for the CLI, TUI and stdio MCP).

Every operation is called through the operation table (:data:`~crucible_monitor.operation_table.OPERATIONS`): one
generic call builds the path, query and body from the declaration and validates the answer with the declared result
type. Times and durations travel as Unix seconds and seconds (:func:`~crucible_monitor.params.wire_number`), which the
API parses back exactly. :meth:`RemoteMonitor.follow_logs` reads the one route outside the table, the log stream
(``GET /api/v1/logs/stream``, server-sent events).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import BaseModel, TypeAdapter

from crucible_monitor.config import Config
from crucible_monitor.errors import CrucibleError, error_for_status
from crucible_monitor.operation_table import OPERATIONS
from crucible_monitor.operations import Operation, Param, Route, listed_model
from crucible_monitor.params import format_labels, wire_number
from crucible_monitor.tokens import read_api_token

__all__ = ["AgentUnavailable", "RemoteMonitor"]

_PREFIX = "/api/v1"
STREAM_IDLE_TIMEOUT = 60.0
"""Seconds a log stream may stay silent before it counts as dropped (the agent sends a comment every 15 s)."""


class AgentUnavailable(CrucibleError):
    """No agent answers at the configured address."""


class RemoteMonitor:
    """A client of one agent's ``/api/v1`` offering every operation of the table as a method (it satisfies
    :class:`~crucible_monitor.operations.Operations`); use as an async context manager.

    ``transport`` replaces the network (``httpx.ASGITransport`` over the app, or ``httpx.MockTransport``) in tests.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    @classmethod
    def from_config(cls, config: Config) -> RemoteMonitor:
        """Connect to the agent that ``config`` describes, with its token."""
        host = config.agent.host
        host = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
        url_host = f"[{host}]" if ":" in host else host
        return cls(f"http://{url_host}:{config.agent.port}", read_api_token(config))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def follow_logs(
        self,
        source: str,
        *,
        lines: int = 20,
        contains: str | None = None,
        on_open: Callable[[], object] | None = None,
        idle_timeout: float = STREAM_IDLE_TIMEOUT,
    ) -> AsyncIterator[str]:
        """Each line of ``source``'s log as the agent streams it: its last ``lines`` lines, then every new one, until
        the stream ends (the iterator then stops) or drops. ``on_open`` is called once the agent accepted the stream
        (before any line: a quiet log sends none for a while).

        Raises:
            AgentUnavailable: no agent answers, or the stream dropped or stayed silent for ``idle_timeout`` seconds.
            CrucibleError: the agent's error before the stream starts (an unknown source: NotFoundError).
        """
        params: dict[str, Any] = {"source": source, "lines": lines}
        if contains is not None:
            params["contains"] = contains
        timeout = httpx.Timeout(self._timeout, read=idle_timeout)
        try:
            async with self._http.stream("GET", f"{_PREFIX}/logs/stream", params=params, timeout=timeout) as response:
                if not response.is_success:
                    await response.aread()
                    raise _error(response)
                if on_open is not None:
                    on_open()
                data: list[str] = []
                async for line in response.aiter_lines():
                    if line == "":  # an event ends at a blank line
                        if data:
                            yield "\n".join(data)
                        data = []
                        continue
                    name, _, value = line.partition(":")
                    if name == "data":  # other fields, and comments (keep-alives: no name), carry no line
                        data.append(value.removeprefix(" "))
        except httpx.HTTPError as exc:  # no answer, a dropped or silent stream, a body that does not decode
            raise AgentUnavailable(f"the log stream from {self.base_url} dropped ({type(exc).__name__})") from exc

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        """The operation ``name`` of the table, as a coroutine function taking the Monitor method's arguments."""
        operation = OPERATIONS.get(name)
        if operation is None:
            raise AttributeError(f"{type(self).__name__} has no operation {name!r}")
        return functools.partial(self.call, operation)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *OPERATIONS})

    async def call(self, operation: Operation, *args: Any, **kwargs: Any) -> Any:
        """Call ``operation`` with the Monitor method's arguments and return its validated result.

        Raises:
            TypeError: arguments the operation does not take, or none of its routes fits them.
            AgentUnavailable: no agent answers.
            CrucibleError: the agent's error, as the type :data:`~crucible_monitor.errors.HTTP_STATUS` maps it to.
        """
        names = operation.arguments()
        if len(args) > len(names):
            raise TypeError(f"{operation.name}() takes at most {len(names)} positional arguments")
        arguments = {**dict(zip(names, args, strict=False)), **kwargs}
        unknown = set(arguments) - set(names)
        if unknown:
            raise TypeError(f"{operation.name}() got unexpected arguments {', '.join(sorted(unknown))}")
        route = _route_for(operation, arguments)
        path = _PREFIX + route.path.replace(":path}", "}")
        query: dict[str, Any] = {}
        body: dict[str, Any] = {}
        whole_body: Any = None
        raw: dict[str, Any] = {"headers": {"Content-Type": next(iter(route.media))}} if route.media else {}
        for param in route.params:
            value = arguments.get(param.name)
            if param.fills is not None or value is None or param.kind == "principal":
                continue  # the agent records who from the token, not from what the client sends
            if param.kind == "raw":
                raw["content"] = value.encode("utf-8")
            elif param.kind == "media":
                raw["headers"] = {"Content-Type": value}
            elif param.where == "path":
                path = path.replace(f"{{{param.wire_name}}}", str(value))
            elif param.where == "query":
                query[param.wire_name] = _wire(param, value)
            elif route.body is None:
                whole_body = _json(value)
            else:
                body[param.wire_name] = _json(value)
        try:
            if route.media:
                response = await self._http.request(route.method, path, params=query, **raw)
            else:
                response = await self._http.request(
                    route.method, path, params=query, json=body if route.body is not None else whole_body
                )
        except httpx.TransportError as exc:
            raise AgentUnavailable(f"no agent answers at {self.base_url} ({type(exc).__name__})") from exc
        if not response.is_success:
            raise _error(response)
        answer = response.json()
        if listed_model(operation.result) is not None:  # a list answers {items, total, limit, truncated}
            answer = answer["items"]
        return _adapter(operation.name).validate_python(answer)


def _route_for(operation: Operation, arguments: Mapping[str, Any]) -> Route:
    """The first route whose required parameters are all given."""
    for route in operation.routes:
        if all(arguments.get(p.name) is not None for p in route.params if p.required and p.kind != "actor"):
            return route
    raise TypeError(f"{operation.name}() is missing required arguments")


def _wire(param: Param, value: Any) -> Any:
    """A query value as the API reads it back exactly."""
    if param.kind in ("time", "duration"):
        return wire_number(value.total_seconds() if isinstance(value, timedelta) else value)
    if param.kind == "labels":
        return format_labels(value)
    if isinstance(value, bool):
        return str(value).lower()
    return value


def _json(value: Any) -> Any:
    """A body value as JSON: models dumped, durations as seconds."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def _error(response: httpx.Response) -> CrucibleError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return error_for_status(response.status_code, body, response.text)


@functools.cache
def _adapter(name: str) -> TypeAdapter[Any]:
    return TypeAdapter(OPERATIONS[name].result)
