"""An MCP server that spends few of the model's tokens: compact JSON text and lean schemas in ``tools/list``.

The SDK writes a tool's structured result as indented JSON text (a ``[time, value]`` point takes four lines) and
lists each tool's full output schema, per-field descriptions and titles included (most of ``tools/list``). Here a
result's text is the same structured content as compact JSON without its null fields (an absent key reads as
unknown; the structured content keeps them), input schemas lose the titles pydantic adds (the
descriptions stay: they say what each argument means), and output schemas keep the top level only: each field's
name, which the structured content still conforms to.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, InputRequiredResult, TextContent, Tool

__all__ = ["CompactServer", "compact_json", "lean_input_schema", "lean_output_schema", "without_nulls"]


def without_nulls(value: Any) -> Any:
    """``value`` with the null entries of its objects left out, at every depth (list items are kept)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def compact_json(value: object) -> str:
    """``value`` as JSON without indentation or spaces after separators, non-ASCII kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def lean_input_schema(node: Any, *, described: bool = False) -> Any:
    """``node`` without the ``title`` of every schema in it (a property may still be named ``title``), and without
    the descriptions nested below a property that has its own (``described``)."""
    if isinstance(node, list):
        return [lean_input_schema(item, described=described) for item in node]
    if not isinstance(node, dict):
        return node
    lean: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "description" and described:
            continue
        if key in ("properties", "$defs"):
            lean[key] = {name: _lean_property(schema) for name, schema in value.items()}
        else:
            lean[key] = lean_input_schema(value, described=described)
    return lean


def _lean_property(schema: dict[str, Any]) -> dict[str, Any]:
    """One property's schema, lean; an optional one (``X`` or null, default null) reads as ``X``: leaving it out
    is how a client asks for the default."""
    described = "description" in schema
    options = schema.get("anyOf", [])
    if schema.get("default", ...) is None and len(options) == 2 and {"type": "null"} in options:
        [kept] = [option for option in options if option != {"type": "null"}]
        schema = {**kept, **{k: v for k, v in schema.items() if k not in ("anyOf", "default")}}
    return {
        k: v if k == "description" else lean_input_schema(v, described=described)
        for k, v in schema.items()
        if k != "title"
    }


def lean_output_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An object schema naming the top-level fields only (the text content shows every value in full)."""
    return {"type": "object", "properties": dict.fromkeys(schema.get("properties", {}), {})}


class CompactServer(MCPServer):
    """:class:`MCPServer` with compact result text and lean tool schemas (see the module's docstring)."""

    async def list_tools(self) -> list[Tool]:
        """The tools with titles dropped from input schemas and output schemas cut to their top level."""
        return [
            tool.model_copy(
                update={
                    "description": " ".join((tool.description or "").split()),
                    "input_schema": lean_input_schema(tool.input_schema),
                    "output_schema": lean_output_schema(tool.output_schema) if tool.output_schema else None,
                }
            )
            for tool in await super().list_tools()
        ]

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """The SDK's result, its text replaced by the structured content as compact JSON."""
        result = await super().call_tool(name, arguments, context)
        if isinstance(result, CallToolResult) and result.structured_content is not None and not result.is_error:
            text = TextContent(type="text", text=compact_json(without_nulls(result.structured_content)))
            return result.model_copy(update={"content": [text]})
        return result
