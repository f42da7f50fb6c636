"""What every MCP tool does with its arguments and errors: our errors become tool errors (the model reads the
message, which lists the valid choices, and retries), times and durations parsed with the argument named, and who
acts for the audit."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from crucible_monitor.errors import CrucibleError
from crucible_monitor.params import parse_seconds, parse_time
from crucible_monitor.server.auth import caller

__all__ = ["actor", "guarded", "seconds_arg", "time_arg", "tool_errors"]

_T = TypeVar("_T")


@contextmanager
def tool_errors() -> Iterator[None]:
    """Our errors become ToolErrors: the model reads the message (which lists the valid choices) and retries."""
    try:
        yield
    except CrucibleError as exc:
        raise ToolError(str(exc)) from None


async def guarded(call: Awaitable[_T]) -> _T:
    """``await call``, its errors as :func:`tool_errors` makes them."""
    with tool_errors():
        return await call


def time_arg(text: str, name: str) -> float:
    """The time argument ``name`` in Unix seconds; a tool error naming it and the valid forms."""
    try:
        return parse_time(text, time.time())
    except ValueError as exc:
        raise ToolError(f"{name}: {exc}") from None


def seconds_arg(text: str, name: str) -> float:
    """The duration argument ``name`` in seconds; a tool error naming it and the valid forms."""
    try:
        return parse_seconds(text)
    except ValueError as exc:
        raise ToolError(f"{name}: {exc}") from None


def actor(ctx: Context[Any, Any], transport: str) -> str:
    """Who acks or silences: the token's name, then what the client says (``ops-bot (mcp-http (Claude 1.0))``)."""
    who, claimed = caller(ctx, transport)
    return f"{who} ({claimed})" if claimed and claimed != who else who
