"""A synthetic but realistic host: ~200 series shaped like the collectors' output, for storage benchmarks.

Each series copies how the real collector's values look (that is what decides compression): byte counters that
grow by multiples of 512 or by packet-sized steps, memory in whole pages, CPU ratios computed from jiffy deltas,
load averages with two decimals, pressure totals in microseconds, service and check gauges that rarely change.
Everything comes from a seeded generator, so runs are repeatable.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crucible_monitor.models import labels_key

__all__ = ["SeriesDef", "day_arrays", "host_series"]

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SeriesDef:
    """One synthetic series: its identity and how to generate ``n`` values from a generator."""

    metric: str
    labels: dict[str, str]
    kind: str  # counter_bytes, counter_small, ratio_jiffies, pages, decimal2, flat, integer_walk, seconds

    def values(self, rng: np.random.Generator, n: int) -> Floats:
        """``n`` consecutive values, quantised like the real collector's."""
        match self.kind:
            case "counter_bytes":  # network/disk byte counters: heavy-tailed traffic, any byte count
                steps = np.round(rng.lognormal(rng.uniform(8, 13), 1.0, n))
                return np.cumsum(steps) + float(rng.integers(10**9, 10**11))
            case "counter_small":  # packets, operations, context switches
                return np.cumsum(rng.poisson(rng.uniform(5, 5000), n)).astype(np.float64) + rng.integers(10**6, 10**8)
            case "ratio_jiffies":  # delta(mode)/delta(total) over ~1000 jiffies, rounded to 4 decimals as collected
                total = rng.integers(995, 1005, n)
                part = np.clip(rng.normal(rng.uniform(0.01, 0.4), 0.05, n), 0, 1) * total
                return np.round(np.round(part) / total, 4)
            case "pages":  # memory in whole pages, drifting
                walk = np.cumsum(rng.integers(-200, 201, n)) + rng.integers(10**5, 10**6)
                return (np.abs(walk) * 4096).astype(np.float64)
            case "decimal2":  # load averages
                return np.round(np.abs(np.cumsum(rng.normal(0, 0.05, n))) + rng.uniform(0.1, 2), 2)
            case "flat":  # service up, cpu count, totals that almost never change
                base = float(rng.integers(0, 64))
                values = np.full(n, base)
                values[rng.random(n) < 0.001] = base + 1
                return values
            case "integer_walk":  # process and descriptor counts
                return np.abs(np.cumsum(rng.integers(-2, 3, n)) + rng.integers(100, 1000)).astype(np.float64)
            case "seconds":  # pressure totals (µs resolution) and uptime
                return np.round(np.cumsum(rng.exponential(0.01, n)) + rng.uniform(0, 1e5), 6)
        raise ValueError(self.kind)


def host_series() -> list[SeriesDef]:
    """About 200 series, shaped like a 2-core web server's."""
    modes = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    mounts = (("/", "/dev/vda1"), ("/var", "/dev/vdb1"), ("/boot", "/dev/vda2"))
    services = (
        ("caddy", "web"),
        ("mariadb", "database"),
        ("redis-server", "cache"),
        ("php8.2-fpm", "php"),
        ("laravel-worker:0", "queue"),
        ("laravel-worker:1", "queue"),
        ("horizon", "queue"),
        ("cron", "other"),
    )
    rows: list[tuple[str, dict[str, str], str]] = []
    for cpu in ("total", "0", "1"):
        rows.append(("cpu_usage_ratio", {"cpu": cpu}, "ratio_jiffies"))
        rows.extend(("cpu_mode_ratio", {"cpu": cpu, "mode": mode}, "ratio_jiffies") for mode in modes)
    rows.extend((f"memory_{n}_bytes", {}, "pages") for n in ("total", "available", "used", "free", "cached", "buffers"))
    rows.append(("memory_used_ratio", {}, "ratio_jiffies"))
    rows.extend((n, {}, "pages") for n in ("swap_total_bytes", "swap_used_bytes"))
    rows.extend((n, {}, "counter_bytes") for n in ("swap_in_bytes_total", "swap_out_bytes_total"))
    for mount, device in mounts:
        fs = {"mountpoint": mount, "device": device, "fstype": "ext4"}
        rows.extend((f"filesystem_{n}_bytes", fs, "pages") for n in ("size", "used", "avail"))
        rows.extend((f"filesystem_{n}", fs, "integer_walk") for n in ("inodes", "inodes_used"))
        rows.extend((f"filesystem_{n}_ratio", fs, "ratio_jiffies") for n in ("used", "inodes_used"))
    for device in ("vda", "vdb"):
        disk = {"device": device}
        rows.extend((f"disk_{n}_total", disk, "counter_bytes") for n in ("read_bytes", "written_bytes"))
        rows.extend((f"disk_{n}_total", disk, "counter_small") for n in ("reads", "writes"))
        rows.extend((f"disk_{n}_seconds_total", disk, "seconds") for n in ("read_time", "write_time", "io_time"))
        rows.append(("disk_io_in_progress", disk, "integer_walk"))
    for interface in ("eth0", "eth1", "docker0"):
        nic = {"interface": interface}
        for direction in ("receive", "transmit"):
            rows.append((f"network_{direction}_bytes_total", nic, "counter_bytes"))
            rows.append((f"network_{direction}_packets_total", nic, "counter_small"))
            rows.extend((f"network_{direction}_{n}_total", nic, "flat") for n in ("errors", "drops"))
    rows.extend((n, {}, "decimal2") for n in ("load1", "load5", "load15"))
    rows.append(("uptime_seconds", {}, "seconds"))
    rows.extend((n, {}, "counter_small") for n in ("context_switches_total", "interrupts_total", "forks_total"))
    counts = ("processes_count", "processes_running", "processes_blocked", "file_descriptors_allocated")
    rows.extend((n, {}, "integer_walk") for n in counts)
    rows.append(("cpu_count", {}, "flat"))
    for resource in ("cpu", "memory", "io"):
        for kind in ("some", "full"):
            psi = {"resource": resource, "kind": kind}
            rows.extend([("pressure_stall_ratio", psi, "decimal2"), ("pressure_stall_seconds_total", psi, "seconds")])
    for service, category in services:
        svc = {"service": service, "manager": "systemd", "category": category}
        rows.extend((n, svc, "flat") for n in ("service_up", "service_restarts_total"))
        rows.extend([("service_memory_bytes", svc, "pages"), ("service_uptime_seconds", svc, "seconds")])
    for check in ("homepage", "api-health", "admin"):
        chk = {"check": check}
        flat = ("http_check_up", "http_check_status_code", "http_check_attempts", "http_check_failures_total")
        rows.extend((n, chk, "flat") for n in flat)
        rows.extend((n, chk, "seconds") for n in ("http_check_duration_seconds", "http_check_cert_expiry_seconds"))
    return [SeriesDef(metric, labels, kind) for metric, labels, kind in rows]


def day_arrays(
    start: float, step: float = 10.0, seed: int = 0, series: list[SeriesDef] | None = None
) -> Iterator[tuple[str, str, npt.NDArray[np.int64], Floats]]:
    """(metric, labels key, timestamps in ms, values) for one day of every series.

    Timestamps are the collection ticks, as the agent stamps them (aligned to the interval).
    """
    rng = np.random.default_rng(seed)
    n = int(86400 / step)
    ticks = (start + np.arange(n) * step) * 1000
    for definition in series or host_series():
        yield definition.metric, labels_key(definition.labels), ticks.astype(np.int64), definition.values(rng, n)
