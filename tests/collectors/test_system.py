"""The system collector on this machine's real /proc and on checked-in procfs trees (tests/fixtures/proc/README.md).

On the real /proc the tests check invariants and compare with psutil within a tolerance, as psutil's own tests
compare with ``free``; exact numbers and edge cases (old kernels, missing or malformed files, counters going
backwards, a failing or hanging mount) come from the fixture trees.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import psutil
import pytest
from helpers import assert_contract, label_key, values

from crucible_monitor.collectorconfig import SystemMetricFamily
from crucible_monitor.collectors.base import Collection
from crucible_monitor.collectors.mounts import whole_disks
from crucible_monitor.collectors.system import (
    CATALOGUE,
    CPU_MODES,
    FAMILY_PREFIXES,
    RATIO_DECIMALS,
    SystemCollector,
    metric_family,
)
from crucible_monitor.config import SystemCollectorConfig
from crucible_monitor.errors import CollectorError
from crucible_monitor.models import MetricKind

pytestmark = pytest.mark.anyio

RATIO_STEP = 10.0**-RATIO_DECIMALS  # ratios are rounded to this

FIXTURES = Path(__file__).parent.parent / "fixtures" / "proc"
DECLARED = {spec.name: spec for spec in CATALOGUE}
KIB = 1024
PAGE = os.sysconf("SC_PAGE_SIZE")
CPU_RATIOS = {"cpu_usage_ratio", "cpu_mode_ratio"}
PRESSURE = {"pressure_stall_ratio", "pressure_stall_seconds_total"}
DISK = {name for name in DECLARED if name.startswith("disk_")}
NETWORK = {name for name in DECLARED if name.startswith("network_")}
DEADLINE = 10.0
TS = 1_800_000_000.0
GAUGES_NAMED_TOTAL = {"processes_count", "filesystem_inodes"}  # names the issue asks for, though gauges


def value(collection: Collection, metric: str, **labels: str) -> float:
    return values(collection.samples, metric)[label_key(labels)]


def metrics(collection: Collection) -> set[str]:
    return {s.metric for s in collection.samples}


def label_values(collection: Collection, metric: str, label: str) -> set[str]:
    return {s.labels[label] for s in collection.samples if s.metric == metric}


def fake_statvfs(
    failing: frozenset[str] = frozenset(), no_inodes: frozenset[str] = frozenset()
) -> Callable[[str], os.statvfs_result]:
    """Each mountpoint is 1000 blocks of 4 KiB (400 free, 300 available), 100 inodes (60 free)."""

    def statvfs(path: str) -> os.statvfs_result:
        if path in failing:
            raise PermissionError(13, "Permission denied", path)
        files, ffree = (0, 0) if path in no_inodes else (100, 60)
        return os.statvfs_result((4096, 4096, 1000, 400, 300, files, ffree, ffree, 0, 255))

    return statvfs


def fixture_collector(
    scenario: str | Path,
    config: SystemCollectorConfig | None = None,
    statvfs: Callable[[str], os.statvfs_result] | None = None,
) -> SystemCollector:
    """A collector over a fixture tree (or a copy of one), with fake mounts and a fixed clock."""
    procfs = scenario if isinstance(scenario, Path) else FIXTURES / scenario
    return SystemCollector(
        config or SystemCollectorConfig(), procfs=procfs, statvfs=statvfs or fake_statvfs(), clock=lambda: TS
    )


def cpu_lines() -> list[str]:
    with open("/proc/stat", encoding="ascii") as f:
        return [line for line in f.read().splitlines() if line.startswith("cpu")]


def wait_for_cpu_ticks(before: list[str]) -> None:
    """Wait (bounded) until every CPU line of /proc/stat has moved on since ``before``."""
    deadline = time.monotonic() + DEADLINE
    while any(a == b for a, b in zip(before, cpu_lines(), strict=False)):
        assert time.monotonic() < deadline, "/proc/stat did not advance"


async def two_real_cycles(config: SystemCollectorConfig | None = None) -> tuple[Collection, Collection]:
    collector = SystemCollector(config or SystemCollectorConfig())
    first = await collector.collect()
    wait_for_cpu_ticks(cpu_lines())
    return first, await collector.collect()


# -- this machine ---------------------------------------------------------------------------------------------


async def test_cpu_ratios_are_absent_on_the_first_cycle_and_present_on_the_second() -> None:
    first, second = await two_real_cycles()

    assert not metrics(first) & CPU_RATIOS
    cpus = {"total", *(str(i) for i in range(psutil.cpu_count() or 0))}
    assert label_values(second, "cpu_usage_ratio", "cpu") == cpus
    assert values(second.samples, "cpu_mode_ratio").keys() == {
        (("cpu", cpu), ("mode", mode)) for cpu in cpus for mode in CPU_MODES
    }
    for cpu in cpus:
        modes = [s.value for s in second.samples if s.metric == "cpu_mode_ratio" and s.labels["cpu"] == cpu]
        assert sum(modes) == pytest.approx(1.0, abs=8 * RATIO_STEP)
        busy = (
            1
            - value(second, "cpu_mode_ratio", cpu=cpu, mode="idle")
            - value(second, "cpu_mode_ratio", cpu=cpu, mode="iowait")
        )
        assert value(second, "cpu_usage_ratio", cpu=cpu) == pytest.approx(busy, abs=RATIO_STEP)


async def test_the_second_cycle_on_this_host_emits_every_declared_metric_the_host_has() -> None:
    collector = SystemCollector(SystemCollectorConfig())
    first = await collector.collect()
    wait_for_cpu_ticks(cpu_lines())
    second = await collector.collect()

    missing = set(DECLARED)
    if psutil.swap_memory().total == 0:
        missing.discard("swap_used_ratio")
    if not Path("/proc/pressure").is_dir():
        missing -= PRESSURE
    if not whole_disks(psutil.disk_io_counters(perdisk=True)):
        missing -= DISK
    if not set(psutil.net_io_counters(pernic=True)) - {"lo"}:
        missing -= NETWORK
    assert missing - CPU_RATIOS <= metrics(first)
    assert missing <= metrics(second)
    assert_contract(collector, first)
    assert_contract(collector, second)


async def test_every_sample_on_this_host_is_stamped_with_the_injected_clock() -> None:
    collection = await SystemCollector(SystemCollectorConfig(), clock=lambda: 1234.5).collect()

    assert collection.samples
    assert {s.ts for s in collection.samples} == {1234.5}


async def test_memory_and_the_root_filesystem_on_this_host_are_consistent() -> None:
    _, collection = await two_real_cycles()

    total = value(collection, "memory_total_bytes")
    assert 0 < value(collection, "memory_used_bytes") <= total
    assert value(collection, "memory_available_bytes") <= total
    assert value(collection, "memory_used_ratio") == pytest.approx(
        value(collection, "memory_used_bytes") / total, abs=RATIO_STEP
    )
    assert "/" in label_values(collection, "filesystem_size_bytes", "mountpoint")
    root = next(
        s.labels for s in collection.samples if s.metric == "filesystem_size_bytes" and s.labels["mountpoint"] == "/"
    )
    assert value(collection, "filesystem_used_bytes", **root) <= value(collection, "filesystem_size_bytes", **root)
    assert value(collection, "cpu_count") == psutil.cpu_count()
    assert value(collection, "processes_count") > 1


async def test_readings_on_this_host_agree_with_psutil() -> None:
    memory, swap, disk = psutil.virtual_memory(), psutil.swap_memory(), psutil.disk_usage("/")
    load, disks, nics = psutil.getloadavg(), psutil.disk_io_counters(perdisk=True), psutil.net_io_counters(pernic=True)
    pids = len(psutil.pids())
    collection = await SystemCollector(SystemCollectorConfig()).collect()

    tolerance = 64 * 1024 * 1024  # memory moves between two reads
    assert value(collection, "memory_total_bytes") == memory.total
    assert value(collection, "memory_available_bytes") == pytest.approx(memory.available, abs=tolerance)
    assert value(collection, "memory_free_bytes") == pytest.approx(memory.free, abs=tolerance)
    assert value(collection, "memory_buffers_bytes") == pytest.approx(memory.buffers, abs=tolerance)
    assert value(collection, "swap_total_bytes") == swap.total
    assert value(collection, "swap_used_bytes") == pytest.approx(swap.used, abs=tolerance)
    root = next(
        s.labels for s in collection.samples if s.metric == "filesystem_size_bytes" and s.labels["mountpoint"] == "/"
    )
    assert value(collection, "filesystem_size_bytes", **root) == disk.total
    assert value(collection, "filesystem_used_bytes", **root) == pytest.approx(disk.used, abs=tolerance)
    assert value(collection, "filesystem_used_ratio", **root) == pytest.approx(disk.percent / 100, abs=0.01)
    for window, psutil_load in zip(("load1", "load5", "load15"), load, strict=True):
        assert value(collection, window) == pytest.approx(psutil_load, abs=0.5)
    for device, counters in disks.items():
        if device in label_values(collection, "disk_reads_total", "device"):
            assert value(collection, "disk_reads_total", device=device) >= counters.read_count
            assert value(collection, "disk_read_bytes_total", device=device) >= counters.read_bytes
            assert value(collection, "disk_written_bytes_total", device=device) >= counters.write_bytes
    assert label_values(collection, "network_receive_bytes_total", "interface") == set(nics) - {"lo"}
    for nic, nic_counters in nics.items():
        if nic != "lo":
            assert value(collection, "network_receive_bytes_total", interface=nic) >= nic_counters.bytes_recv
            assert value(collection, "network_transmit_packets_total", interface=nic) >= nic_counters.packets_sent
    assert value(collection, "processes_count") == pytest.approx(pids, abs=10)


async def test_an_unreadable_proc_stat_fails_the_collection(tmp_path: Path) -> None:
    with pytest.raises(CollectorError):
        await SystemCollector(SystemCollectorConfig(), procfs=tmp_path).collect()


# -- fixture trees --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", ["basic", "no_memavailable", "no_diskstats", "malformed", "wrap_before"])
async def test_every_sample_of_every_fixture_is_declared_with_its_labels(scenario: str) -> None:
    collector = fixture_collector(scenario)
    assert_contract(collector, await collector.collect())
    assert_contract(collector, await collector.collect())


async def test_memory_swap_and_pressure_come_from_meminfo_vmstat_and_pressure_in_base_units() -> None:
    collection = await fixture_collector("basic").collect()

    assert value(collection, "memory_total_bytes") == 24684084 * KIB
    assert value(collection, "memory_available_bytes") == 23463440 * KIB
    assert value(collection, "memory_used_bytes") == (24684084 - 23463440) * KIB
    assert value(collection, "memory_used_ratio") == pytest.approx((24684084 - 23463440) / 24684084, abs=RATIO_STEP)
    assert value(collection, "memory_free_bytes") == 23182900 * KIB
    assert value(collection, "memory_buffers_bytes") == 3920 * KIB
    assert value(collection, "memory_cached_bytes") == 425236 * KIB
    assert value(collection, "swap_total_bytes") == 2097152 * KIB
    assert value(collection, "swap_used_bytes") == (2097152 - 1572864) * KIB
    assert value(collection, "swap_used_ratio") == pytest.approx(0.25)
    assert value(collection, "swap_in_bytes_total") == 100 * PAGE
    assert value(collection, "swap_out_bytes_total") == 200 * PAGE
    assert value(collection, "pressure_stall_ratio", resource="cpu", kind="some") == pytest.approx(0.125)
    assert value(collection, "pressure_stall_seconds_total", resource="cpu", kind="some") == pytest.approx(24.285748)
    assert value(collection, "pressure_stall_seconds_total", resource="io", kind="full") == pytest.approx(5.356596)
    assert len(values(collection.samples, "pressure_stall_ratio")) == 6


async def test_stat_loadavg_uptime_and_file_nr_give_their_gauges_and_counters() -> None:
    collection = await fixture_collector("basic").collect()

    assert value(collection, "cpu_count") == 2
    assert value(collection, "context_switches_total") == 662870
    assert value(collection, "interrupts_total") == 496450
    assert value(collection, "processes_running") == 2
    assert value(collection, "processes_blocked") == 0
    assert value(collection, "processes_count") == 6  # the pid directories, including 77 whose stat is gone
    assert (value(collection, "load1"), value(collection, "load5"), value(collection, "load15")) == (0.42, 0.42, 0.30)
    assert value(collection, "uptime_seconds") == 1366.49
    assert value(collection, "file_descriptors_allocated") == 486
    assert value(collection, "file_descriptors_max") == 2466170


async def test_real_filesystems_are_kept_once_per_device_with_unescaped_mountpoints() -> None:
    collection = await fixture_collector("basic").collect()

    assert values(collection.samples, "filesystem_size_bytes").keys() == {
        (("device", "/dev/vda"), ("fstype", "ext4"), ("mountpoint", "/")),
        (("device", "/dev/vdb"), ("fstype", "xfs"), ("mountpoint", "/srv/data")),
        (("device", "/dev/vdc"), ("fstype", "ext4"), ("mountpoint", "/mnt/with space")),
        (("device", "/dev/vdd"), ("fstype", "vfat"), ("mountpoint", "/boot/efi")),
        (("device", "nfs.example:/export"), ("fstype", "nfs4"), ("mountpoint", "/mnt/nfs")),
    }  # the docker overlay mount is left out by the default exclude_mountpoints
    everything = await fixture_collector("basic", SystemCollectorConfig(exclude_mountpoints=[])).collect()
    overlay = ("mountpoint", "/var/lib/docker/overlay2/3f2a/merged")
    assert any(overlay in key for key in values(everything.samples, "filesystem_size_bytes"))  # overlay is a real fs
    root = {"mountpoint": "/", "device": "/dev/vda", "fstype": "ext4"}
    assert value(collection, "filesystem_size_bytes", **root) == 1000 * 4096
    assert value(collection, "filesystem_used_bytes", **root) == 600 * 4096
    assert value(collection, "filesystem_avail_bytes", **root) == 300 * 4096
    assert value(collection, "filesystem_used_ratio", **root) == pytest.approx(600 / 900, abs=RATIO_STEP)
    assert value(collection, "filesystem_inodes", **root) == 100
    assert value(collection, "filesystem_inodes_used", **root) == 40
    assert value(collection, "filesystem_inodes_used_ratio", **root) == pytest.approx(0.4, abs=RATIO_STEP)


async def test_included_fstypes_and_excluded_mountpoints_change_the_filesystems_kept() -> None:
    config = SystemCollectorConfig(include_fstypes=["tmpfs"], exclude_mountpoints=["/var/lib/docker/*", "/mnt/*"])
    collection = await fixture_collector("basic", config).collect()

    assert label_values(collection, "filesystem_size_bytes", "mountpoint") == {
        "/",
        "/srv/data",
        "/boot/efi",
        "/dev/shm",
        "/run",
        "/sys/fs/cgroup",
    }  # three tmpfs mounts, all kept: "tmpfs" names no device


async def test_a_mount_whose_statvfs_fails_is_skipped_and_the_others_are_reported() -> None:
    collector = fixture_collector("basic", statvfs=fake_statvfs(failing=frozenset({"/srv/data"})))
    collection = await collector.collect()

    mountpoints = label_values(collection, "filesystem_size_bytes", "mountpoint")
    assert "/srv/data" not in mountpoints
    assert {"/", "/boot/efi", "/mnt/nfs"} <= mountpoints
    assert "/srv/data" not in {s.labels.get("mountpoint") for s in collection.samples}


async def test_inode_metrics_are_left_out_for_a_filesystem_without_inodes() -> None:
    collector = fixture_collector("basic", statvfs=fake_statvfs(no_inodes=frozenset({"/boot/efi"})))
    collection = await collector.collect()

    efi = {"mountpoint": "/boot/efi", "device": "/dev/vdd", "fstype": "vfat"}
    assert value(collection, "filesystem_size_bytes", **efi) == 1000 * 4096
    for metric in ("filesystem_inodes", "filesystem_inodes_used", "filesystem_inodes_used_ratio"):
        assert "/boot/efi" not in label_values(collection, metric, "mountpoint")
        assert "/" in label_values(collection, metric, "mountpoint")


async def test_a_hanging_network_filesystem_is_skipped_until_its_statvfs_returns() -> None:
    release = threading.Event()
    local = fake_statvfs()

    def statvfs(path: str) -> os.statvfs_result:
        if path == "/mnt/nfs":
            release.wait(DEADLINE)
        return local(path)

    collector = fixture_collector("basic", statvfs=statvfs)
    collector.remote_timeout = 0.05
    try:
        for _ in range(2):  # timed out, then skipped while the first call still hangs
            mountpoints = label_values(await collector.collect(), "filesystem_size_bytes", "mountpoint")
            assert "/mnt/nfs" not in mountpoints
            assert {"/", "/srv/data"} <= mountpoints
    finally:
        release.set()
    deadline = time.monotonic() + DEADLINE
    while "/mnt/nfs" not in label_values(await collector.collect(), "filesystem_size_bytes", "mountpoint"):
        assert time.monotonic() < deadline, "the network filesystem never came back"


async def test_whole_disks_are_reported_in_bytes_and_seconds_without_partitions_or_virtual_devices() -> None:
    collection = await fixture_collector("basic").collect()

    assert label_values(collection, "disk_reads_total", "device") == {"vda", "vdb", "nvme0n1", "dm-1", "dm-10", "md0"}
    assert value(collection, "disk_reads_total", device="vdb") == 2000
    assert value(collection, "disk_read_bytes_total", device="vdb") == 64000 * 512
    assert value(collection, "disk_read_time_seconds_total", device="vdb") == pytest.approx(0.9)
    assert value(collection, "disk_writes_total", device="vdb") == 1000
    assert value(collection, "disk_written_bytes_total", device="vdb") == 16000 * 512
    assert value(collection, "disk_write_time_seconds_total", device="vdb") == pytest.approx(0.3)
    assert value(collection, "disk_io_in_progress", device="vdb") == 1
    assert value(collection, "disk_io_time_seconds_total", device="vdb") == pytest.approx(1.5)


@pytest.mark.parametrize(
    ("names", "kept"),
    [
        (["sda", "sda1", "sda10", "sdb"], ["sda", "sdb"]),
        (["nvme0n1", "nvme0n1p1", "nvme0n1p2"], ["nvme0n1"]),
        (["mmcblk0", "mmcblk0p1", "mmcblk0boot0"], ["mmcblk0", "mmcblk0boot0"]),
        (["dm-0", "dm-1", "dm-10", "md0", "md127"], ["dm-0", "dm-1", "dm-10", "md0", "md127"]),
        (["xvda1"], ["xvda1"]),  # a partition without its disk (some Xen guests) is all there is
        (["loop0", "loop0p1", "ram0", "zram0", "fd0", "sr0", "vda"], ["vda"]),
    ],
)
def test_whole_disks_keeps_disks_and_drops_partitions_of_listed_disks(names: list[str], kept: list[str]) -> None:
    assert whole_disks(names) == kept


async def test_network_interfaces_matching_the_exclude_globs_are_skipped() -> None:
    default = await fixture_collector("basic").collect()
    custom = await fixture_collector("basic", SystemCollectorConfig(exclude_interfaces=["veth*", "ifb?"])).collect()

    assert label_values(default, "network_receive_bytes_total", "interface") == {
        "eth0",
        "ifb0",
        "ifb1",
        "docker0",
        "veth1a2b",
    }
    assert label_values(custom, "network_receive_bytes_total", "interface") == {"eth0", "docker0", "lo"}
    expected = {
        "network_receive_bytes_total": 700,
        "network_receive_packets_total": 7,
        "network_receive_errors_total": 1,
        "network_receive_drops_total": 2,
        "network_transmit_bytes_total": 800,
        "network_transmit_packets_total": 8,
        "network_transmit_errors_total": 3,
        "network_transmit_drops_total": 4,
    }
    assert {metric: value(default, metric, interface="veth1a2b") for metric in expected} == expected


async def test_a_kernel_without_memavailable_or_pressure_falls_back_to_free_buffers_and_cached() -> None:
    collection = await fixture_collector("no_memavailable").collect()

    free, buffers, cached = (
        value(collection, m) for m in ("memory_free_bytes", "memory_buffers_bytes", "memory_cached_bytes")
    )
    assert value(collection, "memory_available_bytes") == free + buffers + cached
    assert value(collection, "memory_used_bytes") == value(collection, "memory_total_bytes") - (free + buffers + cached)
    assert not metrics(collection) & PRESSURE
    assert value(collection, "swap_total_bytes") == 0
    assert "swap_used_ratio" not in metrics(collection)  # no swap: no ratio, and no division by zero


async def test_a_missing_diskstats_drops_only_the_disk_metrics() -> None:
    collection = await fixture_collector("no_diskstats").collect()
    basic = await fixture_collector("basic").collect()

    assert not metrics(collection) & DISK
    assert metrics(collection) == metrics(basic) - DISK - {"swap_used_ratio"}  # and this tree has no swap


async def test_malformed_lines_and_files_drop_only_their_own_metrics() -> None:
    collection = await fixture_collector("malformed").collect()

    present = metrics(collection)
    assert {"context_switches_total", "memory_cached_bytes", "load1", "load5", "load15"}.isdisjoint(present)
    assert {"file_descriptors_allocated", "file_descriptors_max"}.isdisjoint(present)
    assert {"interrupts_total", "forks_total", "cpu_count", "memory_total_bytes", "memory_free_bytes"} <= present
    assert {"uptime_seconds", "swap_total_bytes", "filesystem_size_bytes"} <= present
    assert label_values(collection, "disk_reads_total", "device") == {"vda", "vdb", "nvme0n1", "dm-1", "dm-10", "md0"}
    assert "bad0" not in label_values(collection, "network_receive_bytes_total", "interface")
    assert "eth0" in label_values(collection, "network_receive_bytes_total", "interface")
    assert {s.labels["resource"] for s in collection.samples if s.metric == "pressure_stall_ratio"} == {"memory", "io"}


def write_stat(procfs: Path, cpu_lines: str) -> None:
    (procfs / "stat").write_text(cpu_lines + "ctxt 1\nbtime 1795850980\nprocesses 1\n", encoding="ascii")


async def test_a_cpu_mode_going_backwards_counts_as_zero_for_that_interval(tmp_path: Path) -> None:
    procfs = tmp_path / "proc"
    shutil.copytree(FIXTURES / "wrap_before", procfs)
    collector = fixture_collector(procfs)
    first = await collector.collect()
    shutil.copyfile(FIXTURES / "wrap_after" / "stat", procfs / "stat")
    second = await collector.collect()

    assert not metrics(first) & CPU_RATIOS
    assert label_values(second, "cpu_usage_ratio", "cpu") == {"total", "0", "1"}
    assert value(second, "cpu_mode_ratio", cpu="1", mode="iowait") == 0  # cpu1's iowait went from 50 to 40
    cpu1_modes = [value(second, "cpu_mode_ratio", cpu="1", mode=mode) for mode in CPU_MODES]
    assert sum(cpu1_modes) == pytest.approx(1, abs=8 * RATIO_STEP)
    assert value(second, "cpu_usage_ratio", cpu="0") == pytest.approx(1 - (100 + 10) / 200, abs=RATIO_STEP)
    assert value(second, "cpu_usage_ratio", cpu="total") == pytest.approx(1 - 250 / 350, abs=RATIO_STEP)
    assert {mode: value(second, "cpu_mode_ratio", cpu="0", mode=mode) for mode in CPU_MODES} == pytest.approx(
        {"user": 0.3, "nice": 0.0, "system": 0.1, "idle": 0.5, "iowait": 0.05, "irq": 0.0, "softirq": 0.05, "steal": 0}
    )
    assert all(s.value >= 0 for s in second.samples)
    assert value(second, "cpu_count") == 2

    shutil.copyfile(FIXTURES / "wrap_after" / "stat", procfs / "stat")
    third = await collector.collect()  # no time has passed: no ratio rather than a false 0
    assert not metrics(third) & CPU_RATIOS


async def test_a_malformed_cpu_line_drops_only_that_cpu(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "wrap_before", tmp_path / "proc")
    collector = fixture_collector(tmp_path / "proc")
    write_stat(tmp_path / "proc", "cpu  10 0 10 80 0 0 0 0 0 0\ncpu0 5 0 5 40 0 0 0 0 0 0\ncpu1 x\n")
    await collector.collect()
    write_stat(tmp_path / "proc", "cpu  20 0 20 160 0 0 0 0 0 0\ncpu0 10 0 10 80 0 0 0 0 0 0\ncpu1 10 0\n")
    collection = await collector.collect()

    assert label_values(collection, "cpu_usage_ratio", "cpu") == {"total", "0"}
    assert value(collection, "cpu_usage_ratio", cpu="0") == pytest.approx(0.2)


async def test_per_cpu_off_keeps_only_the_total(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "wrap_before", tmp_path / "proc")
    collector = fixture_collector(tmp_path / "proc", SystemCollectorConfig(per_cpu=False))
    await collector.collect()
    shutil.copyfile(FIXTURES / "wrap_after" / "stat", tmp_path / "proc" / "stat")
    collection = await collector.collect()

    assert label_values(collection, "cpu_usage_ratio", "cpu") == {"total"}
    assert label_values(collection, "cpu_mode_ratio", "cpu") == {"total"}
    assert value(collection, "cpu_count") == 2


def test_the_catalogue_names_are_unique_and_follow_the_naming_rules() -> None:
    assert len(DECLARED) == len(CATALOGUE)
    for spec in CATALOGUE:
        assert spec.name == spec.name.lower()
        if spec.name not in GAUGES_NAMED_TOTAL:
            assert spec.name.endswith("_total") == (spec.kind is MetricKind.COUNTER), spec.name


# -- metric families (collectors.system.metrics) --------------------------------------------------------------


def test_every_declared_metric_belongs_to_a_named_family() -> None:
    unclaimed = [s.name for s in CATALOGUE if not any(s.name.startswith(p) for p in sum(FAMILY_PREFIXES.values(), ()))]
    assert unclaimed == []
    assert set(FAMILY_PREFIXES) == set(get_args(SystemMetricFamily))


async def test_metrics_records_only_the_selected_families_from_this_host() -> None:
    _, everything = await two_real_cycles()
    _, selected = await two_real_cycles(SystemCollectorConfig(metrics=["memory", "load"]))

    assert {metric_family(m) for m in metrics(everything)} >= {"cpu", "memory", "disk", "load", "host"}
    assert {metric_family(m) for m in metrics(selected)} == {"memory", "load"}
    assert {"memory_used_ratio", "load1", "processes_count"} <= metrics(selected)
    assert not metrics(selected) & {"cpu_usage_ratio", "filesystem_used_ratio", "uptime_seconds"}
