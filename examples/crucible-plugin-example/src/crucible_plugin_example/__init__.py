"""An example crucible-monitor plugin: the kernel's entropy pool and file handles, read from procfs."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from crucible_monitor.collectors.base import Collection
from crucible_monitor.errors import CollectorError
from crucible_monitor.models import MetricKind, MetricSpec, Sample

CATALOGUE = (
    MetricSpec("example_entropy_bits", MetricKind.GAUGE, "bits", "Entropy the kernel's pool holds."),
    MetricSpec("example_file_handles", MetricKind.GAUGE, "handles", "File handles allocated, from file-nr."),
)


class ExampleCollector:
    """Reads two numbers from procfs each cycle."""

    name = "plugin:example"
    catalogue = CATALOGUE

    def __init__(self, procfs: Path, clock: Callable[[], float]) -> None:
        self.procfs = procfs
        self.clock = clock

    async def collect(self) -> Collection:
        try:
            entropy = (self.procfs / "sys/kernel/random/entropy_avail").read_text().strip()
            handles = (self.procfs / "sys/fs/file-nr").read_text().split()[0]
        except OSError as exc:
            raise CollectorError(f"cannot read {self.procfs}: {exc.strerror or exc}") from exc
        now = self.clock()
        return Collection(
            samples=[
                Sample("example_entropy_bits", float(entropy), ts=now),
                Sample("example_file_handles", float(handles), ts=now),
            ]
        )


def build(settings: Mapping[str, Any], *, clock: Callable[[], float] = time.time) -> ExampleCollector:
    """The plugin's factory: its settings are what the config gives under collectors.plugins.example."""
    unknown = sorted(set(settings) - {"procfs"})
    if unknown:
        raise ValueError(f"unknown settings {unknown}; valid: procfs")
    return ExampleCollector(Path(settings.get("procfs", "/proc")), clock)
