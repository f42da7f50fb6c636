"""Restarting a service, behind guard rails: read-only mode, an exact allowlist, name validation, a budget with
back-off, confirmation, a dry run, and an audit record of every attempt, refused ones included.

systemd units restart with ``systemctl restart`` as an argument list (prefixed with ``sudo -n`` when
``actions.privilege`` is ``sudo``); supervisor programs through supervisord's XML-RPC API. Never a shell.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.errors import ActionRefused, CollectorError, NotFoundError
from crucible_monitor.managers.supervisor import supervisor_restart, validate_program_name
from crucible_monitor.managers.systemd import run_systemctl, systemctl_restart_argv, validate_unit_name
from crucible_monitor.models import Event, EventKind, Severity, iso
from crucible_monitor.schemas import RestartResult, ServiceStatus
from crucible_monitor.storage.state import StateDB

__all__ = ["RestartRequest", "restart_on", "restart_service"]

ACTION = "restart_service"
_SYSTEMCTL_TIMEOUT = 90.0


@dataclass(frozen=True)
class RestartRequest:
    """Who asks to restart what, why, and whether they confirmed or only want a dry run."""

    service: str
    reason: str
    actor: str
    confirmed: bool
    dry_run: bool = False
    claimed_by: str | None = None


async def restart_on(
    agent: Agent, request: RestartRequest, services: Callable[[], Awaitable[list[ServiceStatus]]]
) -> RestartResult:
    """:func:`restart_service` on a running agent: its config, services (``services()``), state and clock.

    Raises:
        ActionRefused: as :func:`restart_service`.
    """

    async def refresh() -> dict[str, ServiceStatus]:
        await agent.refresh_statuses()
        return {s.name: s for s in await services()}

    return await restart_service(
        request,
        config=agent.config,
        statuses={s.name: s for s in await services()},
        state=agent.running.state,
        refresh=refresh,
        now=agent.clock(),
    )


async def restart_service(
    request: RestartRequest,
    *,
    config: Config,
    statuses: Mapping[str, ServiceStatus],
    state: StateDB,
    refresh: Callable[[], Awaitable[Mapping[str, ServiceStatus]]],
    now: float,
) -> RestartResult:
    """Check the guard rails, then restart (or not) and audit the outcome.

    Raises:
        ActionRefused: read-only mode, no reason, not allowlisted, an invalid name, not a watched service, or the
            budget or back-off says not yet. The refusal is audited too.
    """
    actions = config.actions
    name = request.service
    before = statuses.get(name)

    def audit(result: str, detail: str, after: ServiceStatus | None = None) -> int:
        return state.add_audit(
            actor=request.actor,
            claimed_by=request.claimed_by,
            action=ACTION,
            target=name,
            reason=request.reason,
            dry_run=request.dry_run,
            result=result,
            detail=detail,
            state_before=before.model_dump(mode="json") if before else None,
            state_after=after.model_dump(mode="json") if after else None,
        )

    def refuse(message: str) -> ActionRefused:
        audit("refused", message)
        return ActionRefused(message)

    if actions.read_only:
        raise refuse("actions are disabled (actions.read_only is true)")
    if not request.reason.strip():
        raise refuse("give a reason: it goes into the audit record")
    if name not in actions.restart_allowlist:
        allowed = ", ".join(actions.restart_allowlist) or "none (set actions.restart_allowlist)"
        raise refuse(f"{name!r} is not on the restart allowlist; allowed: {allowed}")
    if before is None:
        raise refuse(f"{name!r} is allowlisted but not a watched service; watched: {', '.join(sorted(statuses))}")
    try:
        if before.manager == "systemd":
            validate_unit_name(name)
        else:
            validate_program_name(name)
    except ValueError as exc:
        raise refuse(str(exc)) from None
    done = [
        r
        for r in state.audit(target=name, action=ACTION, since=now - actions.restart_window.total_seconds())
        if r.result == "restarted"
    ]
    left = actions.restart_budget - len(done)
    if left <= 0:
        oldest = min(r.ts for r in done)
        raise refuse(
            f"restart budget exhausted: {len(done)} restarts of {name} in the last {actions.restart_window}; "
            f"next allowed at {iso(oldest + actions.restart_window.total_seconds())}. Investigate instead: "
            f"get_service(name='{name}')"
        )
    if done:
        wait = actions.restart_backoff.total_seconds() * 2 ** (len(done) - 1)
        last = max(r.ts for r in done)
        if now < last + wait:
            raise refuse(f"back-off: {name} was restarted at {iso(last)}; next allowed at {iso(last + wait)}")

    manager = before.manager

    def outcome(
        result: Literal["restarted", "dry_run", "declined", "failed"],
        message: str,
        detail: str,
        after: ServiceStatus | None = None,
    ) -> RestartResult:
        """Audit the outcome, record actions taken (or failed) as events, and say what happened."""
        audit_id = audit(result, detail, after)
        if result in ("restarted", "failed"):
            severity = Severity.INFO if result == "restarted" else Severity.WARNING
            data = {"actor": request.actor, "audit_id": audit_id}
            state.add_events(
                [Event(EventKind.ACTION, name, f"{message} ({request.actor}: {request.reason})", severity, data)]
            )
        return RestartResult(
            service=name,
            manager=manager,
            result=result,
            message=message,
            before=before,
            after=after,
            audit_id=audit_id,
            restarts_left=left - (result == "restarted"),
        )

    if not request.confirmed:
        return outcome("declined", "not restarted: the restart was not confirmed", "not confirmed")
    argv = _argv(name, config) if manager == "systemd" else None
    what = " ".join(argv) if argv else f"supervisor.stopProcess/startProcess({name!r}) over XML-RPC"
    if request.dry_run:
        return outcome("dry_run", f"dry run: would run {what}", f"would run: {what}")
    try:
        if argv is not None:
            await asyncio.to_thread(run_systemctl, argv, timeout=_SYSTEMCTL_TIMEOUT)
        else:
            await asyncio.to_thread(supervisor_restart, config.collectors.services.supervisor, name)
    except (CollectorError, NotFoundError, OSError, subprocess.SubprocessError) as exc:
        detail = _failure(exc)
        return outcome("failed", f"restart of {name} failed: {detail}", detail)
    after = (await refresh()).get(name)
    return outcome("restarted", f"{name} restarted; now {after.state if after else 'unknown'}", "ok", after)


def _argv(unit: str, config: Config) -> list[str]:
    argv = systemctl_restart_argv(unit)
    return ["sudo", "-n", *argv] if config.actions.privilege == "sudo" else argv


def _failure(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        stderr = (exc.stderr or "").strip().splitlines()
        return f"exit status {exc.returncode}" + (f": {stderr[-1]}" if stderr else "")
    return str(exc) or type(exc).__name__
