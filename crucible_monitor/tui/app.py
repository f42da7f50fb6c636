"""The dashboard application: one refresh loop for every screen, the command palette, help and themes.

:func:`build_app` wires it over any :class:`~crucible_monitor.operations.Operations` (a
:class:`~crucible_monitor.remote.RemoteMonitor` in practice). Each refresh runs in a worker, one at a time (a slow agent
skips refreshes rather than having each cancelled by the next); the
screens on the stack are then told to redraw from the shared :class:`~crucible_monitor.tui.source.Context`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Protocol, runtime_checkable

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.screen import Screen

from crucible_monitor.errors import CrucibleError
from crucible_monitor.operations import Operations
from crucible_monitor.remote import AgentUnavailable
from crucible_monitor.tui.details import AlertScreen, ProcessScreen, ServiceScreen
from crucible_monitor.tui.history import HistoryScreen
from crucible_monitor.tui.overview import OverviewScreen
from crucible_monitor.tui.source import Context, StatusData, fetch_status, gpu_rows, recent_anomalies, seed_trends

__all__ = ["DashboardApp", "build_app"]


@runtime_checkable
class Shows(Protocol):
    """A screen that redraws from the context after each refresh."""

    def show(self, fresh: bool = True) -> None: ...


class GoTo(Provider):
    """Command palette entries: go to a service, an alert, the processes or the history of a metric."""

    @property
    def dashboard(self) -> DashboardApp:
        app = self.app
        assert isinstance(app, DashboardApp)
        return app

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        app = self.dashboard
        ctx = app.ctx
        data = ctx.conn.data
        entries: list[tuple[str, str, Callable[[], Screen[None]]]] = []
        if data is not None:
            for service in data.services:
                service_screen = partial(ServiceScreen, ctx, service.name)
                entries.append((f"go to service {service.name}", f"{service.state}, {service.manager}", service_screen))
            for alert in data.alerts:
                alert_screen = partial(AlertScreen, ctx, alert.id)
                entries.append((f"go to alert {alert.id} {alert.name}", alert.severity, alert_screen))
        entries.append(("go to processes", "sortable by CPU and memory, / to filter", partial(ProcessScreen, ctx)))
        entries.append(("go to history", "charts over 1h, 24h, 7d, 30d", partial(HistoryScreen, ctx)))
        for text, help_text, factory in entries:
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), partial(app.open, factory), text=text, help=help_text)


class DashboardApp(App[None]):
    """The crucible-monitor dashboard over one agent."""

    CSS_PATH = "dashboard.tcss"
    TITLE = "crucible"
    COMMANDS = App.COMMANDS | {GoTo}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("t", "toggle_theme", "Theme"),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
    ]

    def __init__(self, ctx: Context, *, close: Callable[[], Awaitable[None]] | None = None) -> None:
        """Args:
        ctx: the agent and settings every screen shares.
        close: awaited when the app ends.
        """
        super().__init__()
        self.ctx = ctx
        self._close = close
        self._seeded = False
        self._refreshing = False

    async def on_unmount(self) -> None:
        if self._close is not None:
            await self._close()

    def on_mount(self) -> None:
        self.push_screen(OverviewScreen(self.ctx))
        self.set_interval(self.ctx.refresh, self.refresh_data)
        self.set_interval(1.0, partial(self.publish, fresh=False))  # the banner's "n s ago"
        self.refresh_data()

    def open(self, factory: Callable[[], Screen[None]]) -> None:
        """Push the screen ``factory()`` makes (command palette entries)."""
        self.push_screen(factory())

    async def action_refresh(self) -> None:
        """Refresh now (after an action, or ctrl+r)."""
        self.refresh_data()

    def action_help(self) -> None:
        """Show or hide the key bindings of the screen in front."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_toggle_theme(self) -> None:
        """Switch between the light and the dark theme."""
        self.theme = "textual-light" if self.theme != "textual-light" else "textual-dark"

    def refresh_data(self) -> None:
        """Start a refresh unless one is still waiting for the agent."""
        if not self._refreshing:
            self._refreshing = True
            self._refresh()

    @work(group="refresh")
    async def _refresh(self) -> None:
        """One refresh: read the agent, remember the trends, redraw the screens; an error keeps the last data."""
        try:
            await self._read()
        finally:
            self._refreshing = False
        self.publish()

    async def _read(self) -> None:
        """Read everything the screens show; record the data, or the error and keep the last data."""
        ctx = self.ctx
        try:
            data = await fetch_status(ctx.ops)
            ctx.anomalies = await recent_anomalies(ctx.ops, time.time())
            ctx.gpus = await gpu_rows(ctx.ops, [c.name for c in data.collectors], time.time())
            if not self._seeded:
                await self._first_contact(data)
        except CrucibleError as exc:  # AgentUnavailable included: the next refresh tries again
            ctx.conn.failed(exc)
        else:
            ctx.trends.record(data.system)
            ctx.conn.succeeded(data, time.time())

    async def _first_contact(self, data: StatusData) -> None:
        """Once: seed the sparklines from history, and learn whether the agent allows actions."""
        ctx = self.ctx
        await seed_trends(ctx.ops, ctx.trends, [fs.mountpoint for fs in data.system.filesystems])
        try:
            actions = (await ctx.ops.get_config()).get("actions", {})
        except AgentUnavailable:
            raise
        except CrucibleError:  # a token that may not read the config: the agent still refuses what it must
            actions = {}
        ctx.read_only = ctx.read_only or bool(actions.get("read_only", False))
        ctx.allowlist = list(actions.get("restart_allowlist", []))
        self._seeded = True
        self.screen.refresh_bindings()

    def publish(self, fresh: bool = True) -> None:
        """Tell every screen on the stack that can redraw to do so (``fresh``: after a refresh)."""
        for screen in self.screen_stack:
            if isinstance(screen, Shows) and screen.is_mounted:
                try:
                    screen.show(fresh)
                except NoMatches:  # a screen still composing, or being torn down as the app exits
                    continue


def build_app(
    ops: Operations,
    url: str,
    *,
    refresh: float = 2.0,
    read_only: bool = False,
    close: Callable[[], Awaitable[None]] | None = None,
) -> DashboardApp:
    """The dashboard over ``ops``, refreshing every ``refresh`` seconds; ``read_only`` hides the actions; ``close``
    runs when the app ends, on its loop (the client's connection pool)."""
    return DashboardApp(Context(ops, url, refresh, read_only), close=close)
