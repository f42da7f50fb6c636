"""``crucible-monitor mcp``: the MCP server on stdio, next to the running agent (through its API) or, when none
answers, over an embedded agent; with ``fleet:``, for the other hosts too.

Nothing but the protocol goes to stdout; logs go to stderr.
"""

from __future__ import annotations

import logging

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.errors import CrucibleError
from crucible_monitor.fleet import Fleet
from crucible_monitor.monitor import Monitor
from crucible_monitor.operations import Operations
from crucible_monitor.remote import AgentUnavailable, RemoteMonitor
from crucible_monitor.server.mcp import build_mcp_server

__all__ = ["serve_stdio"]

logger = logging.getLogger("crucible_monitor")


async def serve_stdio(config: Config) -> None:
    """Serve MCP on stdio until the client closes it."""
    remote = RemoteMonitor.from_config(config)
    agent: Agent | None = None
    ops: Operations
    try:
        read_only = bool((await remote.get_config())["actions"]["read_only"])
        ops = remote
        logger.info("MCP over stdio, talking to the agent at %s", remote.base_url)
    except (AgentUnavailable, CrucibleError) as exc:
        await remote.aclose()
        logger.info("no agent answers (%s): running an embedded agent with data in %s", exc, config.agent.data_dir)
        agent = Agent(config)
        await agent.start()
        ops, read_only = Monitor(agent), config.actions.read_only
    fleet = Fleet(config.fleet, own_url=f"http://{config.agent.listen_addr}") if config.fleet.active else None
    # a forwarded action is audited here where this process holds state.db (the embedded agent); else logged only
    audit = agent.running.state.add_audit if agent is not None else None
    try:
        server = build_mcp_server(ops, read_only=read_only, transport="stdio", fleet=fleet, audit=audit)
        await server.run_stdio_async()
    finally:
        if fleet is not None:
            await fleet.aclose()
        if agent is not None:
            await agent.stop()
        else:
            await remote.aclose()
