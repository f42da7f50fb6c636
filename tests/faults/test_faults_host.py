"""Real faults on the host itself: a process burning a core, a process whose memory grows, a nearly full mount.

Each names its culprit in the first incident within two collections, names it in the window's explanation where
there is one, and, once the fault is undone, names it in "recently recovered" and no longer as a problem.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fault_harness import BURNER, GROWER, burn, config, first_incident, recovered, watching

pytestmark = pytest.mark.anyio


@contextmanager
def _process(source: str) -> Iterator[subprocess.Popen[str]]:
    with subprocess.Popen(
        [sys.executable, "-c", source], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None and process.stdout.readline() == "ready\n"
            yield process
        finally:
            process.kill()


async def test_a_cpu_burning_process_is_the_first_incident_by_name_and_in_the_explanation(tmp_path: Path) -> None:
    async with watching(config(tmp_path, system=True)) as watched:
        with _process(BURNER) as burner:
            started = time.time()
            await burn(watched, burner.pid)
            summary = await watched.summary()
            lead = first_incident(summary, ours=lambda subject: subject == "process:cpu-burner")
            assert lead.subject == "process:cpu-burner", summary.headline
            assert f"pid {burner.pid}" in lead.problem and lead.value is not None and lead.value.unit == "cores"
            assert "process:cpu-burner" in summary.headline
            explanation = await watched.monitor.explain_anomaly(start=started - 60, end=time.time() + 1)
            assert "cpu-burner" in [p.name for p in explanation.top_processes_by_cpu]
        await watched.collect("processes")
        summary = await watched.summary()
        assert "process:cpu-burner" not in [f.subject for f in summary.findings]
        assert "process:cpu-burner" in recovered(summary)


async def test_a_process_whose_memory_grows_is_named_with_how_much_it_grew(tmp_path: Path) -> None:
    later = [0.0]
    async with watching(config(tmp_path, system=True), clock=lambda: time.time() + later[0]) as watched:
        with _process(GROWER) as grower:
            assert grower.stdin is not None and grower.stdout is not None
            await watched.collect("processes")  # it is starting: what it holds is not yet a reference
            later[0] = 61.0  # a minute on
            await watched.collect("processes")  # its memory before: the reference
            grower.stdin.write(f"{300 * 2**20}\n")
            grower.stdin.flush()
            assert grower.stdout.readline() == "grown\n"
            await watched.collect("processes", "system")
            summary = await watched.summary()
            lead = first_incident(summary, ours=lambda subject: subject == "process:mem-grower")
            assert lead.subject == "process:mem-grower", summary.headline
            assert f"pid {grower.pid}" in lead.problem and "grew from" in lead.problem
            assert lead.value is not None and lead.value.unit == "bytes" and lead.value.value >= 300 * 2**20
            now = watched.agent.clock()
            explanation = await watched.monitor.explain_anomaly(start=now - 120, end=now + 1)
            assert "mem-grower" in [p.name for p in explanation.top_processes_by_memory]
        await watched.collect("processes")
        summary = await watched.summary()
        assert "process:mem-grower" not in [f.subject for f in summary.findings]
        assert "process:mem-grower" in recovered(summary)


@contextmanager
def _tmpfs(mountpoint: Path, size: str) -> Iterator[Path]:
    mountpoint.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)], check=False)
    if done.returncode != 0:
        pytest.skip("mounting a tmpfs needs root (and a mount namespace that allows it)")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


async def test_a_nearly_full_mount_is_the_first_incident_and_recovers_when_freed(tmp_path: Path) -> None:
    with _tmpfs(tmp_path / "full", "4m") as mount:
        settings = config(tmp_path, system={"include_fstypes": ["tmpfs"]}, alerts={"disk_threshold": 85})
        subject = f"filesystem:{mount}"
        async with watching(settings) as watched:
            (mount / "filler").write_bytes(b"x" * (3_900 * 1024))  # 95 % of 4 MiB
            await watched.collect("system")
            summary = await watched.summary()
            lead = first_incident(summary, ours=lambda s: s == subject)
            assert lead.subject == subject, summary.headline
            assert lead.severity == "critical" and "threshold 85 %" in lead.problem
            (mount / "filler").unlink()
            await watched.collect("system")
            summary = await watched.summary()
            assert subject not in [f.subject for f in summary.findings]
            assert subject in recovered(summary)
