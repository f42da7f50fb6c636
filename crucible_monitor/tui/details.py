"""Drill-down screens: a service (status, recent events, its log followed live), an alert (its transitions) and the
process list (sortable by CPU or memory, ``/`` to filter). Each redraws after every refresh of the app."""

from __future__ import annotations

import contextlib
import time

from rich.console import Group
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from crucible_monitor.errors import CrucibleError
from crucible_monitor.schemas import AlertDetail, EventView, Explanation, ProcessInfo, ServiceDetail
from crucible_monitor.tui import actions
from crucible_monitor.tui.logtail import LogTail
from crucible_monitor.tui.source import Context
from crucible_monitor.tui.widgets import Banner, Cell, fmt_bytes, short_time, sync_table
from crucible_monitor.units import human_duration
from crucible_monitor.untrusted import mask_secrets

__all__ = ["AlertScreen", "AnomalyScreen", "CheckScreen", "ProcessScreen", "ServiceScreen"]

LOG_LINES = 100


class _Detail(Screen[None]):
    """A drill-down screen: a banner about the connection, Escape to go back."""

    BINDINGS = [Binding("escape,backspace", "app.pop_screen", "Back")]

    def __init__(self, ctx: Context) -> None:
        super().__init__()
        self.ctx = ctx

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return actions.allowed(self.ctx, action)

    def show(self, fresh: bool = True) -> None:
        """Redraw the banner; after a refresh (``fresh``) also re-read this screen's subject."""
        now = time.time()
        conn = self.ctx.conn
        self.query_one(Banner).show_state(conn, now, self.ctx.stale_after)
        if fresh:
            self.reload()

    def reload(self) -> object:
        """Re-read and redraw the subject."""
        return None

    def failed(self, exc: CrucibleError) -> None:
        self.query_one("#title", Static).update(Text(str(exc), style="bold red"))


class ServiceScreen(_Detail):
    """One service: its state, restarts and uptime; its recent events; its log, followed live through the agent's log
    stream (re-read with each refresh from an agent client that cannot stream)."""

    BINDINGS = [Binding("r", "restart", "Restart")]

    def __init__(self, ctx: Context, name: str) -> None:
        """Args:
        ctx: the dashboard's shared state.
        name: the service (unit or supervisor program).
        """
        super().__init__(ctx)
        self.service = name
        self.detail: ServiceDetail | None = None
        self.streaming = False
        """The log comes from the agent's stream (else from each refresh's details)."""

    def compose(self) -> ComposeResult:
        yield Banner()
        with VerticalScroll():
            yield Static(Text(f"service {self.service}", style="bold"), id="title")
            yield DataTable(id="events", cursor_type="row", zebra_stripes=True)
            yield LogTail(self.service, lines=LOG_LINES, id="log")
        yield Footer()

    def on_mount(self) -> None:
        events = self.query_one("#events", DataTable)
        events.add_columns("Time", "Kind", "Severity", "Message")
        events.border_title = "Recent events"
        log = self.query_one("#log", LogTail)
        log.border_title = "Log"
        self.streaming = log.follow(self.ctx.ops)
        self.reload()

    @work(exclusive=True, group="detail")
    async def reload(self) -> None:
        with contextlib.suppress(NoMatches):  # the screen went away while the agent answered
            try:
                detail: ServiceDetail = await self.ctx.ops.get_service(self.service)
            except CrucibleError as exc:
                self.failed(exc)
                return
            self.detail = detail
            s = detail.service
            uptime = human_duration(time.time() - s.since) if s.up and s.since else "-"
            self.query_one("#title", Static).update(
                Group(
                    Text.assemble(
                        (s.name, "bold"),
                        "  ",
                        (s.state, "bold green" if s.up else "bold red"),
                        f"  {s.manager} · {s.category}",
                    ),
                    Text(
                        f"restarts {s.restarts}  ·  uptime {uptime}  ·  pid {s.pid or '-'}  ·  "
                        f"memory {fmt_bytes(s.memory_bytes)}  ·  exit status {_or_dash(s.exit_status)}"
                    ),
                    Text(s.description or "", style="dim"),
                )
            )
            rows: dict[str, list[Cell]] = {
                str(e.id): [short_time(e.ts), e.kind, e.severity, Text(mask_secrets(e.message))]
                for e in detail.recent_events
            }
            sync_table(self.query_one("#events", DataTable), rows)
            if not self.streaming:
                lines = list(detail.log.lines) if detail.log else []
                if detail.log_error:
                    lines = [f"(log unavailable: {detail.log_error})"]
                self.query_one("#log", LogTail).show_lines(lines or ["(the log has no lines)"])

    def action_restart(self) -> None:
        self.run_worker(actions.restart(self, self.ctx, self.service), group="action")


