"""A real agent for the MCP tests (real /proc, a Laravel app, a Caddy access log, an application log file, one alert
rule that always fires, a secret to redact), with or without a supervisord to watch; and small MCP client helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp.types import CallToolResult, ElicitResult, GetPromptResult, ReadResourceResult, TextContent

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.storage.state import AuditRecord

__all__ = ["SECRET", "accept", "agent_config", "audit_of", "decline", "running_agent", "text"]

SECRET = "smtp-password-never-shown"
RULES = """
rules:
  - name: AlwaysFiring
    kind: threshold
    metric: memory_total_bytes
    op: ">"
    value: 0
    for: 0s
    severity: critical
    annotations:
      summary: "a test rule that always fires"
"""
FIXTURES = Path(__file__).parent / "fixtures" / "apps"


def text(result: CallToolResult | GetPromptResult | ReadResourceResult) -> str:
    """The text of a tool result, of a prompt's first message, or of a resource's first contents."""
    if isinstance(result, ReadResourceResult):
        contents = result.contents[0]
        assert hasattr(contents, "text"), contents
        return str(contents.text)
    content = result.content[0] if isinstance(result, CallToolResult) else result.messages[0].content
    assert isinstance(content, TextContent), content
    return content.text


async def accept(context: Any, params: Any) -> ElicitResult:
    """An elicitation callback: the user agrees."""
    return ElicitResult(action="accept", content={"ok": True})


async def decline(context: Any, params: Any) -> ElicitResult:
    """An elicitation callback: the user declines."""
    return ElicitResult(action="decline")


def _app_files(tmp_path: Path) -> tuple[Path, Path]:
    """A Laravel app directory with a real-format log, and an empty Caddy access log."""
    app = tmp_path / "shop"
    (app / "storage" / "logs").mkdir(parents=True)
    (app / "storage" / "logs" / "laravel.log").write_bytes((FIXTURES / "laravel" / "laravel.log").read_bytes())
    access = tmp_path / "access.log"
    access.touch()
    return app, access


def agent_config(tmp_path: Path, *, supervisor_url: str | None = None, **collectors: Any) -> Config:
    """The agent's config in ``tmp_path`` (its access log is ``tmp_path / "access.log"``).

    Supervisor is watched only at ``supervisor_url``; Parquet is written in-process (a worker process per flush
    would be most of a test's time); ``collectors`` adds collector sections (``http_checks=[...]``).
    """
    rules = tmp_path / "alerts.yaml"
    rules.write_text(RULES, encoding="utf-8")
    app, access = _app_files(tmp_path)
    app_log = tmp_path / "laravel.log"
    app_log.write_text(
        "".join(f"[2026-11-28 10:00:{i:02d}] production.INFO: request {i}\n" for i in range(30))
        + "[2026-11-28 10:01:00] production.ERROR: SQLSTATE[HY000] [2002] Connection refused\n",
        encoding="utf-8",
    )
    supervisor = {"url": supervisor_url} if supervisor_url else {"enabled": False}
    return Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "hostname": "shop-1"},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {
                "services": {"systemd": {"enabled": False}, "supervisor": supervisor},
                "laravel": {"apps": [{"name": "shop", "path": str(app), "queue_driver": "none"}]},
                "access_logs": {"files": [{"path": str(access), "format": "caddy"}]},
                **collectors,
            },
            "actions": {"restart_allowlist": ["web-worker"], "restart_backoff": "1ms"},
            "logs": {"files": {"laravel": str(app_log)}},
            # resource thresholds off: this machine's real load must not change what the tests expect
            "alerts": {
                "cpu_threshold": None,
                "memory_threshold": None,
                "disk_threshold": None,
                "rules_file": str(rules),
            },
            "notifications": {"email": {"password": SECRET}},
        }
    )


@asynccontextmanager
async def running_agent(config: Config) -> AsyncIterator[Agent]:
    """An agent with two system readings (so CPU has a rate), its services and its processes collected."""
    agent = Agent(config)
    await agent.start(schedule=False)
    try:
        with anyio.fail_after(5):
            while not agent.store.latest("cpu_usage_ratio", {"cpu": "total"}):
                await agent.run_collector("system")
        await agent.run_collector("services")
        await agent.run_collector("processes")
        yield agent
    finally:
        await agent.stop()


def audit_of(agent: Agent, target: str) -> list[AuditRecord]:
    """The audit records of ``target``, newest first."""
    return agent.running.state.audit(target=target)
