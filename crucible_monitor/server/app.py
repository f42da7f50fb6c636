"""The agent's ASGI application: ``/api/v1``, ``/metrics`` and ``/mcp`` over one Monitor, with the agent's lifespan.

``/mcp`` (streamable HTTP) is built on its first request: importing the MCP SDK costs about a second and 40 MB,
which an agent nobody talks to should not pay at start (see docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Response
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crucible_monitor import __version__
from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.monitor import Monitor
from crucible_monitor.schemas import LogTail
from crucible_monitor.server.api import build_api, install_error_handlers, require_scope, responses
from crucible_monitor.server.prometheus import CONTENT_TYPE_LATEST, exposition
from crucible_monitor.server.stream import follow
from crucible_monitor.tokens import SCOPES, TokenRegistry

if TYPE_CHECKING:
    from crucible_monitor.fleet import Fleet

__all__ = ["AsgiApp", "LazyMcp", "base_url", "bind_listener", "build_app"]


class LazyMcp:
    """The MCP streamable-HTTP app, created on the first request, with its session manager kept running."""

    def __init__(self, monitor: Monitor, tokens: TokenRegistry) -> None:
        self._monitor = monitor
        self._tokens = tokens
        self._app: ASGIApp | None = None
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fleet: Fleet | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app or await self._start()
        await app(scope, receive, send)

    async def _start(self) -> ASGIApp:
        async with self._lock:
            if self._app is not None:
                return self._app
            from mcp.server.transport_security import TransportSecuritySettings  # deferred: see module docstring

            from crucible_monitor.fleet import Fleet
            from crucible_monitor.server.mcp import McpAuth, build_mcp_server

            config = self._monitor.agent.config
            port = config.agent.port
            self._fleet = Fleet(config.fleet, own_url=base_url(config)) if config.fleet.active else None
            server = build_mcp_server(
                self._monitor,
                read_only=config.actions.read_only,
                transport="http",
                auth=McpAuth(tokens=self._tokens, base_url=base_url(config)),
                fleet=self._fleet,
                audit=self._monitor.agent.running.state.add_audit,
            )
            local = [f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", config.agent.listen_addr]
            app = server.streamable_http_app(
                transport_security=TransportSecuritySettings(
                    enable_dns_rebinding_protection=True,
                    allowed_hosts=[*local, *config.mcp.allowed_hosts],
                    allowed_origins=[*(f"http://{h}" for h in local), *config.mcp.allowed_origins],
                )
            )
            ready = asyncio.Event()

            async def run_sessions() -> None:
                async with server.session_manager.run():
                    ready.set()
                    await self._stop.wait()

            self._task = asyncio.create_task(run_sessions())
            await ready.wait()
            self._app = app
            return app

    async def aclose(self) -> None:
        """End the MCP sessions (at agent shutdown)."""
        self._stop.set()
        if self._task is not None:
            await self._task
        if self._fleet is not None:
            await self._fleet.aclose()


AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def bind_listener(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` for the server to listen on: bound before the agent says it serves, so a
    taken port fails first, with the caller's message.

    Raises:
        OSError: the address is taken, not local, or not allowed.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait out TIME_WAIT
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def base_url(config: Config) -> str:
    """The agent's own URL, from its configured address (never from a request's Host header)."""
    return f"http://{config.agent.listen_addr}"


def build_app(agent: Agent, token: str, *, manage_agent: bool = True) -> AsgiApp:
    """The whole HTTP surface of an agent whose default (admin) token is ``token``; with ``manage_agent`` the app's
    lifespan starts and stops it."""
    monitor = Monitor(agent)
    tokens = TokenRegistry(agent.config, token)
    mcp = LazyMcp(monitor, tokens)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_agent:
            await agent.start()
        try:
            yield
        finally:
            await mcp.aclose()
            if manage_agent:
                await agent.stop()

    api = FastAPI(
        title="crucible-monitor",
        version=__version__,
        description=(
            "A monitoring agent for Linux web servers. Every route but /api/v1/health needs a bearer token of the "
            "scope its operation declares (read, operate, admin); a 403 names the scope needed."
        ),
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,  # its redirects take their host from the request's Host header: 404 instead
    )
    install_error_handlers(api)
    api.include_router(build_api(monitor, tokens))
    guarded = [Depends(require_scope(tokens, "read"))]

    @api.get("/metrics", dependencies=guarded, tags=["metrics"], response_class=Response, responses=responses())
    async def metrics() -> Response:
        """The newest value of every series in Prometheus' text exposition format (names prefixed crucible_)."""
        info = {"host": agent.config.agent.hostname, "version": __version__}
        body = exposition(agent.store.latest, agent.catalogue(), info=info, now=agent.clock())
        return Response(content=body, media_type=CONTENT_TYPE_LATEST)

    @api.get("/api/v1/logs/stream", dependencies=guarded, include_in_schema=False)  # never ends: not for fuzzers
    async def logs_stream(
        source: Annotated[str, Query(max_length=300, description="As for /api/v1/logs.")],
        lines: Annotated[int, Query(ge=1, le=500)] = 20,
        contains: Annotated[str | None, Query(max_length=200)] = None,
    ) -> StreamingResponse:
        """A log followed live as server-sent events: its last lines, then each new one (see server/stream.py)."""

        async def tail(count: int) -> LogTail:
            return await monitor.tail_logs(source, lines=count, contains=contains)

        await tail(1)  # an unknown source is a 404 before the stream starts
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(follow(tail, lines=lines), media_type="text/event-stream", headers=headers)

    @api.get("/api/v1/openapi.json", dependencies=guarded, include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return api.openapi()

    @api.get("/.well-known/oauth-protected-resource/mcp", include_in_schema=False)
    @api.get("/.well-known/oauth-protected-resource", include_in_schema=False)
    async def protected_resource() -> dict[str, Any]:
        # RFC 9728, with only what is true: no authorization server exists; tokens come from `token create`.
        if not agent.config.mcp.enabled:
            raise HTTPException(status_code=404, detail="MCP is disabled (mcp.enabled)")
        return {
            "resource": f"{base_url(agent.config)}/mcp",
            "bearer_methods_supported": ["header"],
            "scopes_supported": list(SCOPES),
            "resource_name": "crucible-monitor",
        }

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and path == "/mcp/":
            scope = {**scope, "path": "/mcp", "raw_path": b"/mcp"}  # served as /mcp: no redirect, auth first
            path = "/mcp"
        if scope["type"] == "http" and (path == "/mcp" or path.startswith("/mcp/")) and agent.config.mcp.enabled:
            await mcp(scope, receive, send)
        else:
            await api(scope, receive, _full_allow(api, scope, send))

    return app


def _full_allow(api: FastAPI, scope: Scope, send: Send) -> Send:
    """``send`` with a 405's ``Allow`` naming every method of the path: Starlette names only those of the first
    route that matched (``GET`` of ``/api/v1/config``, whose ``POST`` is another route)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 405:
            path = scope.get("path", "")
            routes = [r for r in api.routes if isinstance(r, APIRoute) and r.path_regex.match(path)]
            methods = {m for r in routes for m in r.methods or ()}
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
            message = {**message, "headers": [*headers, (b"allow", ", ".join(sorted(methods)).encode())]}
        await send(message)

    return sending
