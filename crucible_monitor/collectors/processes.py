"""The top processes by CPU and by memory, read directly from procfs.

Every snapshot reads ``<procfs>/<pid>/stat`` of each process (state, CPU ticks, threads, start time and RSS: the
``rss`` field of ``stat`` is the same count as ``statm``'s resident pages), then ``cmdline`` and ``status`` (for the
user) of only the processes that make a top list. CPU is measured between snapshots, in cores; a process seen for
the first time has ``cpu_cores=None`` (and no place in ``by_cpu``), not a false 0. A process that exits while it is
read is skipped. The snapshot is kept as :attr:`ProcessesCollector.latest`; the only samples are two low-cardinality
gauges, so per-process series never reach storage.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from crucible_monitor.collectors.base import Collection
from crucible_monitor.config import SystemCollectorConfig
from crucible_monitor.errors import CollectorError
from crucible_monitor.models import MetricKind, MetricSpec, Sample
from crucible_monitor.schemas import ProcessInfo, ProcessSnapshot

__all__ = ["CATALOGUE", "CMDLINE_MAX", "ProcessesCollector"]

logger = logging.getLogger(__name__)

CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec("processes_threads", MetricKind.GAUGE, "threads", "Threads of all processes."),
    MetricSpec("processes_zombie", MetricKind.GAUGE, "processes", "Processes that exited and were not reaped (Z)."),
)

CMDLINE_MAX = 200
"""Characters of a command line kept in a snapshot."""
_STARTUP_SECONDS = 60.0
"""A process younger than this is starting up: its memory is not yet a reference for growth."""
_GROWTH_WINDOW = 3600.0
"""Seconds a process's first-seen RSS is its growth reference, before it is renewed."""


@dataclass(slots=True)
class _Proc:
    pid: int
    name: str
    state: str
    ticks: int
    threads: int
    start_ticks: int
    rss_pages: int
    cpu_cores: float | None = None
    earlier: tuple[float, int] | None = None
    """(time, RSS pages) when first seen within the last hour."""


def _parse_stat(pid: int, text: str) -> _Proc:
    """``/proc/<pid>/stat``: the name is in parentheses and may itself hold spaces and parentheses."""
    head, _, tail = text.rpartition(")")
    fields = tail.split()
    return _Proc(
        pid=pid,
        name=head.partition("(")[2],
        state=fields[0],
        ticks=int(fields[11]) + int(fields[12]),
        threads=int(fields[17]),
        start_ticks=int(fields[19]),
        rss_pages=int(fields[21]),
    )


