"""What :mod:`~crucible_monitor.alerts.importer` maps: exporters' metric names to ours, the ratios we keep, and the
shapes that become service, HTTP-check and certificate rules rather than thresholds.

Our side of every entry is checked against the collectors' catalogues when it is used (and by the tests), so a
renamed metric fails loudly instead of producing a rule that never fires.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from crucible_monitor.alerts.promql import Agg, Bin, Call, Expr, Num, Sel
from crucible_monitor.collectors import http_checks, mysql, php_fpm, services, system
from crucible_monitor.configtypes import format_duration, parse_duration
from crucible_monitor.models import MetricKind, MetricSpec

__all__ = [
    "COUNTER_FUNCTIONS",
    "GUARD_METRICS",
    "HOST_LABELS",
    "NAMES",
    "OVER_TIME",
    "PREDICTED",
    "RATIOS",
    "SEVERITIES",
    "SPECS",
    "UP_REASON",
    "Target",
    "Unconvertible",
    "const",
    "lookup",
    "selectors",
    "show",
    "special_rule",
]


class Unconvertible(Exception):
    """A rule our alerting cannot express; the message says why."""


SPECS: Mapping[str, MetricSpec] = {
    spec.name: spec
    for catalogue in (system.CATALOGUE, services.CATALOGUE, http_checks.CATALOGUE, mysql.CATALOGUE, php_fpm.CATALOGUE)
    for spec in catalogue
}
"""Our metrics a converted rule may name."""

_NET = {"device": "interface"}
NAMES: Mapping[str, tuple[str, Mapping[str, str], Mapping[str, str]]] = {
    # exporter metric: (ours, label renames, labels our series carry instead of a name part)
    "node_load1": ("load1", {}, {}),
    "node_load5": ("load5", {}, {}),
    "node_load15": ("load15", {}, {}),
    "node_memory_MemAvailable_bytes": ("memory_available_bytes", {}, {}),
    "node_memory_MemTotal_bytes": ("memory_total_bytes", {}, {}),
    "node_memory_MemFree_bytes": ("memory_free_bytes", {}, {}),
    "node_memory_Cached_bytes": ("memory_cached_bytes", {}, {}),
    "node_memory_Buffers_bytes": ("memory_buffers_bytes", {}, {}),
    "node_memory_SwapTotal_bytes": ("swap_total_bytes", {}, {}),
    "node_filesystem_avail_bytes": ("filesystem_avail_bytes", {}, {}),
    "node_filesystem_size_bytes": ("filesystem_size_bytes", {}, {}),
    "node_filesystem_files": ("filesystem_inodes", {}, {}),
    "node_disk_reads_completed_total": ("disk_reads_total", {}, {}),
    "node_disk_writes_completed_total": ("disk_writes_total", {}, {}),
    "node_disk_read_bytes_total": ("disk_read_bytes_total", {}, {}),
    "node_disk_written_bytes_total": ("disk_written_bytes_total", {}, {}),
    "node_disk_read_time_seconds_total": ("disk_read_time_seconds_total", {}, {}),
    "node_disk_write_time_seconds_total": ("disk_write_time_seconds_total", {}, {}),
    "node_disk_io_time_seconds_total": ("disk_io_time_seconds_total", {}, {}),
    "node_disk_io_now": ("disk_io_in_progress", {}, {}),
    "node_network_receive_bytes_total": ("network_receive_bytes_total", _NET, {}),
    "node_network_transmit_bytes_total": ("network_transmit_bytes_total", _NET, {}),
    "node_network_receive_packets_total": ("network_receive_packets_total", _NET, {}),
    "node_network_transmit_packets_total": ("network_transmit_packets_total", _NET, {}),
    "node_network_receive_errs_total": ("network_receive_errors_total", _NET, {}),
    "node_network_transmit_errs_total": ("network_transmit_errors_total", _NET, {}),
    "node_network_receive_drop_total": ("network_receive_drops_total", _NET, {}),
    "node_network_transmit_drop_total": ("network_transmit_drops_total", _NET, {}),
    "node_context_switches_total": ("context_switches_total", {}, {}),
    "node_intr_total": ("interrupts_total", {}, {}),
    "node_forks_total": ("forks_total", {}, {}),
    "node_procs_running": ("processes_running", {}, {}),
    "node_procs_blocked": ("processes_blocked", {}, {}),
    "node_filefd_allocated": ("file_descriptors_allocated", {}, {}),
    "node_filefd_maximum": ("file_descriptors_max", {}, {}),
    "node_pressure_cpu_waiting_seconds_total": (
        "pressure_stall_seconds_total",
        {},
        {"resource": "cpu", "kind": "some"},
    ),
    "node_pressure_memory_waiting_seconds_total": (
        "pressure_stall_seconds_total",
        {},
        {"resource": "memory", "kind": "some"},
    ),
    "node_pressure_memory_stalled_seconds_total": (
        "pressure_stall_seconds_total",
        {},
        {"resource": "memory", "kind": "full"},
    ),
    "node_pressure_io_waiting_seconds_total": ("pressure_stall_seconds_total", {}, {"resource": "io", "kind": "some"}),
    "node_pressure_io_stalled_seconds_total": ("pressure_stall_seconds_total", {}, {"resource": "io", "kind": "full"}),
    "mysql_up": ("mysql_up", {}, {}),
    "mysql_global_status_threads_connected": ("mysql_connections", {}, {}),
    "mysql_global_status_threads_running": ("mysql_threads_running", {}, {}),
    "mysql_global_variables_max_connections": ("mysql_max_connections", {}, {}),
    "mysql_global_status_slow_queries": ("mysql_slow_queries_total", {}, {}),
    "mysql_global_status_aborted_connects": ("mysql_aborted_connects_total", {}, {}),
    "mysql_global_status_uptime": ("mysql_uptime_seconds", {}, {}),
    "mysql_slave_status_seconds_behind_master": ("mysql_replica_lag_seconds", {}, {}),
    "mysql_slave_status_slave_io_running": ("mysql_replica_io_running", {}, {}),
    "mysql_slave_status_slave_sql_running": ("mysql_replica_sql_running", {}, {}),
    "phpfpm_up": ("php_fpm_up", {}, {}),
    "phpfpm_listen_queue": ("php_fpm_listen_queue", {}, {}),
    "phpfpm_max_children_reached": ("php_fpm_max_children_reached_total", {}, {}),
    "phpfpm_slow_requests": ("php_fpm_slow_requests_total", {}, {}),
    "phpfpm_active_processes": ("php_fpm_processes", {}, {"state": "active"}),
    "phpfpm_idle_processes": ("php_fpm_processes", {}, {"state": "idle"}),
}
"""Exporter metrics with a counterpart here (node_exporter, mysqld_exporter, php-fpm_exporter)."""

RATIOS: Mapping[tuple[str, str], tuple[str, bool, str]] = {
    # (numerator, denominator): (our ratio, whether ours is 1 - theirs, a note)
    ("node_memory_MemAvailable_bytes", "node_memory_MemTotal_bytes"): ("memory_used_ratio", True, ""),
    ("node_memory_SwapFree_bytes", "node_memory_SwapTotal_bytes"): ("swap_used_ratio", True, ""),
    ("node_filesystem_avail_bytes", "node_filesystem_size_bytes"): (
        "filesystem_used_ratio",
        True,
        "filesystem_used_ratio is used / (used + available), as df shows it: blocks reserved for root do not count",
    ),
    ("node_filesystem_files_free", "node_filesystem_files"): ("filesystem_inodes_used_ratio", True, ""),
    ("mysql_global_status_threads_connected", "mysql_global_variables_max_connections"): (
        "mysql_connections_used_ratio",
        False,
        "",
    ),
}
"""Ratios of two exporter gauges that are one of our ratios."""

GUARD_METRICS = frozenset({"node_filesystem_readonly"})
HOST_LABELS = frozenset({"instance", "job"})
COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "delta"})
OVER_TIME: Mapping[str, str | None] = {
    "avg_over_time": "avg",
    "max_over_time": "max",
    "min_over_time": "min",
    "quantile_over_time": None,
    "last_over_time": None,
}
SEVERITIES: Mapping[str, str] = {
    "info": "info",
    "none": "info",
    "low": "info",
    "warning": "warning",
    "warn": "warning",
    "minor": "warning",
    "critical": "critical",
    "error": "critical",
    "page": "critical",
    "high": "critical",
    "major": "critical",
}
UP_REASON = (
    "`up` is Prometheus' own scrape health; there is no scrape here: the agent reports itself "
    "(GET /api/v1/health, agent_collector_errors_total) and systemd's watchdog restarts it; a source that stops "
    "answering is a blind spot in get_system_status"
)


@dataclass
class Target:
    """Our metric for a series, with the labels to match and rule fields such as ``function`` or ``window``."""

    metric: str
    match: dict[str, str] = field(default_factory=dict)
    complement: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] = ()
    divide_by: float = 1.0


def lookup(sel: Sel, notes: list[str], *, counter: bool | None = None) -> Target:
    """Our metric for a selector and its matchers as exact label matches (``=`` on a label we have).

    ``counter`` True: it must be a counter (inside rate()); False: a gauge; None: either.

    Raises:
        Unconvertible: no counterpart, or a counter where a gauge is needed (or the reverse).
    """
    ours, renames, fixed = NAMES.get(sel.metric, (sel.metric, {}, {}))
    spec = SPECS.get(ours)
    if spec is None:
        raise Unconvertible(f"no counterpart for {sel.metric} (see docs/migrate-node-exporter.md)")
    if counter is True and spec.kind is not MetricKind.COUNTER:
        raise Unconvertible(f"{sel.metric} is a counter there, but {ours} is a gauge here: compare it directly")
    if counter is False and spec.kind is MetricKind.COUNTER:
        raise Unconvertible(f"{ours} is a counter: compare its rate, e.g. rate({sel.metric}[5m]) > N")
    match = dict(fixed)
    dropped: list[str] = []
    for m in sel.matchers:
        label = renames.get(m.label, m.label)
        if m.label in HOST_LABELS:
            dropped.append(f'{m.label}{m.op}"{m.value}"')
        elif m.op == "=" and label in spec.labels:
            match[label] = m.value
        else:
            dropped.append(f'{m.label}{m.op}"{m.value}"')
    if dropped:
        why = "rules match labels exactly; job and instance mean this host"
        if any(d.startswith(("fstype", "mountpoint")) for d in dropped):
            why += "; the system collector leaves out pseudo filesystems (collectors.system.include_fstypes keeps one)"
        notes.append(f"dropped the matchers {', '.join(dropped)} of {sel.metric} ({why})")
    return Target(ours, match, labels=spec.labels)


def selectors(expr: Expr) -> Iterator[Sel]:
    """Every selector in ``expr``."""
    match expr:
        case Sel():
            yield expr
        case Call(_, args):
            for arg in args:
                yield from selectors(arg)
        case Agg(_, inner, _, _, _):
            yield from selectors(inner)
        case Bin(_, left, right, _):
            yield from selectors(left)
            yield from selectors(right)


def show(expr: Expr) -> str:
    """PromQL text for ``expr`` (for notes and reasons)."""
    match expr:
        case Num(value):
            return f"{value:g}"
        case Sel(metric, matchers, rng):
            inner = ",".join(f'{m.label}{m.op}"{m.value}"' for m in matchers)
            return metric + (f"{{{inner}}}" if inner else "") + (f"[{rng}]" if rng else "")
        case Call(fn, args):
            return f"{fn}({', '.join(show(a) for a in args)})"
        case Agg(op, inner, by, without, param):
            grouping = f" by ({', '.join(by)})" if by is not None else ""
            grouping += f" without ({', '.join(without)})" if without is not None else ""
            return f"{op}{grouping} ({show(param) + ', ' if param else ''}{show(inner)})"
        case Bin(op, left, right, modifiers):
            return f"{_wrap(left)} {' '.join((op, *modifiers))} {_wrap(right)}"
    raise TypeError(f"not an expression: {expr!r}")


_ARITHMETIC: Mapping[str, Callable[[float, float], float]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "^": operator.pow,
    "%": operator.mod,
}


def const(expr: Expr) -> float | None:
    """The value of a constant expression (``86400 * 7``, ``24*60*60``), else None."""
    if isinstance(expr, Num):
        return expr.value
    if isinstance(expr, Bin) and expr.op in ("+", "-", "*", "/", "^", "%"):
        left, right = const(expr.left), const(expr.right)
        if left is None or right is None:
            return None
        try:
            return float(_ARITHMETIC[expr.op](left, right))
        except ZeroDivisionError:
            return None
    return None


def _wrap(expr: Expr) -> str:
    return f"({show(expr)})" if isinstance(expr, Bin) else show(expr)


# -- service, HTTP-check and certificate rules ---------------------------------------------------------------

_SYSTEMD_STATE = frozenset({"node_systemd_unit_state", "systemd_unit_state"})
_RESTARTS = frozenset({"systemd_service_restart_total", "node_systemd_service_restart_total"})
_PROBE_SLOW = frozenset({"probe_duration_seconds", "probe_http_duration_seconds"})
_CERT = "probe_ssl_earliest_cert_expiry"
PREDICTED: Mapping[str, str] = {
    "node_filesystem_avail_bytes": "filesystem_used_ratio",
    "node_filesystem_files_free": "filesystem_inodes_used_ratio",
    "node_memory_MemAvailable_bytes": "memory_used_ratio",
}


def _means_zero(op: str, value: float) -> bool:
    return (op, value) in (("==", 0), ("<", 1), ("!=", 1), ("<=", 0))


def _means_one(op: str, value: float) -> bool:
    return (op, value) in (("==", 1), (">", 0), ("!=", 0), (">=", 1))


def _globs(sel: Sel, label: str, notes: list[str]) -> list[str]:
    """A selector's matchers on ``label`` as our globs (``php.+`` → ``php*``); ``["*"]`` without one."""
    found: list[str] = []
    for m in sel.matchers:
        if m.label != label:
            continue
        glob = re.sub(r"\.[+*]", "*", m.value)
        if m.op == "=" or (m.op == "=~" and not re.search(r"[\\\[\]()|?{}^$+]", glob)):
            found.append(glob)
        else:
            notes.append(f'dropped {label}{m.op}"{m.value}" (service and check names are globs: list them)')
    return found or ["*"]