class AlertScreen(_Detail):
    """One alert: state, labels, annotations, acknowledgement and every transition."""

    BINDINGS = [Binding("a", "acknowledge", "Ack"), Binding("s", "silence", "Silence")]

    def __init__(self, ctx: Context, alert_id: int) -> None:
        """Args:
        ctx: the dashboard's shared state.
        alert_id: the alert's id.
        """
        super().__init__(ctx)
        self.alert_id = alert_id
        self.alert: AlertDetail | None = None

    def compose(self) -> ComposeResult:
        yield Banner()
        with VerticalScroll():
            yield Static(Text(f"alert {self.alert_id}", style="bold"), id="title")
            yield DataTable(id="transitions", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#transitions", DataTable)
        table.add_columns("Time", "Transition", "Actor", "Value", "Note")
        table.border_title = "Transitions"
        self.reload()

    @work(exclusive=True, group="detail")
    async def reload(self) -> None:
        with contextlib.suppress(NoMatches):  # the screen went away while the agent answered
            try:
                alert: AlertDetail = await self.ctx.ops.get_alert(self.alert_id)
            except CrucibleError as exc:
                self.failed(exc)
                return
            self.alert = alert
            ack = alert.acknowledgement
            lines = [
                Text.assemble((f"{alert.name} ", "bold"), (alert.severity, "bold"), f"  {alert.state}"),
                Text(f"active since {short_time(alert.active_since)}  ·  fired {short_time(alert.fired_at)}"),
                Text(" ".join(f"{k}={v}" for k, v in sorted(alert.labels.items())), style="dim"),
                *(Text(f"{k}: {v}") for k, v in alert.annotations.items()),
            ]
            if ack is not None:
                lines.append(Text(f"acknowledged by {ack.by} at {short_time(ack.at)}", style="yellow"))
            if alert.silenced_by:
                lines.append(Text(f"silenced by {', '.join(alert.silenced_by)}", style="yellow"))
            self.query_one("#title", Static).update(Group(*lines))
            rows: dict[str, list[Cell]] = {
                str(t.id): [
                    short_time(t.ts),
                    str(t.kind),
                    t.actor or "-",
                    "-" if t.value is None else f"{t.value:.4g}",
                    Text(t.note or ""),
                ]
                for t in alert.history
            }
            sync_table(self.query_one("#transitions", DataTable), rows)

    def action_acknowledge(self) -> None:
        if self.alert is not None:
            self.run_worker(actions.acknowledge(self, self.ctx, self.alert), group="action")

    def action_silence(self) -> None:
        if self.alert is not None:
            self.run_worker(actions.silence(self, self.ctx, self.alert), group="action")


class CheckScreen(_Detail):
    """An HTTP check: its last result (status, latency, error, certificate) and its failures and recoveries."""

    def __init__(self, ctx: Context, name: str) -> None:
        """Args:
        ctx: the dashboard's shared state.
        name: the check's name.
        """
        super().__init__(ctx)
        self.check = name
        self.events: list[EventView] | None = None

    def compose(self) -> ComposeResult:
        yield Banner()
        with VerticalScroll():
            yield Static(Text(f"check {self.check}", style="bold"), id="title")
            yield DataTable(id="check-events", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#check-events", DataTable)
        table.add_columns("Time", "Kind", "Message")
        table.border_title = "Failures and recoveries"
        self.reload()

    @work(exclusive=True, group="detail")
    async def reload(self) -> None:
        with contextlib.suppress(NoMatches):  # the screen went away while the agent answered
            try:
                events: list[EventView] = await self.ctx.ops.events(subject=self.check, limit=50)
            except CrucibleError as exc:
                self.failed(exc)
                return
            self.events = [e for e in events if e.kind.startswith("check")]
            data = self.ctx.conn.data
            result = next((c for c in data.checks if c.name == self.check), None) if data else None
            lines = [Text(f"check {self.check}", style="bold")]
            if result is not None:
                latency = "-" if result.duration_seconds is None else f"{result.duration_seconds * 1000:.0f} ms"
                lines += [
                    Text.assemble(
                        ("up" if result.ok else (result.failure or "down"), "bold green" if result.ok else "bold red"),
                        f"  {result.url}  status {result.status_code or '-'}  latency {latency}  "
                        f"failing {result.consecutive_failures}× in a row",
                    ),
                    Text(mask_secrets(result.error or ""), style="red"),
                ]
                if result.tls_days_left is not None:
                    lines.append(Text(f"certificate: {result.tls_days_left:.0f} days left, {result.tls_issuer or ''}"))
            self.query_one("#title", Static).update(Group(*lines))
            rows: dict[str, list[Cell]] = {
                str(e.id): [short_time(e.ts), e.kind, Text(mask_secrets(e.message))] for e in self.events
            }
            sync_table(self.query_one("#check-events", DataTable), rows)


class AnomalyScreen(_Detail):
    """An anomaly's explanation: what moved against the window before, restarts, failing checks, events."""

    def __init__(self, ctx: Context, anomaly_id: int) -> None:
        """Args:
        ctx: the dashboard's shared state.
        anomaly_id: the stored anomaly's id.
        """
        super().__init__(ctx)
        self.anomaly_id = anomaly_id
        self.explanation: Explanation | None = None

    def compose(self) -> ComposeResult:
        yield Banner()
        with VerticalScroll():
            yield Static(Text(f"anomaly {self.anomaly_id}", style="bold"), id="title")
            yield DataTable(id="moved", cursor_type="row", zebra_stripes=True)
            yield Static(id="context")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#moved", DataTable)
        table.add_columns("Metric", "Labels", "Before", "Now", "z", "Change")
        table.border_title = "What moved (against the window before)"
        self.reload()

    def show(self, fresh: bool = True) -> None:
        """An explanation does not change with each refresh: only the banner is redrawn."""
        super().show(fresh=fresh and self.explanation is None)

    @work(exclusive=True, group="detail")
    async def reload(self) -> None:
        with contextlib.suppress(NoMatches):  # the screen went away while the agent answered
            try:
                found: Explanation = await self.ctx.ops.explain_anomaly(self.anomaly_id)
            except CrucibleError as exc:
                self.failed(exc)
                return
            self.explanation = found
            window = f"{short_time(found.window_start)} to {short_time(found.window_end)}"
            self.query_one("#title", Static).update(
                Group(Text(f"anomaly {self.anomaly_id} · {window}", style="bold"), Text(found.summary))
            )
            rows: dict[str, list[Cell]] = {
                f"{m.metric}{sorted(m.labels.items())}": [
                    m.metric,
                    Text(",".join(f"{k}={v}" for k, v in sorted(m.labels.items()))),
                    f"{m.before:.4g}",
                    f"{m.value:.4g}",
                    f"{m.z:+.1f}",
                    m.change,
                ]
                for m in found.moved
            }
            sync_table(self.query_one("#moved", DataTable), rows)
            lines = [Text(f"restarts: {r.service} ×{r.restarts} (last {short_time(r.last)})") for r in found.restarts]
            lines += [
                Text(f"failing check: {c.check} {c.failing_ratio:.0%} of the window") for c in found.failing_checks
            ]
            lines += [Text(f"{short_time(e.ts)} {e.kind} {e.subject}: {mask_secrets(e.message)}") for e in found.events]
            self.query_one("#context", Static).update(Group(*lines) if lines else Text("no events in the window"))


class ProcessScreen(_Detail):
    """The agent's last process snapshot: ``c`` sorts by CPU, ``m`` by memory, ``/`` filters by name or command."""

    BINDINGS = [
        Binding("c", "sort('cpu')", "Sort CPU"),
        Binding("m", "sort('memory')", "Sort mem"),
        Binding("slash", "filter", "Filter", key_display="/"),
    ]

    def __init__(self, ctx: Context) -> None:
        """Args:
        ctx: the dashboard's shared state.
        """
        super().__init__(ctx)
        self.sort_by = "cpu"
        self.filter_text = ""

    def compose(self) -> ComposeResult:
        yield Banner()
        yield Static(Text("processes", style="bold"), id="title")
        yield Input(placeholder="filter: name or command (Enter to apply)", id="filter")
        yield DataTable(id="processes", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#processes", DataTable).add_columns("PID", "Name", "User", "CPU", "Memory", "Command")
        self.query_one("#filter", Input).display = False
        self.reload()

    def reload(self) -> None:
        data = self.ctx.conn.data
        snapshot = data.system.top_processes if data else None
        if snapshot is None:
            self.query_one("#title", Static).update(Text("no process snapshot yet", style="yellow"))
            return
        merged: dict[int, ProcessInfo] = {p.pid: p for p in [*snapshot.by_cpu, *snapshot.by_memory]}
        wanted = self.filter_text.lower()
        shown = [p for p in merged.values() if not wanted or wanted in p.name.lower() or wanted in p.cmdline.lower()]
        if self.sort_by == "cpu":
            shown.sort(key=lambda p: (p.cpu_cores or 0.0, p.memory_bytes), reverse=True)
        else:
            shown.sort(key=lambda p: p.memory_bytes, reverse=True)
        suffix = f", filter {self.filter_text!r}" if self.filter_text else ""
        self.query_one("#title", Static).update(
            Text(
                f"{len(shown)} of the top processes ({snapshot.total} running) by {self.sort_by}{suffix}",
                style="bold",
            )
        )
        rows: dict[str, list[Cell]] = {
            str(p.pid): [
                str(p.pid),
                Text(p.name),
                Text(p.user),
                "-" if p.cpu_cores is None else f"{p.cpu_cores:.2f}",
                fmt_bytes(p.memory_bytes),
                Text(mask_secrets(p.cmdline)),
            ]
            for p in shown
        }
        sync_table(self.query_one("#processes", DataTable), rows)

    def action_sort(self, by: str) -> None:
        self.sort_by = by
        self.reload()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self.reload()

    @on(Input.Submitted, "#filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.query_one("#processes", DataTable).focus()


def _or_dash(value: object) -> str:
    return "-" if value is None else str(value)
