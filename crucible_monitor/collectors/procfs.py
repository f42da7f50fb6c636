"""Parsers of the procfs files the system collector reads: ``/proc/stat``, memory, disks, network, load, pressure.

Each parser appends the samples of one file's text to ``out`` and raises ``ValueError``, ``IndexError`` or
``KeyError`` on a malformed file (the collector then keeps none of that file's samples); a malformed line of a
file whose lines stand alone is skipped and reported through the collector's ``note``.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from crucible_monitor.collectors.mounts import whole_disks
from crucible_monitor.config import SystemCollectorConfig
from crucible_monitor.models import Sample

__all__ = ["CPU_MODES", "NO_LABELS", "PSI_RESOURCES", "RATIO_DECIMALS", "Note", "ProcfsParsers"]

RATIO_DECIMALS = 4
"""Ratios are kept to 0.01 %: finer than jiffies resolve in a 10 s interval, and short decimals store in ~1 byte."""

CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
"""The first eight columns of a ``cpu`` line of ``/proc/stat`` (guest time is already counted in user and nice)."""

_SECTOR = 512
NO_LABELS: Mapping[str, str] = MappingProxyType({})
_MEMINFO_KEYS = frozenset(("MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapTotal", "SwapFree"))
PSI_RESOURCES = ("cpu", "memory", "io")
_NET_FIELDS = (  # column of the part after "iface:" in /proc/net/dev
    (0, "network_receive_bytes_total"),
    (1, "network_receive_packets_total"),
    (2, "network_receive_errors_total"),
    (3, "network_receive_drops_total"),
    (8, "network_transmit_bytes_total"),
    (9, "network_transmit_packets_total"),
    (10, "network_transmit_errors_total"),
    (11, "network_transmit_drops_total"),
)
_LABEL_CACHE_LIMIT = 4096  # interfaces such as docker's veth* come and go: don't keep their labels forever


def _field(text: str, key: str) -> str | None:
    """The value of the ``key value`` line of ``text`` (``/proc/vmstat``), found without splitting every line."""
    prefix = key + " "
    if text.startswith(prefix):
        start = len(prefix)
    else:
        found = text.find("\n" + prefix)
        if found < 0:
            return None
        start = found + 1 + len(prefix)
    end = text.find("\n", start)
    return text[start:end] if end >= 0 else text[start:]


class Note(Protocol):
    """Logs a problem with one source at debug, once per ``key``."""

    def __call__(self, key: str, message: str, *args: object) -> None: ...


class ProcfsParsers:
    """The parsers, with what they keep between cycles: the last CPU counters and the label caches.

    Args:
        config: the ``collectors.system`` settings (``per_cpu``, ``exclude_interfaces``).
        note: where a malformed line is reported.
    """

    def __init__(self, config: SystemCollectorConfig, note: Note) -> None:
        self._config = config
        self._note = note
        self._page_size = os.sysconf("SC_PAGE_SIZE")
        self._prev_cpu: dict[str, list[int]] = {}
        self._cpu_labels: dict[str, tuple[Mapping[str, str], tuple[Mapping[str, str], ...]]] = {}
        self._disk_names: list[str] = []
        self._disks: dict[str, Mapping[str, str]] = {}
        self._net_labels: dict[str, Mapping[str, str] | None] = {}
        self._psi_labels = {
            (r, k): MappingProxyType({"resource": r, "kind": k}) for r in PSI_RESOURCES for k in ("some", "full")
        }

    # -- /proc/stat -----------------------------------------------------------------------------------------

    def stat(self, text: str, ts: float, out: list[Sample]) -> None:
        """``/proc/stat``: CPU ratios since the last call, switches, interrupts, forks; a malformed line is skipped."""
        per_cpu = self._config.per_cpu
        prev, current = self._prev_cpu, {}
        count = 0
        for line in text.splitlines():
            key, _, rest = line.partition(" ")
            try:
                if key.startswith("cpu"):
                    cpu = key[3:] or "total"
                    if cpu != "total":
                        count += 1
                        if not per_cpu:
                            continue
                    values = [int(v) for v in rest.split()[:8]]
                    if len(values) < 8:
                        raise ValueError(f"{key}: {len(values)} columns")
                    current[cpu] = values
                    if cpu in prev:
                        self._cpu_ratios(cpu, values, prev[cpu], ts, out)
                elif key == "ctxt":
                    out.append(Sample("context_switches_total", int(rest), NO_LABELS, ts))
                elif key == "intr":
                    out.append(Sample("interrupts_total", int(rest.partition(" ")[0]), NO_LABELS, ts))
                elif key == "processes":
                    out.append(Sample("forks_total", int(rest), NO_LABELS, ts))
                elif key == "procs_running":
                    out.append(Sample("processes_running", int(rest), NO_LABELS, ts))
                elif key == "procs_blocked":
                    out.append(Sample("processes_blocked", int(rest), NO_LABELS, ts))
            except ValueError as exc:
                self._note(f"stat:{key}", "skipping malformed /proc/stat line %r: %s", line[:80], exc)
        if count:
            out.append(Sample("cpu_count", count, NO_LABELS, ts))
        self._prev_cpu = current

    def _cpu_ratios(self, cpu: str, values: list[int], before: list[int], ts: float, out: list[Sample]) -> None:
        # iowait (and idle, on some kernels) can go backwards a little: count such a mode as 0, as psutil does
        deltas = [max(0, a - b) for a, b in zip(values, before, strict=True)]
        total = sum(deltas)
        if total <= 0:  # no time passed: no ratio, not a false one
            return
        labels = self._cpu_labels.get(cpu)
        if labels is None:
            labels = self._cpu_labels[cpu] = (
                MappingProxyType({"cpu": cpu}),
                tuple(MappingProxyType({"cpu": cpu, "mode": m}) for m in CPU_MODES),
            )
        usage_labels, mode_labels = labels
        out.append(
            Sample("cpu_usage_ratio", round(1.0 - (deltas[3] + deltas[4]) / total, RATIO_DECIMALS), usage_labels, ts)
        )
        out.extend(
            Sample("cpu_mode_ratio", round(d / total, RATIO_DECIMALS), lab, ts)
            for d, lab in zip(deltas, mode_labels, strict=True)
        )

    # -- memory ---------------------------------------------------------------------------------------------

    def meminfo(self, text: str, ts: float, out: list[Sample]) -> None:
        """``/proc/meminfo``: memory and swap sizes; a malformed line is skipped."""
        mem: dict[str, int] = {}
        for line in text.splitlines():
            key, _, rest = line.partition(":")
            if key in _MEMINFO_KEYS:
                number, _, unit = rest.strip().partition(" ")
                try:
                    mem[key] = int(number) * (1024 if unit else 1)
                except ValueError:
                    self._note(f"meminfo:{key}", "skipping malformed meminfo line %r", line[:80])
        total = mem.get("MemTotal")
        if total is not None:
            available = mem.get("MemAvailable")
            if available is None and {"MemFree", "Buffers", "Cached"} <= mem.keys():
                self._note("MemAvailable", "no MemAvailable (kernel < 3.14): using free + buffers + cached")
                available = mem["MemFree"] + mem["Buffers"] + mem["Cached"]
            out.append(Sample("memory_total_bytes", total, NO_LABELS, ts))
            if available is not None:
                used = max(total - available, 0)
                out.append(Sample("memory_available_bytes", available, NO_LABELS, ts))
                out.append(Sample("memory_used_bytes", used, NO_LABELS, ts))
                if total > 0:
                    out.append(Sample("memory_used_ratio", round(used / total, RATIO_DECIMALS), NO_LABELS, ts))
        for key, metric in (
            ("MemFree", "memory_free_bytes"),
            ("Cached", "memory_cached_bytes"),
            ("Buffers", "memory_buffers_bytes"),
        ):
            if key in mem:
                out.append(Sample(metric, mem[key], NO_LABELS, ts))
        swap_total, swap_free = mem.get("SwapTotal"), mem.get("SwapFree")
        if swap_total is not None and swap_free is not None:
            swap_used = max(swap_total - swap_free, 0)
            out.append(Sample("swap_total_bytes", swap_total, NO_LABELS, ts))
            out.append(Sample("swap_used_bytes", swap_used, NO_LABELS, ts))
            if swap_total > 0:
                out.append(Sample("swap_used_ratio", round(swap_used / swap_total, RATIO_DECIMALS), NO_LABELS, ts))

    def vmstat(self, text: str, ts: float, out: list[Sample]) -> None:
        """``/proc/vmstat``: bytes swapped in and out."""
        for key, metric in (("pswpin", "swap_in_bytes_total"), ("pswpout", "swap_out_bytes_total")):
            pages = _field(text, key)
            if pages is not None:
                out.append(Sample(metric, int(pages) * self._page_size, NO_LABELS, ts))

    # -- disks and network ----------------------------------------------------------------------------------

    def diskstats(self, text: str, ts: float, out: list[Sample]) -> None:
        """``/proc/diskstats``: I/O counters of the whole disks; a malformed line is skipped."""
        rows = [line.split() for line in text.splitlines()]
        rows = [r for r in rows if len(r) >= 14]
        names = [r[2] for r in rows]
        if names != self._disk_names:
            self._disk_names = names
            self._disks = {n: MappingProxyType({"device": n}) for n in whole_disks(names)}
        disks = self._disks
        for r in rows:
            labels = disks.get(r[2])
            if labels is None:
                continue
            try:
                values = (
                    ("disk_reads_total", int(r[3])),
                    ("disk_read_bytes_total", int(r[5]) * _SECTOR),
                    ("disk_read_time_seconds_total", int(r[6]) / 1000),
                    ("disk_writes_total", int(r[7])),
                    ("disk_written_bytes_total", int(r[9]) * _SECTOR),
                    ("disk_write_time_seconds_total", int(r[10]) / 1000),
                    ("disk_io_in_progress", int(r[11])),
                    ("disk_io_time_seconds_total", int(r[12]) / 1000),
                )
            except ValueError:
                self._note(f"disk:{r[2]}", "skipping malformed diskstats line for %s", r[2])
                continue
            out.extend(Sample(metric, value, labels, ts) for metric, value in values)

    def netdev(self, text: str, ts: float, out: list[Sample]) -> None:
        """``/proc/net/dev``: traffic counters of the interfaces not excluded; a malformed line is skipped."""
        cache = self._net_labels
        for line in text.splitlines()[2:]:
            name, sep, rest = line.partition(":")
            name = name.strip()
            if name not in cache:
                if len(cache) > _LABEL_CACHE_LIMIT:
                    cache.clear()
                excluded = any(fnmatch.fnmatchcase(name, p) for p in self._config.exclude_interfaces)
                cache[name] = None if excluded or not sep else MappingProxyType({"interface": name})
            labels = cache[name]
            if labels is None:
                continue
            fields = rest.split()
            try:
                values = [(metric, int(fields[i])) for i, metric in _NET_FIELDS]
            except (ValueError, IndexError):
                self._note(f"net:{name}", "skipping malformed /proc/net/dev line for %s", name)
                continue
            out.extend(Sample(metric, value, labels, ts) for metric, value in values)

    # -- load, uptime, file handles, pressure ---------------------------------------------------------------

    def loadavg(self, text: str, ts: float, out: list[Sample]) -> None:
        """``/proc/loadavg``: the three load averages."""
        fields = text.split()
        values = [float(fields[i]) for i in range(3)]
        out.extend(Sample(m, v, NO_LABELS, ts) for m, v in zip(("load1", "load5", "load15"), values, strict=True))

    def uptime(self, text: str, ts: float, out: list[Sample]) -> None:
        """``/proc/uptime``: seconds since boot."""
        out.append(Sample("uptime_seconds", float(text.split()[0]), NO_LABELS, ts))

    def file_nr(self, text: str, ts: float, out: list[Sample]) -> None:
        """``/proc/sys/fs/file-nr``: file handles allocated and the most allowed."""
        allocated, _, maximum = text.split()[:3]
        out.append(Sample("file_descriptors_allocated", int(allocated), NO_LABELS, ts))
        out.append(Sample("file_descriptors_max", int(maximum), NO_LABELS, ts))

    def pressure(self, resource: str, text: str, ts: float, out: list[Sample]) -> None:
        """``/proc/pressure/<resource>``: the share and total time tasks stalled on ``resource``."""
        for line in text.splitlines():
            kind, _, rest = line.partition(" ")
            if kind not in ("some", "full"):
                continue
            fields = dict(f.partition("=")[::2] for f in rest.split())
            labels = self._psi_labels[(resource, kind)]
            out.append(Sample("pressure_stall_ratio", round(float(fields["avg10"]) / 100, RATIO_DECIMALS), labels, ts))
            out.append(Sample("pressure_stall_seconds_total", int(fields["total"]) / 1e6, labels, ts))
