"""`crucible-monitor backup` of a running agent (a real `serve` process) and `restore` into a new data dir."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from agent_process import serve_agent
from helpers import ALWAYS_FIRING_RULES
from supervisor_fixture import wait_until

from crucible_monitor.errors import ActionRefused, StorageError
from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.storage.backup import MANIFEST, backup, restore
from crucible_monitor.storage.state import StateDB

METRICS = ("memory_used_bytes", "cpu_usage_ratio")
STEP = 0.05  # 50 ms buckets: one raw sample each at a 1 s collect interval (a 550 s window at most)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crucible_monitor.cli", *args], capture_output=True, text=True, timeout=120
    )


def _extra(rules: Path) -> str:
    # continues the `storage:` block serve_agent writes, then the alerting file
    return f"  flush_interval: 1s\nalerts:\n  rules_file: {rules}\n"


async def _points(remote: RemoteMonitor, start: float) -> dict[str, list[tuple[float, float]]]:
    now = time.time()
    out = {}
    for metric in METRICS:
        history = await remote.history(metric, start=start, end=now, step=STEP, agg="last")
        out[metric] = sorted((ts, v) for s in history.series for ts, v in s.points)
    return out


async def _state(remote: RemoteMonitor) -> dict[str, Any]:
    alerts = await remote.list_alerts(state="all")
    return {
        "alerts": sorted(
            (a.id, a.name, a.active_since, a.fired_at, a.acknowledgement.by if a.acknowledgement else None)
            for a in alerts
        ),
        "silences": sorted((s.model_dump(exclude={"active"}) for s in await remote.list_silences()), key=str),
        "audit": [r.model_dump() for r in await remote.audit()],
    }


async def _prepare(remote: RemoteMonitor) -> None:
    """An acknowledged firing alert, a silence and an audited (refused) restart dry run."""

    async def firing() -> list[Any]:
        return [a for a in await remote.list_alerts() if a.state == "firing"]

    deadline = time.monotonic() + 30
    while not (alerts := await firing()):
        if time.monotonic() > deadline:
            raise TimeoutError("no alert fired within 30s")
        await asyncio.sleep(0.2)  # poll interval of a bounded wait
    await remote.acknowledge_alert(alerts[0].id, by="backup-test", note="seen")
    await remote.silence_alerts(
        ["alertname=MemoryPresent"], duration=timedelta(hours=1), reason="backup test", author="tester"
    )
    with pytest.raises(ActionRefused):
        await remote.restart_service("nginx", reason="backup test", actor="tester", confirmed=True, dry_run=True)


def test_backup_of_a_running_agent_restores_the_same_history_alerts_silences_and_audit(tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(ALWAYS_FIRING_RULES, encoding="utf-8")
    dest = tmp_path / "backup"
    (tmp_path / "live").mkdir()
    with serve_agent(tmp_path / "live", _extra(rules)) as agent:
        start = time.time() - 5

        async def before() -> tuple[dict[str, Any], dict[str, list[tuple[float, float]]]]:
            async with RemoteMonitor(agent.base_url, agent.token()) as remote:
                await _prepare(remote)
                return await _state(remote), await _points(remote, start)

        wait_until(lambda: any((agent.data_dir / "metrics" / "raw").rglob("*.parquet")), 30, "a Parquet file")
        state_before, points_before = asyncio.run(before())
        done = _cli("backup", str(dest), "--config", str(agent.config))  # while the agent collects and flushes
        assert done.returncode == 0, done.stderr
    assert "backed up" in done.stdout
    manifest = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
    names = set(manifest["files"])
    assert "state.db" in names and "api_token" in names
    assert any(n.startswith("metrics/raw/") and n.endswith(".parquet") for n in names)
    assert any(n.startswith("metrics/wal/") for n in names)
    assert not any(n.endswith(("-wal", "-shm", ".tmp")) for n in names)
    assert manifest["files"]["api_token"]["mode"] == 0o600

    restored = tmp_path / "restored"
    restored.mkdir()
    config = restored / "restore.yaml"
    config.write_text(f"agent:\n  data_dir: {restored / 'data'}\n", encoding="utf-8")
    done = _cli("restore", str(dest), "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert (restored / "data" / "api_token").stat().st_mode & 0o777 == 0o600
    with serve_agent(restored, _extra(rules)) as again:
        assert again.token() == agent.token()

        async def after() -> tuple[dict[str, Any], dict[str, list[tuple[float, float]]]]:
            async with RemoteMonitor(again.base_url, again.token()) as remote:
                return await _state(remote), await _points(remote, start)

        state_after, points_after = asyncio.run(after())
    assert state_after == state_before
    assert any(a[4] == "backup-test" for a in state_after["alerts"])
    assert state_after["silences"] and any(r["dry_run"] for r in state_after["audit"])
    for metric in METRICS:
        served = points_before[metric]
        cut = served[-1][0]  # the newest point the agent served before the backup began: all up to it is stored
        assert len(served) >= 3
        assert [p for p in points_after[metric] if p[0] <= cut] == served


def _small_backup(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    db = StateDB(data / "state.db")
    db.add_audit(
        actor="t",
        action="restart",
        target="x",
        reason="r",
        dry_run=True,
        result="dry_run",
        detail="d",
        state_before=None,
        state_after=None,
    )
    db.close()
    (data / "api_token").write_text("secret-token\n", encoding="utf-8")
    (data / "api_token").chmod(0o600)
    backup(data, tmp_path / "backup")
    return tmp_path / "backup"


def test_restore_refuses_a_non_empty_data_dir_and_names_it(tmp_path: Path) -> None:
    src = _small_backup(tmp_path)
    target = tmp_path / "busy"
    target.mkdir()
    (target / "state.db").write_text("x", encoding="utf-8")
    config = tmp_path / "m.yaml"
    config.write_text(f"agent:\n  data_dir: {target}\n", encoding="utf-8")
    done = _cli("restore", str(src), "--config", str(config))
    assert done.returncode != 0
    assert str(target) in done.stderr and "not empty" in done.stderr
    assert (target / "state.db").read_text(encoding="utf-8") == "x"


def test_a_corrupted_file_fails_the_checksum_and_nothing_is_restored(tmp_path: Path) -> None:
    src = _small_backup(tmp_path)
    with open(src / "state.db", "r+b") as handle:
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    target = tmp_path / "new"
    with pytest.raises(StorageError, match="state.db \\(checksum mismatch\\)"):
        restore(src, target)
    assert not target.exists()
    config = tmp_path / "m.yaml"
    config.write_text(f"agent:\n  data_dir: {target}\n", encoding="utf-8")
    done = _cli("restore", str(src), "--config", str(config))
    assert done.returncode != 0 and "checksum mismatch" in done.stderr


def test_backup_and_restore_name_what_is_wrong(tmp_path: Path) -> None:
    src = _small_backup(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x", encoding="utf-8")
    config = tmp_path / "m.yaml"
    config.write_text(f"agent:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    done = _cli("backup", str(tmp_path / "full"), "--config", str(config))
    assert done.returncode != 0 and "not empty" in done.stderr
    (src / MANIFEST).unlink()
    config.write_text(f"agent:\n  data_dir: {tmp_path / 'other'}\n", encoding="utf-8")
    done = _cli("restore", str(src), "--config", str(config))
    assert done.returncode != 0 and "has no manifest.json" in done.stderr
