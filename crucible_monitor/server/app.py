"""The agent's ASGI application: ``/api/v1`` and ``/metrics`` over one Monitor, with the agent's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response

from crucible_monitor import __version__
from crucible_monitor.agent import Agent
from crucible_monitor.monitor import Monitor
from crucible_monitor.server.api import build_api, install_error_handlers, require_token
from crucible_monitor.server.prometheus import CONTENT_TYPE_LATEST, exposition

__all__ = ["build_app"]


def build_app(agent: Agent, token: str, *, manage_agent: bool = True) -> FastAPI:
    """The whole HTTP surface of an agent; with ``manage_agent`` the app's lifespan starts and stops it."""
    monitor = Monitor(agent)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_agent:
            await agent.start()
        try:
            yield
        finally:
            if manage_agent:
                await agent.stop()

    app = FastAPI(
        title="crucible-monitor",
        version=__version__,
        description="A monitoring agent for Linux web servers. Every route but /api/v1/health needs the bearer token.",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.include_router(build_api(monitor, token))
    guarded = [require_token(token)]

    @app.get("/metrics", dependencies=guarded, tags=["metrics"], response_class=Response)
    async def metrics() -> Response:
        """The newest value of every series in Prometheus' text exposition format (names prefixed crucible_)."""
        body = exposition(agent.store.latest, agent.catalogue())
        return Response(content=body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/openapi.json", dependencies=guarded, include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    app.state.monitor = monitor
    return app
