"""One MCP server for many hosts: a ``host`` argument on every tool, ``list_hosts`` and ``get_fleet_status``.

:func:`~crucible_monitor.server.mcp.build_mcp_server` writes each tool once, over ``ops``; with a fleet, ``ops`` is
a :class:`HostOps` that stands for the host of the call in progress, and :meth:`Hosts.tool` registers each tool with a
``host`` argument added (default: this host) that picks it. A call for another host runs the same operation on
``fleet.remote(host)``, a :class:`~crucible_monitor.remote.RemoteMonitor` with that host's own token: its agent
checks that token's scope (on top of the local token's, which still decides what the client sees) and audits its
actions under that token's name. An action forwarded so (acknowledge, silence, restart) is audited here too: who
asked, which host, the outcome. An unknown host is a tool error that lists the valid names.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Annotated, Any, Protocol, TypeVar, cast, get_type_hints

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import Field

from crucible_monitor.errors import CrucibleError
from crucible_monitor.fleet import LOCAL, Fleet
from crucible_monitor.operations import Operations
from crucible_monitor.schemas import FleetStatus, HostList
from crucible_monitor.schemas.views import fenced_host
from crucible_monitor.server.auth import caller

__all__ = ["AuditWriter", "HostOps", "Hosts", "add_fleet_tools", "operations_of"]

logger = logging.getLogger(__name__)

_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])
_Tool = Callable[..., Any]
_READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
_SUBJECTS = ("alert_id", "silence_id", "service", "matchers")
"""The arguments that name what a forwarded action acts on, for its local audit record."""
_REASONS = ("reason", "note")


class AuditWriter(Protocol):
    """Writes one audit record of this host (``StateDB.add_audit``) and returns its id."""

    def __call__(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        reason: str,
        dry_run: bool,
        result: str,
        detail: str,
        claimed_by: str | None = None,
    ) -> int: ...


_CALL_HOST: ContextVar[Operations | None] = ContextVar("crucible_call_host", default=None)


class Hosts:
    """This host's operations, the fleet's, and where forwarded actions are audited here.

    Args:
        local: this host's operations (a Monitor, or a RemoteMonitor of the agent next to a stdio server).
        fleet: the other hosts; None (or one with no host listed nor discovered): tools take no ``host``.
        audit: records a forwarded action in this host's audit; None where this process holds no ``state.db``
            (stdio next to a running agent): the forward is logged only.
        transport: how clients reach this server, for who asks without a token (``mcp-stdio``).
    """

    def __init__(
        self, local: Operations, fleet: Fleet | None, *, audit: AuditWriter | None = None, transport: str = "memory"
    ) -> None:
        self.local = local
        self.fleet = fleet if fleet is not None and fleet.config.active else None
        self.audit = audit
        self.transport = transport

    def current(self) -> Operations:
        """The operations of the host the call in progress is for (this host outside a call)."""
        return _CALL_HOST.get() or self.local

    def forwarding(self) -> bool:
        """Whether the call in progress is for another host."""
        return _CALL_HOST.get() not in (None, self.local)

    async def select(self, host: str | None) -> Operations:
        """The operations of ``host`` (None or ``local``: this host).

        Raises:
            ToolError: no host has this name (the message lists the valid ones).
        """
        if host is None or host == LOCAL or self.fleet is None:
            return self.local
        await self.fleet.refresh()
        try:
            return self.fleet.remote(host)
        except CrucibleError as exc:
            raise ToolError(str(exc)) from None

    def tool(self, mcp: MCPServer) -> Callable[..., Callable[[_Tool], _Tool]]:
        """``mcp.tool``, adding the ``host`` argument to each tool when there is a fleet."""

        def decorator(**options: Any) -> Callable[[_Tool], _Tool]:
            register = mcp.tool(**options)
            if self.fleet is None:
                return register
            annotations = options.get("annotations")
            action = isinstance(annotations, ToolAnnotations) and annotations.read_only_hint is False
            return lambda fn: register(self._routed(fn, action=action))

        return decorator

    def _routed(self, fn: _F, *, action: bool) -> _F:
        """``fn`` with a keyword ``host`` argument that picks the operations it runs on."""
        signature = inspect.signature(fn, eval_str=True)
        hints = get_type_hints(fn, include_extras=True)
        host_type = str | None  # no description: the server's instructions say it once, not on every tool
        parameter = inspect.Parameter("host", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=host_type)

        @functools.wraps(fn)
        async def routed(*args: Any, host: str | None = None, **kwargs: Any) -> Any:
            ops = await self.select(host)
            token = _CALL_HOST.set(ops)
            try:
                if not action or ops is self.local:
                    return await fn(*args, **kwargs)
                return await self._forwarded(fn, str(host), kwargs)
            finally:
                _CALL_HOST.reset(token)

        # what the SDK reads to build the tool's arguments: fn's, and host
        routed.__dict__["__signature__"] = signature.replace(parameters=[*signature.parameters.values(), parameter])
        routed.__annotations__ = {**hints, "host": host_type}
        return cast(_F, routed)

    async def _forwarded(self, fn: Callable[..., Awaitable[Any]], host: str, kwargs: dict[str, Any]) -> Any:
        """Run the action ``fn`` on ``host`` and audit here who asked, which host and the outcome."""
        ctx = next((v for v in kwargs.values() if isinstance(v, Context)), None)
        who, claimed = caller(ctx, self.transport) if ctx is not None else (f"mcp-{self.transport}", None)
        subject = ", ".join(f"{k}={kwargs[k]}" for k in _SUBJECTS if kwargs.get(k) is not None)
        reason = next((str(kwargs[k]) for k in _REASONS if kwargs.get(k)), "")
        record = {
            "actor": who,
            "claimed_by": claimed,
            "action": fn.__name__,
            "target": f"{host}: {subject}" if subject else host,
            "reason": reason,
            "dry_run": bool(kwargs.get("dry_run", False)),
        }
        try:
            result = await fn(**kwargs)
        except ToolError as exc:
            self._audit(record, "failed", f"forwarded to {host}: {exc}")
            raise
        outcome = getattr(result, "result", None) or "done"  # a restart's: restarted, declined, dry_run...
        self._audit(record, "forwarded", f"forwarded to {host}: {outcome}")
        return result

    def _audit(self, record: dict[str, Any], result: str, detail: str) -> None:
        logger.info("%s by %s on %s: %s", record["action"], record["actor"], record["target"], detail)
        if self.audit is not None:
            self.audit(**record, result=result, detail=detail)


class HostOps:
    """Operations that stand for the host of the tool call in progress (see :meth:`Hosts.current`)."""

    def __init__(self, hosts: Hosts) -> None:
        self._hosts = hosts

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hosts.current(), name)


def operations_of(hosts: Hosts) -> Operations:
    """What the tools call: this host's operations without a fleet, else a :class:`HostOps`."""
    return hosts.local if hosts.fleet is None else cast(Operations, HostOps(hosts))


