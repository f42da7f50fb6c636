"""The dashboard's actions, each confirmed first: acknowledge an alert, silence it for a duration, restart an
allowlisted service (the confirmation shows the agent's own dry-run text; the audit record follows).

A refused call (read-only agent, a token without the scope, a service off the allowlist) is shown with the agent's
reason and the action greyed out; nothing here raises into the app.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Static

from crucible_monitor.errors import CrucibleError
from crucible_monitor.params import parse_seconds
from crucible_monitor.schemas import AlertView
from crucible_monitor.tui.source import Context

__all__ = ["allowed", "ACTIONS", "ConfirmModal", "DurationModal", "acknowledge", "restart", "silence"]

ACTIONS = frozenset({"acknowledge", "silence", "restart"})
"""The bindings that change something on the agent: hidden with ``--read-only``."""


def allowed(ctx: Context, action: str) -> bool | None:
    """Textual's ``check_action`` for the dashboard's actions: hidden read-only (False), greyed out (None) once the
    agent refused one (the reason is in a notice), shown otherwise."""
    if action in ACTIONS:
        if ctx.read_only:
            return False
        if action in ctx.refused:
            return None
    return True


class ConfirmModal(ModalScreen[bool]):
    """A question with Yes and No; ``y``/``n``/``escape`` answer it from the keyboard."""

    BINDINGS = [Binding("y", "answer(True)", "Yes"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, title: str, body: str) -> None:
        """Args:
        title: what is about to happen.
        body: the details (the agent's dry-run text), shown as plain text.
        """
        super().__init__()
        self.title_text, self.body = title, body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text, style="bold"))
            yield Static(Text(self.body), id="confirm-body")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", variant="primary", id="no")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class DurationModal(ModalScreen[timedelta | None]):
    """Ask how long to silence: ``30m``, ``2h``, ``1d``; a bad entry says what is accepted and stays open."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, what: str, default: str = "1h") -> None:
        """Args:
        what: the alert being silenced, for the title.
        default: the duration shown first.
        """
        super().__init__()
        self.what, self.default = what, default

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(f"Silence {self.what} for how long?", style="bold"))
            yield Input(self.default, placeholder="e.g. 30m, 2h, 1d", id="duration")
            yield Static(Text("Enter to silence, Escape to cancel", style="dim"), id="duration-hint")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        try:
            seconds = parse_seconds(event.value.strip())
        except ValueError as exc:
            self.query_one("#duration-hint", Static).update(Text(str(exc), style="red"))
            return
        if seconds <= 0:
            self.query_one("#duration-hint", Static).update(Text("the duration must be positive", style="red"))
            return
        self.dismiss(timedelta(seconds=seconds))

    def action_cancel(self) -> None:
        self.dismiss(None)


def _refused(screen: Screen[Any], ctx: Context, action: str, exc: CrucibleError) -> None:
    """Show why the agent refused; a refusal of permission (read-only agent, token scope) greys the action out for
    the rest of the session, one of the moment (budget, back-off, allowlist) only says so."""
    message = str(exc)
    permanent = ("read_only", "scope", "refused the token", "not allowed")
    if any(word in message for word in permanent):
        ctx.refused[action] = str(exc)
        screen.refresh_bindings()
    ctx.last_action = f"{action} refused: {message}"
    screen.notify(message, title=f"{action} refused", severity="error", timeout=10)


async def acknowledge(screen: Screen[Any], ctx: Context, alert: AlertView) -> AlertView | None:
    """Confirm, then acknowledge ``alert`` as the dashboard's actor; returns the alert as the agent now has it."""
    if alert.acknowledgement is not None:
        screen.notify(f"alert {alert.id} is already acknowledged by {alert.acknowledgement.by}")
        return None
    ask = ConfirmModal(f"Acknowledge alert {alert.id} ({alert.name})?", _describe(alert))
    if not await screen.app.push_screen_wait(ask):
        return None
    try:
        result: AlertView = await ctx.ops.acknowledge_alert(alert.id, by=ctx.actor)
    except CrucibleError as exc:
        _refused(screen, ctx, "acknowledge", exc)
        return None
    ctx.last_action = f"alert {alert.id} ({alert.name}) acknowledged by {ctx.actor}"
    screen.notify(ctx.last_action, title="acknowledged")
    await screen.app.run_action("refresh")
    return result


async def silence(screen: Screen[Any], ctx: Context, alert: AlertView) -> None:
    """Ask for a duration, then silence alerts with ``alert``'s labels for that long."""
    duration = await screen.app.push_screen_wait(DurationModal(f"{alert.name} (alert {alert.id})"))
    if duration is None:
        return
    matchers = [f"{k}={v}" for k, v in sorted(alert.labels.items())]
    try:
        made = await ctx.ops.silence_alerts(
            matchers, duration=duration, reason=f"silenced from the dashboard (alert {alert.id})", author=ctx.actor
        )
    except CrucibleError as exc:
        _refused(screen, ctx, "silence", exc)
        return
    ctx.last_action = f"silence {made.id} on {', '.join(matchers)} until {made.ends_at}"
    screen.notify(ctx.last_action, title="silenced")
    await screen.app.run_action("refresh")


async def restart(screen: Screen[Any], ctx: Context, name: str) -> None:
    """Dry-run the restart (the agent checks allowlist, budget and back-off and says what it would run), confirm
    with that text, restart, then show the result and its audit record."""
    reason = "restarted from the dashboard"
    try:
        dry = await ctx.ops.restart_service(name, reason=reason, actor=ctx.actor, confirmed=True, dry_run=True)
    except CrucibleError as exc:
        _refused(screen, ctx, "restart", exc)
        return
    body = f"{dry.message}\nmanager: {dry.manager}; restarts left in the budget: {dry.restarts_left}"
    if not await screen.app.push_screen_wait(ConfirmModal(f"Restart {name}?", body)):
        return
    try:
        result = await ctx.ops.restart_service(name, reason=reason, actor=ctx.actor, confirmed=True)
    except CrucibleError as exc:
        _refused(screen, ctx, "restart", exc)
        return
    try:
        audit = (await ctx.ops.audit(target=name)).records
    except CrucibleError as exc:  # the restart happened; only its record could not be read
        audit, missing = [], f"audit #{result.audit_id} (not readable: {exc})"
    else:
        missing = f"audit #{result.audit_id}"
    record = next((a for a in audit if a.id == result.audit_id), None)
    lines = [f"restart {name} {result.result}: {result.message}"]
    if record is not None:
        lines.append(
            f"audit #{record.id} {record.ts} by {record.actor}: {record.action} {record.target} → {record.result}"
        )
    else:
        lines.append(missing)
    ctx.last_action = "; ".join(lines)
    screen.notify(
        "\n".join(lines),
        title=f"restart {name}",
        severity="information" if result.result == "restarted" else "error",
        timeout=15,
    )
    await screen.app.run_action("refresh")


def _describe(alert: AlertView) -> str:
    labels = " ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    summary = alert.annotations.get("summary", "")
    return f"{alert.severity} · {alert.state} since {alert.active_since}\n{summary}\n{labels}".strip()
