"""``crucible-monitor status``: what the agent says is wrong, then the vital signs, as rich renderables.

Everything fits the console's width: a long label loses its middle (``laravel-…-emails``), never a value, and a
sparkline drops its oldest points, never its newest.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from crucible_monitor.units import human_bytes, human_duration, human_ratio

if TYPE_CHECKING:
    from crucible_monitor.operations import Operations
    from crucible_monitor.schemas import (
        AlertView,
        CheckResult,
        CollectorStatus,
        Health,
        MetricReport,
        ServiceStatus,
        StatusSummary,
        SystemSnapshot,
    )

__all__ = ["StatusData", "app_sections", "fetch_status", "fit_middle", "render_status", "sparkline"]

_SPARK = "▁▂▃▄▅▆▇█"
_ELLIPSIS = "…"
_APP_WINDOW = 300.0  # seconds of history the application sections summarise
_COLOURS = {"critical": "red", "warning": "yellow", "info": "cyan", "ok": "green"}


def fit_middle(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters by replacing its middle with an ellipsis (both ends stay readable)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    keep = width - 1
    head = (keep + 1) // 2
    return text[:head] + _ELLIPSIS + text[len(text) - (keep - head) :]


def sparkline(values: Sequence[float], width: int) -> str:
    """At most ``width`` bars, ▁ lowest to █ highest; when narrow the oldest values go, the newest always stays."""
    shown = list(values[-max(width, 0) :]) if width > 0 else []
    if not shown:
        return ""
    low, high = min(shown), max(shown)
    span = (high - low) or 1.0
    return "".join(_SPARK[min(len(_SPARK) - 1, int((v - low) / span * len(_SPARK)))] for v in shown)


@dataclass
class StatusData:
    """What one refresh of ``status`` reads from the agent."""

    health: Health
    summary: StatusSummary
    alerts: list[AlertView]
    collectors: list[CollectorStatus]
    system: SystemSnapshot
    services: list[ServiceStatus]
    checks: list[CheckResult]
    apps: dict[str, MetricReport]


# The application sections: title, the collector name (prefix) that runs them, the metrics they read.
_APP_METRICS = {
    "mysql": ("mysql_up", "mysql_connections", "mysql_max_connections", "mysql_threads_running", "mysql_queries_total"),
    "php_fpm": ("php_fpm_up", "php_fpm_processes", "php_fpm_listen_queue", "php_fpm_max_children_reached_total"),
    "laravel": ("laravel_queue_jobs", "laravel_failed_jobs", "laravel_scheduler_heartbeat_age_seconds"),
    "access_logs": ("http_requests_total", "http_server_error_ratio", "http_request_duration_seconds"),
}


async def fetch_status(ops: Operations) -> StatusData:
    """Read everything ``status`` shows; the application metrics only for the collectors that run."""
    health, catalogue, collectors = await asyncio.gather(ops.health(), ops.list_metrics(), ops.collectors())
    known = {m.name for m in catalogue}
    names = {c.name.split(":")[0] for c in health.collectors}
    now = time.time()
    metrics = [m for group, ms in _APP_METRICS.items() if group in names for m in ms if m in known]
    summary, alerts, system, services, checks = await asyncio.gather(
        ops.status_summary(),
        ops.list_alerts(state="firing", limit=20),
        ops.system_status(),
        ops.services(),
        ops.http_checks(),
    )
    reports = await asyncio.gather(
        *(ops.metrics_report(m, start=now - _APP_WINDOW, end=now, max_points=2, max_series=50) for m in metrics)
    )
    return StatusData(
        health=health,
        summary=summary,
        alerts=alerts,
        collectors=collectors,  # with the targets of blind spots, which the public health leaves out
        system=system,
        services=services,
        checks=checks,
        apps={r.metric: r for report in reports for r in report.reports},
    )


def render_status(data: StatusData, width: int) -> RenderableType:
    """The whole screen, ``width`` columns wide at most."""
    parts: list[RenderableType] = [_headline(data, width)]
    if data.alerts:
        parts.append(_alerts(data.alerts, width))
    parts.append(_system(data.system))
    if data.services:
        parts.append(_services(data.services, width))
    if data.checks:
        parts.append(_checks(data.checks, width))
    parts.extend(app_sections(data.apps, width))
    return Group(*parts)


# -- sections ---------------------------------------------------------------------------------------------------


def _headline(data: StatusData, width: int) -> RenderableType:
    summary, health = data.summary, data.health
    lines = [
        Text.assemble(
            (summary.status.upper(), f"bold {_COLOURS[summary.status]}"),
            "  ",
            (summary.headline, "bold"),
        ),
        Text(
            f"{summary.host}  crucible-monitor {health.version}  agent {health.status}, "
            f"up {human_duration(health.uptime_seconds)}",
            style="dim",
        ),
    ]
    for finding in summary.findings:
        since = f" (since {_short_time(finding.since)})" if finding.since else ""
        lead = "  ↳ " if finding.caused_by else ""
        lines.append(
            Text.assemble(
                (f"{lead}{finding.severity:<8} ", _COLOURS[finding.severity]),
                (fit_middle(finding.subject, max(12, width // 3)), "bold"),
                f": {finding.problem}" + (f": {finding.detail}" if finding.detail else "") + since,
            )
        )
    for handled in summary.handled:
        by = f" by {handled.by}" if handled.by else ""
        until = f" until {_short_time(handled.until)}" if handled.until else ""
        subject = fit_middle(handled.subject, max(12, width // 3))
        lines.append(Text.assemble((f"{handled.how:<8} ", "dim"), (subject, "bold"), f"{by}{until}"))
    lines.extend(
        Text.assemble(
            ("recovered ", "green"),
            (fit_middle(item.subject, max(12, width // 3)), "bold"),
            f" at {_short_time(item.at)}",
        )
        for item in summary.recovered
    )
    for collector in data.collectors:
        spots = "; ".join(f"{spot.target or 'a source'} ({spot.config_key})" for spot in collector.blind)
        if spots:
            lines.append(Text.assemble(("blind    ", "yellow"), f"{collector.name}: {spots}"))
    return Group(*lines)


def _alerts(alerts: Sequence[AlertView], width: int) -> Table:
    rows = [
        (
            a.severity,
            f"{a.name}: {a.annotations['summary']}" if a.annotations.get("summary") else _alert_labels(a),
            _short_time(a.fired_at or a.active_since),
            "ack" if a.acknowledgement else ("silenced" if a.silenced_by else ""),
        )
        for a in alerts
    ]
    return _table("Firing alerts", ("Severity", "Alert", "Since", "Note"), rows, width, stretch=1)


def _alert_labels(alert: AlertView) -> str:
    skip = ("alertname", "severity", "host")
    return alert.name + "".join(f" {k}={v}" for k, v in alert.labels.items() if k not in skip)


def _system(system: SystemSnapshot) -> Table:
    overview = Table(title="System", show_header=False, title_justify="left")
    cores = f" of {system.cpu.count} cores" if system.cpu.count else ""
    overview.add_row("CPU", _ratio(system.cpu.usage_ratio) + cores)
    overview.add_row("Load", " ".join(f"{v:.2f}" for v in system.load.values()) or "-")
    memory = system.memory
    overview.add_row(
        "Memory", f"{_bytes(memory.used_bytes)} / {_bytes(memory.total_bytes)} ({_ratio(memory.used_ratio)})"
    )
    if memory.swap_total_bytes:
        overview.add_row("Swap", f"{_bytes(memory.swap_used_bytes)} / {_bytes(memory.swap_total_bytes)}")
    for fs in system.filesystems:
        overview.add_row(
            f"Disk {fs.mountpoint}", f"{_bytes(fs.used_bytes)} / {_bytes(fs.size_bytes)} ({_ratio(fs.used_ratio)})"
        )
    return overview


def _services(services: Sequence[ServiceStatus], width: int) -> Table:
    rows = [
        (
            s.name,
            s.manager,
            s.state,
            str(s.restarts),
            time.strftime("%m-%d %H:%M", time.localtime(s.since)) if s.since else "-",
        )
        for s in services
    ]
    styles = {i: "green" if s.up else "red" for i, s in enumerate(services)}
    return _table("Services", ("Service", "Manager", "State", "Restarts", "Since"), rows, width, row_state=styles)


def _checks(checks: Sequence[CheckResult], width: int) -> Table:
    rows = [
        (
            c.name,
            "up" if c.ok else (c.failure or "down"),
            str(c.status_code or "-"),
            f"{c.duration_seconds * 1000:.0f} ms" if c.duration_seconds is not None else "-",
            f"{c.tls_days_left:.0f}" if c.tls_days_left is not None else "-",
        )
        for c in checks
    ]
    styles = {i: "green" if c.ok else "red" for i, c in enumerate(checks)}
    return _table(
        "HTTP checks",
        ("Check", "Result", "Status", "Latency", "TLS days"),
        rows,
        width,
        row_state=styles,
        state_column=1,
    )


def app_sections(apps: dict[str, MetricReport], width: int) -> list[Table]:
    """One table per application collector that reported (MySQL, PHP-FPM pools, Laravel apps, vhosts)."""
    sections = []
    if any(m.startswith("mysql_") for m in apps):
        sections.append(_mysql(apps, width))
    for title, label, columns in _KEYED_SECTIONS:
        rows = _keyed_rows(apps, label, columns)
        if rows:
            sections.append(_table(title, (label.title(), *(c[0] for c in columns)), rows, width))
    return sections


def _mysql(apps: dict[str, MetricReport], width: int) -> Table:
    up = _last(apps, "mysql_up")
    connections, limit = _last(apps, "mysql_connections"), _last(apps, "mysql_max_connections")
    used = f" ({human_ratio(connections / limit)})" if connections is not None and limit else ""
    rows = [
        ("Server", "up" if up == 1 else ("down" if up is not None else "-")),
        ("Connections", f"{_num(connections)} / {_num(limit)}{used}"),
        ("Threads running", _num(_last(apps, "mysql_threads_running"))),
        ("Queries", f"{_num(_last(apps, 'mysql_queries_total'))}/s"),
    ]
    return _table("MySQL", ("", "Now"), rows, width, show_header=False)


# (header, metric, label filter, how several series combine)
_Column = tuple[str, str, dict[str, str], str]
_KEYED_SECTIONS: tuple[tuple[str, str, tuple[_Column, ...]], ...] = (
    (
        "PHP-FPM",
        "pool",
        (
            ("Active", "php_fpm_processes", {"state": "active"}, "sum"),
            ("Idle", "php_fpm_processes", {"state": "idle"}, "sum"),
            ("Queue", "php_fpm_listen_queue", {}, "sum"),
            ("Max reached/s", "php_fpm_max_children_reached_total", {}, "sum"),
        ),
    ),
    (
        "Laravel",
        "app",
        (
            ("Ready jobs", "laravel_queue_jobs", {"state": "ready"}, "sum"),
            ("Failed jobs", "laravel_failed_jobs", {}, "sum"),
            ("Heartbeat age s", "laravel_scheduler_heartbeat_age_seconds", {}, "max"),
        ),
    ),
    (
        "Access logs",
        "vhost",
        (
            ("Requests/s", "http_requests_total", {}, "sum"),
            ("5xx/s", "http_requests_total", {"status_class": "5xx"}, "sum"),
            ("5xx ratio", "http_server_error_ratio", {}, "max"),
            ("p95 s", "http_request_duration_seconds", {"quantile": "0.95"}, "max"),
        ),
    ),
)


def _keyed_rows(apps: dict[str, MetricReport], label: str, columns: Sequence[_Column]) -> list[tuple[str, ...]]:
    """One row per value of ``label`` (pool, app, vhost), each column the newest value of its metric."""
    values: dict[str, dict[int, list[float]]] = {}
    for index, (_, metric, match, _how) in enumerate(columns):
        report = apps.get(metric)
        for series in report.series if report else []:
            key = series.labels.get(label)
            if key is None or any(series.labels.get(k) != v for k, v in match.items()):
                continue
            values.setdefault(key, {}).setdefault(index, []).append(series.stats["last"])
    rows = []
    for key in sorted(values):
        cells = []
        for index, column in enumerate(columns):
            found = values[key].get(index)
            cells.append("-" if not found else _num(sum(found) if column[3] == "sum" else max(found)))
        rows.append((key, *cells))
    return rows


# -- layout helpers ---------------------------------------------------------------------------------------------


def _table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    stretch: int = 0,
    row_state: dict[int, str] | None = None,
    state_column: int = 2,
    show_header: bool = True,
) -> Table:
    """A table whose column ``stretch`` (a label) is middle-truncated so the whole fits ``width`` columns.

    ``row_state`` colours the ``state_column`` cell of the rows it names.
    """
    widths = [max([len(h) if show_header else 0, *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    chrome = 3 * len(headers) + 1  # borders and one space of padding each side
    budget = max(8, width - chrome - sum(w for i, w in enumerate(widths) if i != stretch))
    table = Table(title=title, title_justify="left", show_header=show_header)
    for i, header in enumerate(headers):
        table.add_column(header, no_wrap=True, overflow="ellipsis", max_width=budget if i == stretch else None)
    for n, row in enumerate(rows):
        cells: list[str | Text] = [fit_middle(cell, budget) if i == stretch else cell for i, cell in enumerate(row)]
        if row_state and n in row_state:
            cells[state_column] = Text(row[state_column], style=row_state[n])
        table.add_row(*(Text(c) if isinstance(c, str) else c for c in cells))
    return table


def _last(apps: dict[str, MetricReport], metric: str) -> float | None:
    report = apps.get(metric)
    return report.series[0].stats["last"] if report and report.series else None


def _short_time(iso: str | None) -> str:
    """``2026-12-02T07:03:37+00:00`` → ``12-02 07:03`` (the part people read)."""
    return iso[5:16].replace("T", " ") if iso else "-"


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else human_ratio(value)


def _bytes(value: float | None) -> str:
    return "-" if value is None else human_bytes(value)
