"""The overview: the headline and findings first, then vital signs with sparklines, alerts, services, checks and
each application's key numbers. Every refresh updates these widgets in place."""

from __future__ import annotations

import time

from rich.console import Group
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from crucible_monitor.cli_status import app_sections
from crucible_monitor.schemas import AlertView, AnomalyView, CheckResult, ServiceStatus, SystemSnapshot
from crucible_monitor.tui import actions
from crucible_monitor.tui.details import AlertScreen, AnomalyScreen, CheckScreen, ProcessScreen, ServiceScreen
from crucible_monitor.tui.history import HistoryScreen
from crucible_monitor.tui.source import Context, GpuRow, vitals
from crucible_monitor.tui.widgets import Banner, Cell, Vital, fmt_bytes, fmt_ratio, short_time, sync_table
from crucible_monitor.units import human_duration

__all__ = ["OverviewScreen"]

COLOURS = {"critical": "red", "warning": "yellow", "info": "cyan", "ok": "green"}
_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
_FIXED_VITALS = ("cpu", "memory", "swap", "load", "net rx", "net tx")


class OverviewScreen(Screen[None]):
    """Everything on one screen, most urgent first."""

    AUTO_FOCUS = "#alerts"
    BINDINGS = [
        Binding("a", "acknowledge", "Ack alert"),
        Binding("s", "silence", "Silence"),
        Binding("r", "restart", "Restart svc"),
        Binding("p", "processes", "Processes"),
        Binding("h", "history", "History"),
    ]

    def __init__(self, ctx: Context) -> None:
        """Args:
        ctx: the dashboard's shared state.
        """
        super().__init__()
        self.ctx = ctx
        self._drawn: object = None
        """The data last drawn (a tick redraws nothing else until a refresh brings new data)."""

    def compose(self) -> ComposeResult:
        yield Banner(id="banner")
        with VerticalScroll(id="body", can_focus=False):
            yield Static(Text(f"connecting to {self.ctx.url}…"), id="headline")
            yield Static(id="last-action")
            yield Static(id="findings")
            with Horizontal(id="top"):
                yield Vertical(*(Vital(n, id=_vital_id(n)) for n in _FIXED_VITALS), id="vitals")
                yield DataTable(id="alerts", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="anomalies", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="services", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="checks", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="gpus", cursor_type="row", zebra_stripes=True)
            yield Static(id="apps")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#alerts", DataTable).add_columns("Severity", "Alert", "Since", "State")
        self.query_one("#services", DataTable).add_columns(
            "Service", "Category", "Manager", "State", "Uptime", "Restarts", "Memory"
        )
        self.query_one("#checks", DataTable).add_columns("Check", "Result", "Status", "Latency", "Cert days")
        self.query_one("#anomalies", DataTable).add_columns("Score", "Since", "State", "Summary")
        self.query_one("#gpus", DataTable).add_columns("GPU", "Name", "Util", "Memory", "Temp", "Power", "Throttled")
        for table, title in (
            ("alerts", "Active alerts"),
            ("services", "Services"),
            ("checks", "HTTP checks"),
            ("anomalies", "Anomalies (last hour)"),
            ("gpus", "GPUs"),
        ):
            self.query_one(f"#{table}", DataTable).border_title = title
        self.query_one("#vitals").border_title = "System"
        self.show()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return actions.allowed(self.ctx, action)

    # -- refresh ------------------------------------------------------------------------------------------------

    def show(self, fresh: bool = True) -> None:
        """Redraw from the last refresh (called by the app after each one, and every second for the banner)."""
        now = time.time()
        conn = self.ctx.conn
        self.query_one(Banner).show_state(conn, now, self.ctx.stale_after)
        last = self.query_one("#last-action", Static)
        last.display = self.ctx.last_action is not None
        if self.ctx.last_action is not None:
            last.update(Text(f"last action: {self.ctx.last_action}", style="italic"))
        data = conn.data
        if data is None:
            if conn.error is not None:
                what = "agent unreachable at" if conn.unreachable else "no data from the agent at"
                self.query_one("#headline", Static).update(
                    Text(f"{what} {self.ctx.url}, retrying every {self.ctx.refresh:g} s", style="bold red")
                )
            return
        if not fresh and self._drawn is conn.data:
            return  # the 1 s tick: only the banner and the last action change
        self._drawn = conn.data
        summary = data.summary
        self.query_one("#headline", Static).update(
            Group(
                Text.assemble(
                    (summary.status.upper(), f"bold {COLOURS[summary.status]}"), "  ", (summary.headline, "bold")
                ),
                Text(
                    f"{summary.host}  crucible-monitor {data.health.version}  agent {data.health.status}, "
                    f"up {human_duration(data.health.uptime_seconds)}  ·  {self.ctx.url}",
                    style="dim",
                ),
            )
        )
        findings = [
            Text.assemble(
                ("  ↳ " if f.caused_by else "", "dim"),
                (f"{f.severity:<8} ", COLOURS[f.severity]),
                (f.subject, "bold"),
                f": {f.problem}" + (f": {f.detail}" if f.detail else ""),
                (f" (since {short_time(f.since)})" if f.since else "", "dim"),
            )
            for f in summary.findings
        ]
        findings += [
            Text.assemble((f"{h.how:<8} ", "dim"), (h.subject, "bold"), f" by {h.by}" if h.by else "", style="dim")
            for h in summary.handled
        ]
        findings += [
            Text.assemble(("recovered ", "green"), (r.subject, "bold"), f" at {short_time(r.at)}", style="dim")
            for r in summary.recovered
        ]
        blind = [
            Text.assemble(("blind    ", "yellow"), f"{c.name}: {s.target or 'a source'} ({s.config_key})")
            for c in data.collectors
            for s in c.blind
        ]
        findings_widget = self.query_one("#findings", Static)
        findings_widget.update(Group(*findings, *blind))
        findings_widget.display = bool(findings or blind)
        self._vitals(data.system)
        sync_table(self.query_one("#alerts", DataTable), _alert_rows(data.alerts))
        sync_table(self.query_one("#services", DataTable), _service_rows(data.services, now))
        checks = self.query_one("#checks", DataTable)
        checks.display = bool(data.checks)
        sync_table(checks, _check_rows(data.checks))
        anomalies = self.query_one("#anomalies", DataTable)
        anomalies.display = bool(self.ctx.anomalies)
        sync_table(anomalies, _anomaly_rows(self.ctx.anomalies))
        gpus = self.query_one("#gpus", DataTable)
        gpus.display = bool(self.ctx.gpus)
        sync_table(gpus, _gpu_rows(self.ctx.gpus))
        apps = app_sections(data.apps, max(40, self.size.width - 2))
        self.query_one("#apps", Static).update(Group(*apps))

    def _vitals(self, system: SystemSnapshot) -> None:
        box = self.query_one("#vitals", Vertical)
        texts = _vital_texts(system)
        for name, value in vitals(system).items():
            found = box.query(f"#{_vital_id(name)}")
            widget = found.first(Vital) if found else None
            if widget is None:
                widget = Vital(name, id=_vital_id(name))
                box.mount(widget)
                widget.call_after_refresh(widget.show, self.ctx.trends.values(name), texts.get(name, "-"))
                continue
            if name == "swap" and value is None and not system.memory.swap_total_bytes:
                widget.display = False
                continue
            widget.show(self.ctx.trends.values(name), texts.get(name, "-"))

    # -- drill-down and actions ---------------------------------------------------------------------------------

    @on(DataTable.RowSelected, "#services")
    def _open_service(self, event: DataTable.RowSelected) -> None:
        self.app.push_screen(ServiceScreen(self.ctx, str(event.row_key.value)))

    @on(DataTable.RowSelected, "#alerts")
    def _open_alert(self, event: DataTable.RowSelected) -> None:
        self.app.push_screen(AlertScreen(self.ctx, int(str(event.row_key.value))))

    @on(DataTable.RowSelected, "#checks")
    def _open_check(self, event: DataTable.RowSelected) -> None:
        self.app.push_screen(CheckScreen(self.ctx, str(event.row_key.value)))

    @on(DataTable.RowSelected, "#anomalies")
    def _open_anomaly(self, event: DataTable.RowSelected) -> None:
        self.app.push_screen(AnomalyScreen(self.ctx, int(str(event.row_key.value))))

    def action_processes(self) -> None:
        self.app.push_screen(ProcessScreen(self.ctx))

    def action_history(self) -> None:
        self.app.push_screen(HistoryScreen(self.ctx))

    def selected_alert(self) -> AlertView | None:
        """The alert under the cursor of the alerts table."""
        return _selected(self.query_one("#alerts", DataTable), {str(a.id): a for a in self._data_alerts()})

    def selected_service(self) -> str | None:
        """The service under the cursor of the services table."""
        table = self.query_one("#services", DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def _data_alerts(self) -> list[AlertView]:
        return self.ctx.conn.data.alerts if self.ctx.conn.data else []

    def action_acknowledge(self) -> None:
        alert = self.selected_alert()
        if alert is None:
            self.notify("no alert selected", severity="warning")
            return
        self.run_worker(actions.acknowledge(self, self.ctx, alert), group="action")

    def action_silence(self) -> None:
        alert = self.selected_alert()
        if alert is None:
            self.notify("no alert selected", severity="warning")
            return
        self.run_worker(actions.silence(self, self.ctx, alert), group="action")

    def action_restart(self) -> None:
        name = self.selected_service()
        if name is None:
            self.notify("no service selected", severity="warning")
            return
        self.run_worker(actions.restart(self, self.ctx, name), group="action")


def _vital_id(name: str) -> str:
    return "vital-" + "".join(c if c.isalnum() else "-" for c in name)


def _selected(table: DataTable[Cell], items: dict[str, AlertView]) -> AlertView | None:
    if not table.row_count:
        return None
    key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    return items.get(str(key))


def _vital_texts(system: SystemSnapshot) -> dict[str, str]:
    memory = system.memory
    texts = {
        "cpu": fmt_ratio(system.cpu.usage_ratio),
        "memory": fmt_ratio(memory.used_ratio),
        "swap": fmt_ratio(memory.swap_used_ratio),
        "load": " ".join(f"{v:.2f}" for v in system.load.values()) or "-",
        "net rx": fmt_bytes(sum(i.receive_bytes_per_second or 0 for i in system.network)) + "/s",
        "net tx": fmt_bytes(sum(i.transmit_bytes_per_second or 0 for i in system.network)) + "/s",
    }
    for fs in system.filesystems:
        texts[f"disk {fs.mountpoint}"] = fmt_ratio(fs.used_ratio)
    return texts


def _alert_rows(alerts: list[AlertView]) -> dict[str, list[Cell]]:
    ordered = sorted(alerts, key=lambda a: (_SEVERITY_ORDER.get(a.severity, 9), a.active_since))
    rows: dict[str, list[Cell]] = {}
    for alert in ordered:
        summary = alert.annotations.get("summary")
        note = "ack" if alert.acknowledgement else ("silenced" if alert.silenced_by else str(alert.state))
        rows[str(alert.id)] = [
            Text(alert.severity, style=COLOURS.get(alert.severity, "")),
            Text(f"{alert.name}: {summary}" if summary else alert.name),
            short_time(alert.fired_at or alert.active_since),
            note,
        ]
    return rows


def _service_rows(services: list[ServiceStatus], now: float) -> dict[str, list[Cell]]:
    rows: dict[str, list[Cell]] = {}
    for s in sorted(services, key=lambda s: (s.category, s.name)):
        uptime = human_duration(now - s.since) if s.up and s.since else "-"
        rows[s.name] = [
            Text(s.name),
            s.category,
            s.manager,
            Text(s.state, style="green" if s.up else "bold red"),
            uptime,
            Text(str(s.restarts), style="bold yellow" if s.restarts else ""),
            fmt_bytes(s.memory_bytes),
        ]
    return rows


def _check_rows(checks: list[CheckResult]) -> dict[str, list[Cell]]:
    rows: dict[str, list[Cell]] = {}
    for c in checks:
        days = c.tls_days_left
        rows[c.name] = [
            Text(c.name),
            Text("up" if c.ok else (c.failure or "down"), style="green" if c.ok else "bold red"),
            str(c.status_code or "-"),
            f"{c.duration_seconds * 1000:.0f} ms" if c.duration_seconds is not None else "-",
            Text(f"{days:.0f}", style="yellow" if days < 14 else "") if days is not None else "-",
        ]
    return rows


def _anomaly_rows(anomalies: list[AnomalyView]) -> dict[str, list[Cell]]:
    return {
        str(a.id): [
            Text(f"{a.score:.2f}", style="bold red" if a.score > a.threshold else ""),
            short_time(a.start),
            "ongoing" if a.ongoing else f"ended {short_time(a.end)}",
            Text(a.summary),
        ]
        for a in anomalies
    }


def _gpu_rows(gpus: list[GpuRow]) -> dict[str, list[Cell]]:
    rows: dict[str, list[Cell]] = {}
    for gpu in gpus:
        v = gpu.values
        used, total = v.get("gpu_memory_used_bytes"), v.get("gpu_memory_total_bytes")
        memory = f"{fmt_bytes(used)} / {fmt_bytes(total)}" if used is not None and total else "-"
        temp, power = v.get("gpu_temperature_celsius"), v.get("gpu_power_watts")
        rows[gpu.index] = [
            gpu.index,
            Text(gpu.name),
            fmt_ratio(v.get("gpu_utilization_ratio")),
            memory,
            f"{temp:.0f} °C" if temp is not None else "-",
            f"{power:.0f} W" if power is not None else "-",
            Text(", ".join(gpu.throttled) or "-", style="bold yellow" if gpu.throttled else ""),
        ]
    return rows