class ProcessesCollector:
    """A snapshot of the processes: the top ``config.top_processes`` by CPU and by memory.

    Args:
        config: the ``collectors.system`` settings.
        procfs: where procfs is mounted; defaults to ``config.procfs``.
        clock: the snapshot time, also the wall time CPU is divided by.
    """

    name = "processes"
    catalogue: Sequence[MetricSpec] = CATALOGUE

    def __init__(
        self,
        config: SystemCollectorConfig,
        *,
        procfs: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._top = config.top_processes
        self._root = procfs or config.procfs
        self._root_s = str(self._root)
        self._clock = clock
        self._hz = os.sysconf("SC_CLK_TCK")
        self._page_size = os.sysconf("SC_PAGE_SIZE")
        self._btime: float | None = None
        self._btime_read = False
        self._prev: dict[tuple[int, int], int] = {}
        self._prev_ts: float | None = None
        self._earlier: dict[tuple[int, int], tuple[float, int]] = {}
        self._users: dict[int, str] = {}
        self.latest: ProcessSnapshot | None = None
        """The newest snapshot; None before the first collection."""

    async def collect(self) -> Collection:
        """Read every process once (in a worker thread: a busy host has thousands).

        Raises:
            CollectorError: the procfs directory cannot be listed.
        """
        return await asyncio.to_thread(self._collect)

    def _collect(self) -> Collection:
        ts = self._clock()
        try:
            names = os.listdir(self._root)
        except OSError as exc:
            raise CollectorError(f"cannot list {self._root}: {exc.strerror or exc}") from exc
        procs = [p for p in map(self._read_stat, (int(n) for n in names if n.isdigit())) if p is not None]
        self._measure_cpu(procs, ts)
        self._measure_growth(procs, ts)
        seen: dict[int, ProcessInfo | None] = {}
        self.latest = ProcessSnapshot(
            ts=ts,
            total=len(procs),
            by_cpu=self._resolve(
                sorted((p for p in procs if p.cpu_cores is not None), key=lambda p: p.cpu_cores or 0.0, reverse=True),
                seen,
            ),
            by_memory=self._resolve(sorted(procs, key=lambda p: p.rss_pages, reverse=True), seen),
        )
        return Collection(
            samples=[
                Sample("processes_threads", sum(p.threads for p in procs), ts=ts),
                Sample("processes_zombie", sum(1 for p in procs if p.state == "Z"), ts=ts),
            ]
        )

    def _read_stat(self, pid: int) -> _Proc | None:
        try:
            with open(f"{self._root_s}/{pid}/stat", "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:  # gone since the listing (FileNotFoundError, ProcessLookupError) or not ours to read
            return None
        try:
            return _parse_stat(pid, text)
        except (ValueError, IndexError):
            logger.debug("skipping process %d: malformed stat %r", pid, text[:120])
            return None

    def _measure_cpu(self, procs: list[_Proc], ts: float) -> None:
        """Set each process's CPU in cores since the last snapshot (a pid is only the same process if it started
        at the same tick)."""
        prev, elapsed = self._prev, (ts - self._prev_ts if self._prev_ts is not None else 0.0)
        current: dict[tuple[int, int], int] = {}
        for p in procs:
            key = (p.pid, p.start_ticks)
            current[key] = p.ticks
            before = prev.get(key)
            if before is not None and elapsed > 0 and p.ticks >= before:
                p.cpu_cores = (p.ticks - before) / self._hz / elapsed
        self._prev, self._prev_ts = current, ts

    def _measure_growth(self, procs: list[_Proc], ts: float) -> None:
        """Give each process its RSS when first seen past its start-up, that reference renewed hourly (growth is
        judged per hour; what a process allocates in its first minute is start-up, not growth)."""
        btime = self._boot_time()
        earlier: dict[tuple[int, int], tuple[float, int]] = {}
        for p in procs:
            key = (p.pid, p.start_ticks)
            ref = self._earlier.get(key)
            if ref is None or ts - ref[0] > _GROWTH_WINDOW:
                started = btime + p.start_ticks / self._hz if btime is not None else None
                ref = (ts, p.rss_pages) if started is not None and ts - started >= _STARTUP_SECONDS else None
            if ref is not None:
                earlier[key] = p.earlier = ref
        self._earlier = earlier

    def _resolve(self, ranked: Iterable[_Proc], seen: dict[int, ProcessInfo | None]) -> list[ProcessInfo]:
        """The first ``top`` processes of ``ranked`` that can still be read, with their command line and user."""
        out: list[ProcessInfo] = []
        for p in ranked:
            if len(out) >= self._top:
                break
            if p.pid not in seen:
                seen[p.pid] = self._info(p)
            info = seen[p.pid]
            if info is not None:
                out.append(info)
        return out

    def _info(self, p: _Proc) -> ProcessInfo | None:
        base = f"{self._root_s}/{p.pid}"
        try:
            with open(f"{base}/cmdline", "rb") as f:
                raw = f.read()
            with open(f"{base}/status", encoding="utf-8", errors="replace") as f:
                status = f.read()
        except OSError:
            return None
        uid_line = status.partition("\nUid:")[2].partition("\n")[0].split()
        cmdline = raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()
        btime = self._boot_time()
        return ProcessInfo(
            pid=p.pid,
            name=p.name,
            cmdline=(cmdline or f"[{p.name}]")[:CMDLINE_MAX],
            user=self._user(int(uid_line[1])) if len(uid_line) > 1 and uid_line[1].isdigit() else "?",
            state=p.state,
            cpu_cores=p.cpu_cores,
            memory_bytes=p.rss_pages * self._page_size,
            started_at=btime + p.start_ticks / self._hz if btime is not None else None,
            memory_earlier_bytes=p.earlier[1] * self._page_size if p.earlier else None,
            memory_earlier_at=p.earlier[0] if p.earlier else None,
        )

    def _user(self, uid: int) -> str:
        name = self._users.get(uid)
        if name is None:
            try:
                name = pwd.getpwuid(uid).pw_name
            except KeyError:
                name = str(uid)
            self._users[uid] = name
        return name

    def _boot_time(self) -> float | None:
        """``btime`` of ``/proc/stat``, read once."""
        if not self._btime_read:
            self._btime_read = True
            try:
                with open(self._root / "stat", encoding="ascii", errors="replace") as f:
                    text = f.read()
                self._btime = float(text.partition("\nbtime ")[2].partition("\n")[0])
            except (OSError, ValueError):
                logger.debug("no btime in %s/stat: process start times unknown", self._root)
        return self._btime
