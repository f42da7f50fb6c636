"""A full disk (a real 4 MiB tmpfs, mounted by the test where it runs as root): collection goes on into memory, the
status says so, and the held samples are written once space returns."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.models import EventKind
from crucible_monitor.monitor import Monitor

pytestmark = pytest.mark.anyio


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(directory: Path) -> Path:
    """Write zeros until the filesystem has no space left; returns the filler file."""
    filler = directory / "filler"
    with filler.open("wb") as handle, contextlib.suppress(OSError):
        while True:
            handle.write(b"\0" * 65536)
            handle.flush()
    return filler


async def test_a_full_disk_holds_samples_in_memory_and_writes_them_when_space_returns(small_disk: Path) -> None:
    config = Config.model_validate(
        {
            "agent": {"data_dir": str(small_disk / "data"), "collect_interval": "1s"},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {"services": {"enabled": False}},
            "analysis": {"enabled": False},
        }
    )
    agent = Agent(config)
    await agent.start(schedule=False)
    try:
        await agent.run_collector("system")
        filler = _fill(small_disk)
        for _ in range(3):
            await agent.run_collector("system")  # no exception escapes; collection goes on
        held = agent.store.stats().held_rows
        assert held > 0
        summary = await Monitor(agent).status_summary()
        [finding] = [f for f in summary.findings if f.subject == "storage"]
        assert finding.severity == "critical" and f"{held} samples pending" in finding.problem

        filler.unlink()
        await agent.run_collector("system")
        assert agent.store.stats().held_rows == 0
        assert not [f for f in (await Monitor(agent).status_summary()).findings if f.subject == "storage"]
        [event] = agent.running.state.events(kinds=[EventKind.AGENT], subject="storage")
        assert event.event.message.endswith(f": {held} samples held in memory, now written")
        now = agent.clock()
        [series] = agent.store.query("memory_total_bytes", start=now - 3600, end=now + 1, step=0.001, agg="last")
        assert len(series.values) == 5, "one reading before, three held, one after: none lost"
    finally:
        await agent.stop()


def test_failures_of_a_full_disk_are_one_warning_a_minute_for_every_job(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    from crucible_monitor.storage.full import JobLog, is_disk_full

    db = sqlite3.connect(small_disk / "state.db")
    db.execute("CREATE TABLE t (x BLOB)")
    db.commit()
    _fill(small_disk)
    failures: list[BaseException] = []
    try:
        (small_disk / "more").write_bytes(b"x" * 65536)
    except OSError as exc:
        failures.append(exc)
    try:
        db.execute("INSERT INTO t VALUES (?)", (b"x" * 1_000_000,))
        db.commit()
    except sqlite3.OperationalError as exc:
        failures.append(exc)
    assert len(failures) == 2 and all(is_disk_full(f) for f in failures)
    now = [1000.0]
    log = JobLog(clock=lambda: now[0])
    with caplog.at_level("WARNING", logger="crucible_monitor.agent"):
        for seconds in range(0, 120, 1):  # two minutes of jobs failing every second
            now[0] = 1000.0 + seconds
            for failure in failures:
                try:
                    raise failure
                except (OSError, sqlite3.OperationalError):
                    log.failed("a job")
        try:
            raise ValueError("a bug, not the disk")
        except ValueError:
            log.failed("another job")
    warnings = [r for r in caplog.records if "the disk is full" in r.getMessage()]
    assert len(warnings) == 2 and all(r.exc_info is None for r in warnings)
    (bug,) = [r for r in caplog.records if r.getMessage() == "another job"]
    assert bug.exc_info is not None  # anything else keeps its traceback
    db.close()
