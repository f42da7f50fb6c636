"""Host metrics read directly from procfs: CPU, memory, swap, filesystems, disks, network, load and pressure.

Every file is read once per cycle with one ``read()`` and parsed with ``str`` methods (no psutil, no regex): the
goal is well under a millisecond per cycle. Each file feeds only its own metrics, so a missing or malformed file
drops those metrics (logged once at debug) and the rest of the cycle goes on; only an unreadable ``/proc/stat``
fails the collection. Rates are not computed here, except CPU ratios, which are deltas of ``/proc/stat`` between
two cycles: the first cycle has none, and a CPU whose counters went backwards is left out of that cycle.

``statvfs`` on a network filesystem (NFS, CIFS...) can hang for minutes when the server is away, so those mounts
are asked from a daemon thread with a timeout; a mount whose call is still hanging is skipped until it returns.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from crucible_monitor.collectors.base import Collection
from crucible_monitor.collectors.mounts import REMOTE_FSTYPES, Mount, select_mounts
from crucible_monitor.collectors.procfs import CPU_MODES, NO_LABELS, PSI_RESOURCES, RATIO_DECIMALS, ProcfsParsers
from crucible_monitor.config import SystemCollectorConfig
from crucible_monitor.errors import CollectorError
from crucible_monitor.models import MetricKind, MetricSpec, Sample

__all__ = ["CATALOGUE", "CPU_MODES", "RATIO_DECIMALS", "SystemCollector"]

logger = logging.getLogger(__name__)

_G, _C = MetricKind.GAUGE, MetricKind.COUNTER
_FS = ("mountpoint", "device", "fstype")
_DISK = ("device",)
_NET = ("interface",)
_PSI = ("resource", "kind")

CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec(
        "cpu_usage_ratio", _G, "ratio", "Busy share of CPU time since the last cycle (1 - idle - iowait).", ("cpu",)
    ),
    MetricSpec("cpu_mode_ratio", _G, "ratio", "Share of CPU time in each mode since the last cycle.", ("cpu", "mode")),
    MetricSpec("cpu_count", _G, "cpus", "Online CPUs."),
    MetricSpec("context_switches_total", _C, "switches", "Context switches since boot."),
    MetricSpec("interrupts_total", _C, "interrupts", "Interrupts serviced since boot."),
    MetricSpec("forks_total", _C, "processes", "Processes and threads created since boot."),
    MetricSpec("processes_running", _G, "processes", "Runnable threads."),
    MetricSpec("processes_blocked", _G, "processes", "Threads blocked waiting for I/O."),
    MetricSpec("processes_count", _G, "processes", "Processes (numeric entries of procfs)."),
    MetricSpec("memory_total_bytes", _G, "bytes", "Usable RAM."),
    MetricSpec("memory_available_bytes", _G, "bytes", "RAM available for new work without swapping (MemAvailable)."),
    MetricSpec("memory_used_bytes", _G, "bytes", "Total minus available."),
    MetricSpec("memory_used_ratio", _G, "ratio", "Used over total."),
    MetricSpec("memory_free_bytes", _G, "bytes", "RAM not used at all (MemFree)."),
    MetricSpec("memory_cached_bytes", _G, "bytes", "Page cache (Cached)."),
    MetricSpec("memory_buffers_bytes", _G, "bytes", "Block device buffers (Buffers)."),
    MetricSpec("swap_total_bytes", _G, "bytes", "Swap space."),
    MetricSpec("swap_used_bytes", _G, "bytes", "Swap in use."),
    MetricSpec("swap_used_ratio", _G, "ratio", "Swap used over swap total; only when swap exists."),
    MetricSpec("swap_in_bytes_total", _C, "bytes", "Bytes swapped in since boot."),
    MetricSpec("swap_out_bytes_total", _C, "bytes", "Bytes swapped out since boot."),
    MetricSpec("filesystem_size_bytes", _G, "bytes", "Filesystem size.", _FS),
    MetricSpec("filesystem_used_bytes", _G, "bytes", "Space in use.", _FS),
    MetricSpec("filesystem_avail_bytes", _G, "bytes", "Space available to unprivileged users.", _FS),
    MetricSpec("filesystem_used_ratio", _G, "ratio", "Used over used plus available, as df shows it.", _FS),
    MetricSpec("filesystem_inodes", _G, "inodes", "Inodes; left out when the filesystem reports none.", _FS),
    MetricSpec("filesystem_inodes_used", _G, "inodes", "Inodes in use.", _FS),
    MetricSpec("filesystem_inodes_used_ratio", _G, "ratio", "Inodes used over inodes total.", _FS),
    MetricSpec("disk_reads_total", _C, "operations", "Reads completed.", _DISK),
    MetricSpec("disk_writes_total", _C, "operations", "Writes completed.", _DISK),
    MetricSpec("disk_read_bytes_total", _C, "bytes", "Bytes read.", _DISK),
    MetricSpec("disk_written_bytes_total", _C, "bytes", "Bytes written.", _DISK),
    MetricSpec("disk_read_time_seconds_total", _C, "seconds", "Time spent reading (summed over requests).", _DISK),
    MetricSpec("disk_write_time_seconds_total", _C, "seconds", "Time spent writing (summed over requests).", _DISK),
    MetricSpec(
        "disk_io_time_seconds_total", _C, "seconds", "Time the device had I/O in flight (its rate: busy).", _DISK
    ),
    MetricSpec("disk_io_in_progress", _G, "operations", "I/O requests in flight.", _DISK),
    MetricSpec("network_receive_bytes_total", _C, "bytes", "Bytes received.", _NET),
    MetricSpec("network_transmit_bytes_total", _C, "bytes", "Bytes sent.", _NET),
    MetricSpec("network_receive_packets_total", _C, "packets", "Packets received.", _NET),
    MetricSpec("network_transmit_packets_total", _C, "packets", "Packets sent.", _NET),
    MetricSpec("network_receive_errors_total", _C, "errors", "Receive errors.", _NET),
    MetricSpec("network_transmit_errors_total", _C, "errors", "Transmit errors.", _NET),
    MetricSpec("network_receive_drops_total", _C, "packets", "Received packets dropped.", _NET),
    MetricSpec("network_transmit_drops_total", _C, "packets", "Outgoing packets dropped.", _NET),
    MetricSpec("load1", _G, "threads", "Load average over 1 minute."),
    MetricSpec("load5", _G, "threads", "Load average over 5 minutes."),
    MetricSpec("load15", _G, "threads", "Load average over 15 minutes."),
    MetricSpec("uptime_seconds", _G, "seconds", "Seconds since boot."),
    MetricSpec("file_descriptors_allocated", _G, "file descriptors", "File handles allocated by the kernel."),
    MetricSpec("file_descriptors_max", _G, "file descriptors", "Most file handles the kernel will allocate."),
    MetricSpec("pressure_stall_ratio", _G, "ratio", "Share of the last 10 s that tasks stalled on a resource.", _PSI),
    MetricSpec("pressure_stall_seconds_total", _C, "seconds", "Time tasks stalled on a resource since boot.", _PSI),
)


FAMILY_PREFIXES: dict[str, tuple[str, ...]] = {
    "cpu": ("cpu_", "context_switches_", "interrupts_", "forks_"),
    "memory": ("memory_", "swap_"),
    "disk": ("filesystem_", "disk_"),
    "network": ("network_",),
    "load": ("load1", "load5", "load15", "processes_"),
    "pressure": ("pressure_",),
    "host": ("uptime_", "file_descriptors_"),
}
"""Each ``collectors.system.metrics`` family by the prefixes of its metric names."""


def metric_family(metric: str) -> str:
    """The family of a system metric (``host`` for one no prefix claims)."""
    return next((f for f, prefixes in FAMILY_PREFIXES.items() if metric.startswith(prefixes)), "host")


class SystemCollector:
    """CPU, memory, swap, filesystems, disks, network, load and pressure, from procfs.

    Args:
        config: the ``collectors.system`` settings.
        procfs: where procfs is mounted; defaults to ``config.procfs``.
        statvfs: ``os.statvfs``, injectable to test a failing mount.
        clock: the sample timestamps.
    """

    name = "system"
    catalogue: Sequence[MetricSpec] = CATALOGUE
    remote_timeout: float = 2.0
    """Seconds to wait for ``statvfs`` on a network filesystem."""

    def __init__(
        self,
        config: SystemCollectorConfig,
        *,
        procfs: Path | None = None,
        statvfs: Callable[[str], os.statvfs_result] = os.statvfs,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._statvfs = statvfs
        self._clock = clock
        root = procfs or config.procfs
        self._root = str(root)
        self._stat_path = str(root / "stat")
        self._mounts_paths = (str(root / "self" / "mounts"), str(root / "mounts"))
        self._noted: set[str] = set()
        self._parsers = parsers = ProcfsParsers(config, self._note)
        self._families = frozenset(config.metrics)
        sections: list[tuple[str, str, Callable[[str, float, list[Sample]], None]]] = [
            ("memory", str(root / "meminfo"), parsers.meminfo),
            ("memory", str(root / "vmstat"), parsers.vmstat),
            ("disk", str(root / "diskstats"), parsers.diskstats),
            ("network", str(root / "net" / "dev"), parsers.netdev),
            ("load", str(root / "loadavg"), parsers.loadavg),
            ("host", str(root / "uptime"), parsers.uptime),
            ("host", str(root / "sys" / "fs" / "file-nr"), parsers.file_nr),
        ]
        sections.extend(("pressure", str(root / "pressure" / r), partial(parsers.pressure, r)) for r in PSI_RESOURCES)
        self._sections = tuple((path, parse) for family, path, parse in sections if family in self._families)
        self._mounts_text: str | None = None
        self._mounts: list[Mount] = []
        self._stuck: set[str] = set()

    async def collect(self) -> Collection:
        """Read procfs once.

        Raises:
            CollectorError: ``/proc/stat`` cannot be read.
        """
        ts = self._clock()
        samples = self._collect_local(ts)
        remote = [m for m in self._mounts if m.fstype in REMOTE_FSTYPES] if "disk" in self._families else []
        if remote:
            results = await asyncio.gather(*(self._remote_statvfs(m.path) for m in remote))
            for mount, st in zip(remote, results, strict=True):
                if st is not None:
                    self._filesystem(mount, st, ts, samples)
        if len(self._families) < len(FAMILY_PREFIXES):  # /proc/stat gives cpu and load metrics together
            samples = [s for s in samples if metric_family(s.metric) in self._families]
        return Collection(samples=samples)

    # -- reading --------------------------------------------------------------------------------------------

    def _read(self, path: str) -> str | None:
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "surrogateescape")
        except OSError as exc:
            self._note(path, "cannot read %s: %s", path, exc)
            return None

    def _note(self, key: str, message: str, *args: object) -> None:
        """Log a problem with one source at debug, once per source."""
        if key not in self._noted:
            self._noted.add(key)
            logger.debug(message, *args)

    def _collect_local(self, ts: float) -> list[Sample]:
        """Everything but network filesystems."""
        try:
            with open(self._stat_path, "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError as exc:
            raise CollectorError(f"cannot read {self._stat_path}: {exc.strerror or exc}") from exc
        out: list[Sample] = []
        self._parsers.stat(stat, ts, out)
        self._processes(ts, out)
        for path, parse in self._sections:
            text = self._read(path)
            if text is not None:
                self._parse(path, text, parse, ts, out)
        if "disk" in self._families:
            self._local_filesystems(ts, out)
        return out

    def _parse(
        self, path: str, text: str, parse: Callable[[str, float, list[Sample]], None], ts: float, out: list[Sample]
    ) -> None:
        """Run one parser; on a malformed file keep none of its samples."""
        part: list[Sample] = []
        try:
            parse(text, ts, part)
        except (ValueError, IndexError, KeyError) as exc:
            self._note(path, "skipping malformed %s: %r", path, exc)
            return
        out.extend(part)

    def _processes(self, ts: float, out: list[Sample]) -> None:
        try:
            names = os.listdir(self._root)
        except OSError as exc:
            self._note("listdir", "cannot list %s: %s", self._root, exc)
            return
        out.append(Sample("processes_count", sum(1 for n in names if n.isdigit()), NO_LABELS, ts))

    # -- filesystems ----------------------------------------------------------------------------------------

    def _local_filesystems(self, ts: float, out: list[Sample]) -> None:
        text = None
        for path in self._mounts_paths:
            text = self._read(path)
            if text is not None:
                break
        if text is None:
            self._mounts = []
            return
        if text != self._mounts_text:
            self._mounts = select_mounts(text, self._config.include_fstypes, self._config.exclude_mountpoints)
            self._mounts_text = text
        for mount in self._mounts:
            if mount.fstype in REMOTE_FSTYPES:
                continue
            try:
                st = self._statvfs(mount.path)
            except OSError as exc:
                self._note(f"statvfs:{mount.path}", "skipping filesystem %s: %s", mount.path, exc)
                continue
            self._filesystem(mount, st, ts, out)

    def _filesystem(self, mount: Mount, st: os.statvfs_result, ts: float, out: list[Sample]) -> None:
        size = st.f_blocks * st.f_frsize
        avail = st.f_bavail * st.f_frsize
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        labels = mount.labels
        out.append(Sample("filesystem_size_bytes", size, labels, ts))
        out.append(Sample("filesystem_used_bytes", used, labels, ts))
        out.append(Sample("filesystem_avail_bytes", avail, labels, ts))
        if used + avail > 0:
            out.append(Sample("filesystem_used_ratio", round(used / (used + avail), RATIO_DECIMALS), labels, ts))
        if st.f_files > 0:
            inodes_used = st.f_files - st.f_ffree
            out.append(Sample("filesystem_inodes", st.f_files, labels, ts))
            out.append(Sample("filesystem_inodes_used", inodes_used, labels, ts))
            out.append(
                Sample("filesystem_inodes_used_ratio", round(inodes_used / st.f_files, RATIO_DECIMALS), labels, ts)
            )

    async def _remote_statvfs(self, path: str) -> os.statvfs_result | None:
        """``statvfs`` in a daemon thread, so a dead NFS server cannot hang the agent (or its exit)."""
        if path in self._stuck:
            self._note(f"stuck:{path}", "skipping filesystem %s: statvfs still hanging", path)
            return None
        future: concurrent.futures.Future[os.statvfs_result] = concurrent.futures.Future()

        def work() -> None:
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(self._statvfs(path))
                    except OSError as exc:
                        future.set_exception(exc)
            finally:
                self._stuck.discard(path)

        self._stuck.add(path)
        threading.Thread(target=work, name=f"statvfs {path}", daemon=True).start()
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.remote_timeout)
        except TimeoutError:
            logger.warning("statvfs(%s) took over %s s: skipping it until it returns", path, self.remote_timeout)
        except OSError as exc:
            self._note(f"statvfs:{path}", "skipping filesystem %s: %s", path, exc)
        return None
