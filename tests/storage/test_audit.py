"""The audit table of ``state.db``: pages newest first with a total, free text capped at write time, and the
``claimed_by`` column added to a database written before it existed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from crucible_monitor.storage.state import AUDIT_FIELD_CAP, AUDIT_MIGRATIONS, StateDB


def _record(db: StateDB, n: int, **texts: str) -> int:
    fields = {"actor": "ops-bot", "target": "nginx", "reason": f"reason {n}", "detail": "refused", **texts}
    return db.add_audit(action="restart_service", dry_run=True, result="refused", **fields)


def test_audit_pages_newest_first_with_the_total(tmp_path: Path) -> None:
    clock = iter(range(1000, 2000))
    db = StateDB(tmp_path / "state.db", clock=lambda: float(next(clock)))
    for n in range(25):
        _record(db, n)
    _record(db, 99, target="mysql")
    first = db.audit(target="nginx", limit=10)
    last = db.audit(target="nginx", limit=10, offset=20)
    assert [r.reason for r in first] == [f"reason {n}" for n in range(24, 14, -1)]
    assert [r.reason for r in last] == [f"reason {n}" for n in range(4, -1, -1)]
    assert db.audit_count(target="nginx") == 25 and db.audit_count() == 26
    assert db.audit(target="nginx", limit=10, offset=30) == []


def test_every_free_text_field_is_capped_when_written(tmp_path: Path) -> None:
    db = StateDB(tmp_path / "state.db")
    huge = "x" * 100_000
    _record(db, 0, actor=huge, target=huge, reason=huge, detail=huge, claimed_by=huge)
    [record] = db.audit()
    for text in (record.actor, record.target, record.reason, record.detail, record.claimed_by):
        assert text is not None and len(text) == AUDIT_FIELD_CAP and text.endswith("…")


def test_a_database_from_before_claimed_by_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE schema_versions (area TEXT PRIMARY KEY, version INTEGER);"
        f"{AUDIT_MIGRATIONS[0]};INSERT INTO schema_versions VALUES ('audit', 1);"
    )
    old.execute(
        "INSERT INTO audit (ts, actor, action, target, reason, dry_run, result, detail) "
        "VALUES (1, 'api (cli)', 'restart_service', 'nginx', 'old', 0, 'refused', 'x')"
    )
    old.commit()
    old.close()
    db = StateDB(path)
    _record(db, 1, claimed_by="alice")
    assert [(r.actor, r.claimed_by) for r in db.audit()] == [("ops-bot", "alice"), ("api (cli)", None)]
