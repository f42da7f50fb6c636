"""Characters the model reads: tools/list and every tool result in a scripted incident, through the MCP client.

The scene is tests/token_scene.py (a real supervisord with one program stopped, three real HTTP checks on loopback
of which one flapped and one fails, a firing alert, real-format Laravel and Caddy logs). Each size is the length of
the result's text content as the client receives it; beside it, what the SDK's default would have sent (its
indented JSON, and its full schemas in tools/list).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pydantic_core
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.types import TextContent

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from token_scene import CALLS, FLAPS, PROMPTS, scene_fleet, token_scene  # noqa: E402  (the tests' scene)

from crucible_monitor.monitor import Monitor  # noqa: E402
from crucible_monitor.server.compact import compact_json  # noqa: E402
from crucible_monitor.server.mcp import build_mcp_server  # noqa: E402

__all__ = ["render", "run"]


def _tools_chars(tools: list[Any]) -> int:
    return len(compact_json([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]))


async def _measure() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        async with token_scene(Path(tmp)) as scene:
            monitor = Monitor(scene.agent)
            tools: dict[str, dict[str, int]] = {}
            fleet = scene_fleet()
            for key, read_only, with_fleet in (
                ("all", False, None),
                ("read_only", True, None),
                ("fleet", False, fleet),
            ):
                server = build_mcp_server(monitor, read_only=read_only, fleet=with_fleet)
                async with Client(server) as client:
                    listed = (await client.list_tools()).tools
                sdk_default = await MCPServer.list_tools(server)
                tools[key] = {"tools": len(listed), "chars": _tools_chars(listed), "sdk": _tools_chars(sdk_default)}
            calls: list[dict[str, Any]] = []
            async with Client(build_mcp_server(monitor, read_only=False, fleet=fleet)) as client:
                for name, arguments in CALLS:
                    result = await client.call_tool(name, arguments)
                    content = result.content[0]
                    body = content.text if isinstance(content, TextContent) else ""
                    structured = result.structured_content
                    indented = len(pydantic_core.to_json(structured, indent=2).decode()) if structured else len(body)
                    calls.append(
                        {
                            "call": f"{name}({compact_json(arguments)[1:-1]})",
                            "chars": len(body),
                            "sdk": indented,
                            "error": result.is_error,
                        }
                    )
                prompts = []
                for name, prompt_arguments in PROMPTS:
                    prompt = await client.get_prompt(name, prompt_arguments)
                    chars = sum(len(m.content.text) for m in prompt.messages if isinstance(m.content, TextContent))
                    prompts.append({"prompt": name, "chars": chars})
            await fleet.aclose()
    return {"tools_list": tools, "calls": calls, "prompts": prompts}


def run() -> dict[str, Any]:
    """The sizes of tools/list, every read tool's result and the prompts in the scene."""
    return asyncio.run(_measure())


def render(tokens: dict[str, Any]) -> str:
    """The section of docs/benchmarks.md with the sizes."""
    full, read_only = tokens["tools_list"]["all"], tokens["tools_list"]["read_only"]
    rows = [
        f"| `tools/list` ({full['tools']} tools) | {full['chars']:,} | {full['sdk']:,} |",
        f"| `tools/list`, `actions.read_only` ({read_only['tools']} tools) | {read_only['chars']:,} | "
        f"{read_only['sdk']:,} |",
    ]
    if "fleet" in tokens["tools_list"]:
        fleet = tokens["tools_list"]["fleet"]
        rows.append(
            f"| `tools/list` with `fleet.hosts` ({fleet['tools']} tools) | {fleet['chars']:,} | {fleet['sdk']:,} |"
        )
    for call in tokens["calls"]:
        note = " (an error: MySQL is not watched)" if call["error"] and call["call"].startswith("slow_") else ""
        note = note or (" (an error)" if call["error"] else "")
        rows.append(f"| `{call['call']}`{note} | {call['chars']:,} | {call['sdk']:,} |")
    rows += [f"| prompt `{p['prompt']}` | {p['chars']:,} | |" for p in tokens["prompts"]]
    table = "\n".join(rows)
    biggest = max(tokens["calls"], key=lambda c: c["chars"])
    return f"""## Characters the model reads

Measured by `benchmarks/bench_tokens.py` through the in-memory MCP client in the scripted incident of
`tests/token_scene.py` (a real supervisord with one program stopped, three real HTTP checks of which one flapped
{FLAPS} times and one fails, a firing alert, Laravel and Caddy logs; the fleet's tools with one other host, whose
agent does not answer). "SDK default" is what the MCP SDK would send
without `server/compact.py`: indented JSON, full output schemas and titles. The budgets are tests
(`tests/server/test_token_budgets.py`): `tools/list` ≤ 20,000, `get_system_status` ≤ 3,000 on a healthy host and
≤ 6,000 in this incident, every result ≤ 15,000 (the largest here: `{biggest["call"]}`, {biggest["chars"]:,}).

| Call | Characters | The same, indented (SDK default) |
|---|---|---|
{table}"""


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