def add_fleet_tools(mcp: MCPServer, hosts: Hosts) -> None:
    """``list_hosts`` and ``get_fleet_status``, when there is a fleet."""
    fleet = hosts.fleet
    if fleet is None:
        return

    async def local_status() -> Any:
        try:
            return await hosts.local.status_summary()
        except CrucibleError as exc:
            raise ToolError(f"this host's status: {exc}") from None

    @mcp.tool(annotations=_READ)
    async def list_hosts(limit: Annotated[int, Field(ge=1, le=500)] = 50) -> HostList:
        """The hosts tools take as host=<name> (local: this one), each with its headline."""
        hosts_now = await fleet.statuses(await local_status())
        return HostList(
            hosts=[h.model_copy(update={"worst": None}) for h in hosts_now[:limit]],
            total=len(hosts_now),
            limit=limit,
            truncated=len(hosts_now) > limit,
        )

    @mcp.tool(annotations=_READ)
    async def get_fleet_status(limit: Annotated[int, Field(ge=1, le=500)] = 20) -> FleetStatus:
        """Hosts ranked by their worst incident (critical, unreachable with why, warning, ok), each with its
        headline and first incident."""
        ranking = await fleet.status(await local_status(), limit=limit)
        return ranking.model_copy(update={"hosts": [fenced_host(h) for h in ranking.hosts]})
