"""What an MCP client over HTTP may see and call: the tools and resources its token's scope reaches.

A tool or resource needs the scope of the operation it stands for, as the operation table declares it
(:data:`~crucible_monitor.operation_table.OPERATIONS`): most tools bear their operation's name, the others are
named here. ``tools/list`` and ``resources/list`` show only what the token reaches; calling a tool above it is a tool
error naming the scope needed, reading a resource above it a resource error. Without a token (stdio, in-memory: the
local user, whose client holds the agent's own token) everything is shown. Prompts read only: every token has that.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import CallToolResult, InputRequiredResult, Resource, ResourceTemplate, Tool
from pydantic import AnyUrl

from crucible_monitor.config import Scope
from crucible_monitor.operation_table import OPERATIONS
from crucible_monitor.server.auth import held_scope
from crucible_monitor.server.compact import CompactServer
from crucible_monitor.tokens import allows

__all__ = ["RESOURCE_OPERATIONS", "TOOL_OPERATIONS", "ScopedServer", "resource_scope", "tool_scope"]

TOOL_OPERATIONS: dict[str, str] = {
    "get_system_status": "status_summary",
    "get_metrics": "metrics_report",
    "list_services": "services",
    "list_http_checks": "http_checks",
    "get_events": "events",
    "get_audit": "audit",
    "list_hosts": "status_summary",  # each host's headline: what get_system_status reads, on every host
    "get_fleet_status": "status_summary",
}
"""The operation of each tool not named after its own."""

RESOURCE_OPERATIONS: dict[str, str] = {
    "crucible://status": "status_summary",
    "crucible://config": "get_config",
    "crucible://metrics/{name}": "metrics_report",
}
"""The operation of each resource (or resource template)."""


def tool_scope(name: str) -> Scope:
    """The scope tool ``name`` needs: its operation's; ``admin`` for a tool that stands for none (a test lists every
    tool, so none should)."""
    operation = OPERATIONS.get(TOOL_OPERATIONS.get(name, name))
    return operation.scope if operation is not None else "admin"


def resource_scope(uri: str) -> Scope:
    """The scope the resource at ``uri`` (or of the template that serves it) needs; ``admin`` when unknown."""
    if uri in RESOURCE_OPERATIONS:
        return OPERATIONS[RESOURCE_OPERATIONS[uri]].scope
    for template, operation in RESOURCE_OPERATIONS.items():
        prefix = template.partition("{")[0]
        if "{" in template and uri.startswith(prefix):
            return OPERATIONS[operation].scope
    return "admin"


def _reaches(needed: Scope) -> bool:
    held = held_scope()
    return held is None or allows(held, needed)


def _refusal(what: str, needed: Scope) -> str:
    return f"{what} needs a token of scope {needed} (or above); this token is {held_scope()}"


class ScopedServer(CompactServer):
    """:class:`CompactServer` that shows and runs only what the caller's token reaches (see the module's docstring)."""

    async def list_tools(self) -> list[Tool]:
        """The tools the token's scope reaches."""
        return [tool for tool in await super().list_tools() if _reaches(tool_scope(tool.name))]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """The tool's result, or a tool error naming the scope it needs.

        Raises:
            ToolError: the token's scope is below the tool's.
        """
        needed = tool_scope(name)
        if not _reaches(needed) and name in {tool.name for tool in await MCPServer.list_tools(self)}:
            raise ToolError(_refusal(name, needed))  # an unknown name is the SDK's "Unknown tool"
        return await super().call_tool(name, arguments, context)

    async def list_resources(self) -> list[Resource]:
        """The resources the token's scope reaches."""
        return _visible(await super().list_resources(), lambda r: str(r.uri))

    async def list_resource_templates(self) -> list[ResourceTemplate]:
        """The resource templates the token's scope reaches."""
        return _visible(await super().list_resource_templates(), lambda t: t.uri_template)

    async def read_resource(self, uri: AnyUrl | str, context: Context[Any, Any] | None = None) -> Any:
        """The resource's contents.

        Raises:
            ResourceError: the token's scope is below the resource's.
        """
        needed = resource_scope(str(uri))
        if not _reaches(needed):
            raise ResourceError(_refusal(str(uri), needed))
        return await super().read_resource(uri, context)


def _visible(items: Iterable[Any], uri: Any) -> list[Any]:
    return [item for item in items if _reaches(resource_scope(uri(item)))]
