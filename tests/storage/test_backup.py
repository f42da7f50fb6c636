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

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from agent_process import serve_agent
from helpers import ALWAYS_FIRING_RULES
from manual_clock import Clock
from supervisor_fixture import wait_until

from crucible_monitor.analysis.registry import ANALYSIS_MIGRATIONS
from crucible_monitor.config import StorageConfig
from crucible_monitor.errors import ActionRefused, StorageError
from crucible_monitor.models import Sample
from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.storage.backup import MANIFEST, backup, restore
from crucible_monitor.storage.state import StateDB
from crucible_monitor.storage.store import MetricStore

METRICS = ("memory_used_bytes", "cpu_usage_ratio")
START = 1_764_288_000.0  # 2025-11-28T00:00:00Z
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
        "audit": [r.model_dump() for r in (await remote.audit()).records],
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
                deadline = time.monotonic() + 30
                while min(map(len, (points := await _points(remote, start)).values())) < 3:
                    if time.monotonic() > deadline:
                        raise TimeoutError("fewer than 3 points of each metric within 30s")
                    await asyncio.sleep(0.2)  # poll interval of a bounded wait
                return await _state(remote), points

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
    assert any(a[4] == "default (backup-test)" for a in state_after["alerts"])  # the token, then the claim
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
    (src / MANIFEST).write_text(json.dumps({"version": 1, "files": {"../etc/passwd": {}}}), encoding="utf-8")
    with pytest.raises(StorageError, match="malformed"):
        restore(src, tmp_path / "other")
    (src / MANIFEST).unlink()
    config.write_text(f"agent:\n  data_dir: {tmp_path / 'other'}\n", encoding="utf-8")
    done = _cli("restore", str(src), "--config", str(config))
    assert done.returncode != 0 and "has no manifest.json" in done.stderr


def _store(path: Path) -> MetricStore:
    store = MetricStore(path, StorageConfig(fsync=False), retention=timedelta(days=30), clock=Clock(START + 100))
    store.open()
    return store


def _values(directory: Path) -> list[tuple[float, float]]:
    store = _store(directory)
    try:
        series = store.query("load_gauge", start=START, end=START + 100, step=1, agg="last")
        return sorted(p for s in series for p in zip(s.timestamps, s.values, strict=True))
    finally:
        store.close()


def test_a_torn_wal_tail_is_left_out_and_every_complete_record_restored(tmp_path: Path) -> None:
    store = _store(tmp_path / "data" / "metrics")
    for i in range(8):
        store.append([Sample("load_gauge", float(i), {}, START + i)])
        if i == 4:
            store.flush()  # the first five in Parquet, the rest in the WAL
    segment = tmp_path / "data" / "metrics" / "wal" / f"{store.wal.active_segment:012d}.wal"
    complete = segment.stat().st_size
    with open(segment, "ab") as handle:  # an append caught halfway, as a live copy can find it
        handle.write(b"CW\xff\x00\x00\x00\x00\x00\x00\x00[[1")
    result = backup(tmp_path / "data", tmp_path / "backup")
    store.close()
    copied = tmp_path / "backup" / segment.relative_to(tmp_path / "data")
    assert copied.stat().st_size == complete
    assert result.files == len(json.loads((tmp_path / "backup" / MANIFEST).read_text(encoding="utf-8"))["files"])
    restore(tmp_path / "backup", tmp_path / "new")
    assert _values(tmp_path / "new" / "metrics") == [(START + i, float(i)) for i in range(8)]


def test_a_parquet_file_compacted_away_during_the_copy_is_replaced_by_its_successor(tmp_path: Path) -> None:
    store = _store(tmp_path / "data" / "metrics")
    for i in range(6):
        store.append([Sample("load_gauge", float(i), {}, START + i)])
        if i in (2, 5):
            store.flush()
    store.close()
    first, second = sorted((tmp_path / "data" / "metrics" / "raw").rglob("*.parquet"))
    merged = second.with_name(f"{first.stem.split('-')[0]}-{second.stem.split('-')[1]}.parquet")
    pq.write_table(pa.concat_tables([pq.read_table(first), pq.read_table(second)]), merged)
    merged.unlink()  # only its name is needed up front; it appears during the copy

    def compact_midway(name: str, done: int, known: int) -> None:
        if name.endswith(first.name) and second.exists():  # the pass has listed `second` already
            pq.write_table(pa.concat_tables([pq.read_table(first), pq.read_table(second)]), merged)
            second.unlink()

    calls: list[int] = []
    backup(tmp_path / "data", tmp_path / "backup", progress=lambda n, d, k: (calls.append(d), compact_midway(n, d, k)))
    names = {Path(n).name for n in json.loads((tmp_path / "backup" / MANIFEST).read_text(encoding="utf-8"))["files"]}
    assert merged.name in names and second.name not in names and first.name in names
    assert calls == list(range(1, len(calls) + 1))
    restore(tmp_path / "backup", tmp_path / "new")
    assert _values(tmp_path / "new" / "metrics") == [(START + i, float(i)) for i in range(6)]


def test_a_destination_inside_the_data_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "data" / "metrics").mkdir(parents=True)
    with pytest.raises(StorageError, match="inside the data directory"):
        backup(tmp_path / "data", tmp_path / "data" / "backups" / "today")
    assert not (tmp_path / "data" / "backups").exists()


def test_restored_models_are_found_in_the_new_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = StateDB(data / "state.db")
    db.migrate("analysis", ANALYSIS_MIGRATIONS)
    db.execute(
        "INSERT INTO model_registry (kind, trained_at, window_start, window_end, samples, features, parameters, "
        "threshold, path) VALUES ('host', 1, 0, 1, 10, '[]', '{}', 0.5, ?)",
        (str(data / "models" / "host-1.npz"),),
    )
    db.close()
    (data / "models").mkdir()
    (data / "models" / "host-1.npz").write_bytes(b"trees")
    backup(data, tmp_path / "backup")
    restore(tmp_path / "backup", tmp_path / "new")
    restored = StateDB(tmp_path / "new" / "state.db")
    try:
        (row,) = restored.execute("SELECT path FROM model_registry")
    finally:
        restored.close()
    assert Path(row["path"]) == tmp_path / "new" / "models" / "host-1.npz"
    assert Path(row["path"]).read_bytes() == b"trees"
