"""``crucible-monitor dashboard --serve``: the same dashboard in a browser (textual-serve), behind the agent's token.

textual-serve runs one dashboard process per browser tab and streams its screen over a websocket. It has no
authentication of its own, so every route here first needs the agent's API token: ``/?token=…`` once (it sets an
HttpOnly, SameSite=Strict cookie and redirects to ``/``), the cookie after that; anything else is a 401. It listens
on 127.0.0.1 unless told otherwise. The dashboard processes get the agent's URL on their command line and the token
in their environment (``CRUCIBLE_MONITOR_TOKEN``), never on a command line other users can read in ``/proc``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import shlex
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from textual_serve.server import Server

from crucible_monitor.tui.command import TOKEN_ENV

__all__ = ["COOKIE", "TOKEN_ENV", "TokenGatedServer", "serve"]

COOKIE = "crucible_dashboard"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _cookie_value(token: str) -> str:
    """What the cookie holds: a digest of the token, not the token."""
    return hashlib.sha256(f"crucible-dashboard:{token}".encode()).hexdigest()


class TokenGatedServer(Server):
    """textual-serve's server with every route behind the agent's token."""

    def __init__(self, command: str, token: str, **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self._token = token
        self._cookie = _cookie_value(token)

    def initialize_logging(self) -> None:
        """textual-serve's logging, without aiohttp's access log: its lines would hold ``?token=``."""
        super().initialize_logging()
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._gate)
        return app

    @web.middleware
    async def _gate(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        given = request.query.get("token")
        if given is not None and hmac.compare_digest(given.encode(), self._token.encode()):
            response = web.HTTPFound("/")
            response.set_cookie(COOKIE, self._cookie, httponly=True, samesite="Strict", path="/")
            raise response
        cookie = request.cookies.get(COOKIE, "")
        if not hmac.compare_digest(cookie.encode(), self._cookie.encode()):
            return web.Response(status=401, text="open /?token=<the agent's API token> once\n")
        return await handler(request)


def serve(url: str, token: str, *, listen: str, refresh: float, read_only: bool) -> None:
    """Serve the dashboard of the agent at ``url`` on ``listen`` (host:port) until interrupted."""
    host, _, port = listen.rpartition(":")
    argv = [sys.executable, "-m", "crucible_monitor.cli", "dashboard", "--url", url, "--refresh", f"{refresh:g}"]
    if read_only:
        argv.append("--read-only")
    os.environ[TOKEN_ENV] = token  # inherited by each dashboard process
    server = TokenGatedServer(shlex.join(argv), token, host=host or "127.0.0.1", port=int(port), title="crucible")
    print(f"dashboard at http://{host or '127.0.0.1'}:{port}/?token=<the agent's API token>", flush=True)
    server.serve()
