"""The processes collector on this machine's real /proc and on checked-in procfs trees (tests/fixtures/proc/)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from cpu_burn import cpu_ticks, wait_for_ticks
from helpers import assert_contract
from manual_clock import Clock

from crucible_monitor.collectors.base import Collection
from crucible_monitor.collectors.processes import CMDLINE_MAX, ProcessesCollector
from crucible_monitor.config import SystemCollectorConfig
from crucible_monitor.errors import CollectorError
from crucible_monitor.schemas import ProcessSnapshot

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent.parent / "fixtures" / "proc"
HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
BTIME = 1795850980.0  # btime of the fixtures' stat


def value(collection: Collection, metric: str) -> float:
    (sample,) = (s for s in collection.samples if s.metric == metric)
    return sample.value


def assert_counts(collector: ProcessesCollector, collection: Collection, ts: float | None = None) -> None:
    """The catalogue contract, every declared metric emitted, each value a count (>= 0) stamped ``ts``."""
    assert_contract(collector, collection, complete=True)
    for s in collection.samples:
        assert s.value >= 0
        if ts is not None:
            assert s.ts == ts


def snapshot(collector: ProcessesCollector) -> ProcessSnapshot:
    assert collector.latest is not None
    return collector.latest


# -- this machine ---------------------------------------------------------------------------------------------


async def test_a_busy_process_on_this_host_tops_the_cpu_list_from_the_second_snapshot(
    burn_cpu: Callable[[], subprocess.Popen[bytes]],
) -> None:
    busy_child = burn_cpu()
    collector = ProcessesCollector(SystemCollectorConfig(top_processes=100))
    wait_for_ticks(busy_child.pid, 0)
    first = await collector.collect()
    assert snapshot(collector).by_cpu == []  # nobody has a rate yet: no false 0 either
    assert all(p.cpu_cores is None for p in snapshot(collector).by_memory)
    wait_for_ticks(busy_child.pid, cpu_ticks(busy_child.pid) + 20)  # 200 ms of CPU, so the tick rounding is small
    second = await collector.collect()

    child = next(p for p in snapshot(collector).by_cpu if p.pid == busy_child.pid)
    assert child.cpu_cores is not None
    assert 0 < child.cpu_cores <= 1.5  # one thread: at most one core, plus the 10 ms tick's rounding
    assert child.cmdline == f"{sys.executable} -c while True: pass"
    assert child.state in {"R", "S"}
    assert_counts(collector, first)
    assert_counts(collector, second)


async def test_this_process_is_reported_with_its_user_memory_and_start_time() -> None:
    collector = ProcessesCollector(SystemCollectorConfig(top_processes=100))
    await collector.collect()
    me = psutil.Process()

    info = next(p for p in snapshot(collector).by_memory if p.pid == os.getpid())
    assert info.user == pwd.getpwuid(os.geteuid()).pw_name
    assert info.name == me.name()[:15]
    assert info.memory_bytes == pytest.approx(me.memory_info().rss, rel=0.2)
    assert info.started_at == pytest.approx(me.create_time(), abs=1.0)
    assert snapshot(collector).total == pytest.approx(len(psutil.pids()), abs=10)
    assert value(await collector.collect(), "processes_threads") >= me.num_threads()


async def test_an_unlistable_procfs_fails_the_collection(tmp_path: Path) -> None:
    with pytest.raises(CollectorError):
        await ProcessesCollector(SystemCollectorConfig(), procfs=tmp_path / "missing").collect()


# -- fixture trees --------------------------------------------------------------------------------------------


async def test_a_snapshot_of_the_fixture_reads_names_users_memory_and_start_times() -> None:
    collector = ProcessesCollector(SystemCollectorConfig(), procfs=FIXTURES / "basic", clock=Clock(1000.0))
    collection = await collector.collect()

    snap = snapshot(collector)
    assert snap.ts == 1000.0
    assert snap.total == 5  # 77's stat vanished: skipped
    assert [p.pid for p in snap.by_memory][:3] == [500, 300, 1]  # by RSS; 2 and 400 have none
    assert {p.pid for p in snap.by_memory} == {1, 2, 300, 400, 500}
    by_pid = {p.pid: p for p in snap.by_memory}
    worker = by_pid[300]
    assert (worker.name, worker.cmdline, worker.user, worker.state) == (
        "web (worker) 1",
        "php-fpm: pool www",
        "root",
        "S",
    )
    assert worker.memory_bytes == 25000 * PAGE
    assert worker.started_at == pytest.approx(BTIME + 5000 / HZ)
    assert worker.cpu_cores is None
    assert by_pid[400].state == "Z"
    assert by_pid[400].cmdline == "[defunct]"  # as ps shows a process without a command line
    assert by_pid[2].cmdline == "[kthreadd]"
    assert by_pid[500].user == "4000123"  # no such user: the number
    assert len(by_pid[500].cmdline) == CMDLINE_MAX
    assert by_pid[500].cmdline.startswith("node xxx")
    assert value(collection, "processes_zombie") == 1
    assert value(collection, "processes_threads") == 13 + 1 + 4 + 1 + 11  # pid 1 (this host's), 2, 300, 400, 500
    assert_counts(collector, collection, ts=1000.0)


async def test_cpu_is_the_tick_delta_over_the_wall_delta_for_processes_seen_twice(tmp_path: Path) -> None:
    procfs = tmp_path / "proc"
    shutil.copytree(FIXTURES / "wrap_before", procfs)
    clock = Clock(1000.0)
    collector = ProcessesCollector(SystemCollectorConfig(), procfs=procfs, clock=clock)
    await collector.collect()
    shutil.rmtree(procfs)
    shutil.copytree(FIXTURES / "wrap_after", procfs)
    clock.now = 1002.0
    await collector.collect()

    snap = snapshot(collector)
    # 100 ran 100 ticks in 2 s; 200 is a new process under an old pid; 300 is new; 400's ticks went backwards
    assert [p.pid for p in snap.by_cpu] == [100]
    assert snap.by_cpu[0].cpu_cores == pytest.approx(100 / HZ / 2)
    assert {p.pid: p.cpu_cores for p in snap.by_memory} == {
        100: pytest.approx(100 / HZ / 2),
        200: None,
        300: None,
        400: None,
    }
    assert snap.by_memory[0].pid == 100


async def test_malformed_and_vanished_processes_are_skipped() -> None:
    collector = ProcessesCollector(SystemCollectorConfig(), procfs=FIXTURES / "malformed")
    await collector.collect()

    assert {p.pid for p in snapshot(collector).by_memory} == {1, 2, 300, 400}
    assert snapshot(collector).total == 4


async def test_the_lists_hold_at_most_top_processes_each() -> None:
    collector = ProcessesCollector(SystemCollectorConfig(top_processes=2), procfs=FIXTURES / "basic")
    await collector.collect()
    await collector.collect()

    assert [p.pid for p in snapshot(collector).by_memory] == [500, 300]
    assert len(snapshot(collector).by_cpu) == 2
