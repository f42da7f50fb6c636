"""A full disk (a real tmpfs, mounted by the test where it runs as root): collection goes on into memory, the
status says so, and the held samples are written once space returns. A served agent on a full disk keeps answering
reads over the API and MCP calls over HTTP, keeps alerting, and loses none of the samples it held once space returns
(not even across a SIGKILL after)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from agent_process import ServedAgent, serve_agent
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from supervisor_fixture import wait_until

from crucible_monitor.agent import Agent
from crucible_monitor.config import Config
from crucible_monitor.models import EventKind
from crucible_monitor.monitor import Monitor
from crucible_monitor.storage.full import RESERVE_BYTES, SpaceReserve, free_bytes

pytestmark = pytest.mark.anyio


RULES = """
rules:
  - name: LevelHigh
    kind: threshold
    metric: test_level
    value: 0.5
    for: 0s
    severity: critical
"""


def _mount(tmp_path: Path, size: str) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount(tmp_path, "4m")


@pytest.fixture
def served_disk(tmp_path: Path) -> Iterator[Path]:
    """Room for a served agent's state.db, WAL and first Parquet files."""
    yield from _mount(tmp_path, "16m")


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


def _set_level(directory: Path, value: float) -> None:
    (directory / "level.tmp").write_text(f"test_level {value:g}\n", encoding="utf-8")
    os.replace(directory / "level.tmp", directory / "level.prom")


def _points(http: httpx.Client, since: float) -> list[float]:
    """The timestamps of every memory_total_bytes sample the agent serves since ``since`` (raw, one per bucket)."""
    params = {"metric": "memory_total_bytes", "start": f"{since}", "step": "50ms", "agg": "last"}
    answer = http.get("/api/v1/metrics/history", params=params)
    assert answer.status_code == 200, answer.text
    return sorted(ts for series in answer.json()["series"] for ts, _ in series["points"])


def _storage_finding(http: httpx.Client) -> str | None:
    answer = http.get("/api/v1/status")
    assert answer.status_code == 200, answer.text
    found: list[str] = [f["problem"] for f in answer.json()["findings"] if f["subject"] == "storage"]
    return found[0] if found else None


async def _mcp_status(agent: ServedAgent) -> str:
    """The text of ``get_system_status`` over MCP on HTTP (raises if the call is an error)."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {agent.token()}"}, timeout=60)
    async with http, Client(streamable_http_client(f"{agent.base_url}/mcp", http_client=http)) as client:
        result = await client.call_tool("get_system_status", {})
    assert not result.is_error, result.content
    return "".join(getattr(c, "text", "") for c in result.content)


def _client(agent: ServedAgent) -> httpx.Client:
    return httpx.Client(base_url=agent.base_url, headers={"Authorization": f"Bearer {agent.token()}"}, timeout=30)


async def test_a_served_agent_on_a_full_disk_reads_answers_mcp_alerts_and_loses_no_held_sample(
    served_disk: Path, tmp_path: Path
) -> None:
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    _set_level(textfile, 0)
    (tmp_path / "alerts.yaml").write_text(RULES, encoding="utf-8")
    extra = (
        f"alerts:\n  rules_file: {tmp_path / 'alerts.yaml'}\n"
        f"collectors:\n  services:\n    enabled: false\n  textfile:\n    directory: {textfile}\n"
        "analysis:\n  enabled: false\n"
    )
    began = time.time() - 1
    with serve_agent(served_disk, extra) as agent, _client(agent) as http:
        wait_until(lambda: len(_points(http, began)) >= 2, 30, "samples stored before the disk fills")
        reserve = agent.data_dir / ".space-reserve"
        assert reserve.stat().st_size == RESERVE_BYTES
        filler = _fill(served_disk)
        wait_until(
            lambda: "samples pending" in (_storage_finding(http) or ""), 30, "the status to say the disk is full"
        )
        assert not reserve.exists(), "given up for state.db"
        held_before = _points(http, began)
        wait_until(lambda: len(_points(http, began)) >= len(held_before) + 3, 30, "reads of samples held in memory")
        assert "disk full: collecting to memory" in await _mcp_status(agent)
        _set_level(textfile, 1)

        def fired() -> list[dict[str, Any]]:
            answer = http.get("/api/v1/alerts", params={"state": "firing"})
            assert answer.status_code == 200, answer.text
            return [a for a in answer.json()["items"] if a["name"] == "LevelHigh"]

        wait_until(lambda: bool(fired()), 30, "the rule to fire on the full disk")
        served_during = _points(http, began)

        filler.unlink()
        wait_until(lambda: _storage_finding(http) is None, 30, "the held samples written")
        assert reserve.stat().st_size == RESERVE_BYTES, "taken again"
        listed = http.get("/api/v1/events", params={"kind": "agent", "since": "1h"}).json()
        events = listed["items"] if isinstance(listed, dict) else listed
        assert any("samples held in memory, now written" in e["message"] for e in events)
        os.killpg(agent.process.pid, signal.SIGKILL)
        agent.process.wait(timeout=30)
    with serve_agent(served_disk, extra) as agent, _client(agent) as http:
        after = _points(http, began)
        firing = http.get("/api/v1/alerts", params={"state": "firing"}).json()["items"]
        assert "LevelHigh" in [a["name"] for a in firing], "the alert fired on the full disk is kept"
    assert sorted(set(served_during) - set(after)) == [], "a sample served on the full disk was lost"
    assert len(after) == len(set(after)), "no sample twice"


def test_the_space_reserve_is_given_up_when_full_and_samples_wait_only_until_space_returns(small_disk: Path) -> None:
    size = 1024**2
    reserve = SpaceReserve(small_disk / ".space-reserve", size)
    assert reserve.take() and reserve.path.stat().st_size == size
    filler = _fill(small_disk)
    reserve.release()
    assert not reserve.path.exists() and reserve.released
    assert reserve.holding_samples(), "the freed space is state.db's"
    filler.unlink()
    with (small_disk / "filler").open("wb") as handle:  # leave 1.5 reserves free: not enough to take it again
        handle.write(b"\0" * (free_bytes(small_disk) - size * 3 // 2))
    assert reserve.holding_samples()
    assert not reserve.take(), "never what fills the disk"
    assert not reserve.holding_samples(), "space came back: samples are written even without a reserve"