def _over(series: Expr) -> Expr:
    """``last_over_time(x[10m])`` → ``x``."""
    if isinstance(series, Call) and series.fn in OVER_TIME and len(series.args) == 1:
        return series.args[0]
    return series


def special_rule(series: Expr, op: str, value: float, notes: list[str]) -> dict[str, Any] | None:
    """A service, HTTP-check or certificate rule for ``series op value``, or None when it is a threshold.

    Raises:
        Unconvertible: a systemd, probe or certificate series compared in a way those rules cannot express.
    """
    match series:
        case Sel(metric) if metric in _SYSTEMD_STATE:
            states = [m.value for m in series.matchers if m.label == "state" and m.op == "="]
            down = (states in (["failed"], ["inactive"]) and _means_one(op, value)) or (
                states == ["active"] and _means_zero(op, value)
            )
            if not down:
                raise Unconvertible(f"{metric} compared as {op} {value:g}: only 'unit failed/inactive' maps here")
            notes.append("service rules' down means not active: failed, inactive and activating alike")
            return {"kind": "service", "condition": "down", "services": _globs(series, "name", notes)}
        case Call("increase" | "changes", (Sel(metric, range=str(rng)) as sel,)) if metric in _RESTARTS:
            if op not in (">", ">="):
                raise Unconvertible(f"restart count compared as {op}; only 'more than N restarts' maps here")
            restarts = int(value) + 1 if op == ">" else max(1, int(value))
            return {
                "kind": "service",
                "condition": "restarts",
                "restarts": restarts,
                "within": format_duration(parse_duration(rng)),
                "services": _globs(sel, "name", notes),
            }
        case Call("predict_linear", (Sel(metric, range=str()) as sel, horizon)) if metric in PREDICTED:
            seconds = const(horizon)
            if op not in ("<", "<=") or value != 0 or seconds is None or seconds <= 0:
                raise Unconvertible(f"predict_linear {op} {value:g}: only 'runs out (< 0) within T' maps to a forecast")
            notes.append(
                "a forecast rule: our Theil-Sen trend over the analysis window, not a linear fit over the range"
            )
            base = lookup(Sel(PREDICTED[metric], sel.matchers), notes)
            body: dict[str, Any] = {"kind": "forecast", "metric": base.metric}
            if base.match:
                body["match"] = base.match
            return {**body, "within": format_duration(parse_duration(seconds))}
        case Sel("probe_success"):
            if not _means_zero(op, value):
                raise Unconvertible(f"probe_success {op} {value:g}: only 'the probe failed' maps here")
            notes.append("blackbox probes are collectors.http_checks here: define a check per target")
            return {"kind": "http_check", "condition": "failing", "failures": 1}
        case Sel(metric) if metric in _PROBE_SLOW:
            if op not in (">", ">="):
                raise Unconvertible(f"{metric} {op} {value:g}: only 'slower than' maps here")
            notes.append("blackbox probes are collectors.http_checks here: define a check per target")
            return {"kind": "http_check", "condition": "slow", "slower_than": format_duration(parse_duration(value))}
        case Sel("probe_http_status_code"):
            raise Unconvertible(
                "an HTTP check fails by itself on a status other than its expected_status "
                "(collectors.http_checks[].expected_status): use kind: http_check, condition: failing"
            )
        case Bin("-", left, Call("time", ())) if _is_cert(_over(left)):
            if op not in ("<", "<="):
                raise Unconvertible(f"certificate expiry compared as {op}; only 'expires within' maps here")
            if value <= 0:
                raise Unconvertible(
                    "an expired certificate: our certificate rules look ahead (days > 0), and an HTTP check "
                    "fails on an expired certificate by itself (failure class tls)"
                )
            return {"kind": "certificate", "days": round(value / 86400, 6)}
    return None


def _is_cert(expr: Expr) -> bool:
    return isinstance(expr, Sel) and expr.metric == _CERT
