"""The Laravel collector against a real MariaDB, a real Redis, a real SQLite file, and Monolog-format log files."""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_contract, values
from manual_clock import Clock
from pydantic import ValidationError
from services.mariadb import MariaDB
from services.redis_server import RedisServer

from crucible_monitor.collectors.laravel import (
    LaravelAppConfig,
    LaravelCollector,
    LaravelConfig,
    find_app,
    parse_log_line,
    recent_errors,
)
from crucible_monitor.errors import NotFoundError
from crucible_monitor.models import EventKind

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).parent.parent / "fixtures" / "apps" / "laravel"
NOW = datetime(2026, 11, 28, 10, 5, tzinfo=UTC).timestamp()
_databases = itertools.count()


@dataclass(frozen=True)
class _ShopDb:
    name: str
    url: str


@pytest.fixture
def shop_db(mariadb: MariaDB) -> _ShopDb:
    """A fresh database with Laravel's jobs and failed_jobs tables."""
    name = f"shop{next(_databases)}"
    mariadb.execute(f"CREATE DATABASE {name}")
    for statement in _statements(FIXTURES / "schema.mysql.sql"):
        mariadb.execute(statement, database=name)
    return _ShopDb(name, f"mysql://root@localhost/{name}?unix_socket={mariadb.socket}")


def _statements(path: Path) -> list[str]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _payload(**extra: Any) -> str:
    payload = json.loads((FIXTURES / "job_payload.json").read_text(encoding="utf-8"))
    return json.dumps({**payload, **extra}, separators=(",", ":"))  # as PHP's json_encode writes it


def _app(tmp_path: Path, **settings: Any) -> LaravelAppConfig:
    root = tmp_path / "shop"
    (root / "storage" / "logs").mkdir(parents=True, exist_ok=True)
    return LaravelAppConfig.model_validate({"name": "shop", "path": root, "queue_driver": "none", **settings})


_values = functools.partial(values, without=("app",))  # every sample is labelled with the app: compare without it


def _mysql_time(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


async def test_database_queues_report_ready_reserved_and_delayed_jobs_and_failed_jobs(
    mariadb: MariaDB, shop_db: _ShopDb, tmp_path: Path
) -> None:
    database = shop_db.name
    now = int(NOW)
    insert = (
        "INSERT INTO jobs (queue, payload, attempts, reserved_at, available_at, created_at)"
        " VALUES (%s, %s, %s, %s, %s, %s)"
    )
    for queue, reserved_at, available_at in (
        ("default", None, now - 120),
        ("default", None, now - 30),
        ("default", now - 5, now - 60),
        ("emails", None, now + 600),
    ):
        mariadb.execute(insert, (queue, _payload(), 0, reserved_at, available_at, now - 200), database=database)
    for uuid in ("a", "b"):
        mariadb.execute(
            "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception)"
            " VALUES (%s, 'database', 'default', %s, %s)",
            (uuid, _payload(), "RuntimeException: boom in /x.php:1"),
            database=database,
        )
    app = _app(tmp_path, queue_driver="database", database_url=shop_db.url, queues=["default", "reports"])
    collector = LaravelCollector(app, state_dir=tmp_path / "state", clock=Clock(NOW))
    try:
        collection = await collector.collect()
    finally:
        await collector.aclose()
    assert_contract(collector, collection)
    assert collection.events == []
    assert _values(collection.samples, "laravel_queue_jobs") == {
        (("queue", q), ("state", state)): count
        for q, counts in {"default": (2, 1, 0), "emails": (0, 0, 1), "reports": (0, 0, 0)}.items()
        for state, count in zip(("ready", "reserved", "delayed"), counts, strict=True)
    }
    assert _values(collection.samples, "laravel_queue_oldest_job_age_seconds") == {(("queue", "default"),): 120}
    assert _values(collection.samples, "laravel_failed_jobs") == {(): 2}


async def test_a_queue_that_drains_reports_zero_rather_than_vanishing(
    mariadb: MariaDB, shop_db: _ShopDb, tmp_path: Path
) -> None:
    database = shop_db.name
    mariadb.execute(
        "INSERT INTO jobs (queue, payload, attempts, available_at, created_at) VALUES ('imports', %s, 0, 0, 0)",
        (_payload(),),
        database=database,
    )
    app = _app(tmp_path, queue_driver="database", database_url=shop_db.url)
    collector = LaravelCollector(app, state_dir=tmp_path / "state", clock=Clock(NOW))
    try:
        first = await collector.collect()
        mariadb.execute("DELETE FROM jobs", database=database)
        second = await collector.collect()
    finally:
        await collector.aclose()
    key = (("queue", "imports"), ("state", "ready"))
    assert _values(first.samples, "laravel_queue_jobs")[key] == 1
    assert _values(second.samples, "laravel_queue_jobs")[key] == 0


async def test_sqlite_databases_are_read_like_laravel_11s_default(tmp_path: Path) -> None:
    path = tmp_path / "database.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript((FIXTURES / "schema.sqlite.sql").read_text(encoding="utf-8"))
        connection.execute(
            "INSERT INTO jobs (queue, payload, attempts, available_at, created_at) VALUES ('default', ?, 0, ?, ?)",
            (_payload(), int(NOW) - 10, int(NOW) - 10),
        )
    connection.close()
    app = _app(tmp_path, queue_driver="database", database_url=f"sqlite:///{path}")
    collection = await LaravelCollector(app, state_dir=tmp_path / "state", clock=Clock(NOW)).collect()
    assert _values(collection.samples, "laravel_queue_jobs")[(("queue", "default"), ("state", "ready"))] == 1
    assert _values(collection.samples, "laravel_failed_jobs") == {(): 0}


async def test_redis_queues_and_horizon_are_read_under_the_apps_prefixes(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with redis_server.client() as client:
        client.flushdb()
        prefix = "laravel_database_queues:default"
        client.rpush(prefix, *[_payload(id=str(i), attempts=0) for i in range(3)])
        client.zadd(f"{prefix}:reserved", {_payload(id="r", attempts=1): NOW + 90})
        client.zadd(
            f"{prefix}:delayed", {_payload(id="d1", attempts=0): NOW + 60, _payload(id="d2", attempts=0): NOW + 70}
        )
        # Horizon's keys as its RedisMasterSupervisorRepository writes them (no Horizon process can run here).
        client.zadd("laravel_horizon:masters", {"shop-host-a1b2": NOW - 3})
        client.hset("laravel_horizon:master:shop-host-a1b2", mapping={"name": "shop-host-a1b2", "status": "running"})
        app = _app(tmp_path, queue_driver="redis", redis_url=redis_server.url)
        clock = Clock(NOW)
        collector = LaravelCollector(app, state_dir=tmp_path / "state", clock=clock)
        try:
            running = await collector.collect()
            client.hset("laravel_horizon:master:shop-host-a1b2", "status", "paused")
            paused = await collector.collect()
            client.hset("laravel_horizon:master:shop-host-a1b2", "status", "running")
            clock.now = NOW + 60  # the master stopped reporting
            gone = await collector.collect()
        finally:
            await collector.aclose()
    for collection in (running, paused, gone):
        assert_contract(collector, collection)
    assert _values(running.samples, "laravel_queue_jobs") == {
        (("queue", "default"), ("state", "ready")): 3,
        (("queue", "default"), ("state", "reserved")): 1,
        (("queue", "default"), ("state", "delayed")): 2,
    }
    assert [_values(c.samples, "laravel_horizon_up") for c in (running, paused, gone)] == [{(): 1}, {(): 0}, {(): 0}]


async def test_horizon_is_not_reported_for_an_app_that_does_not_use_it(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with redis_server.client() as client:
        client.flushdb()
    app = _app(tmp_path, queue_driver="redis", redis_url=redis_server.url)
    collector = LaravelCollector(app, state_dir=tmp_path / "state", clock=Clock(NOW))
    try:
        collection = await collector.collect()
    finally:
        await collector.aclose()
    assert _values(collection.samples, "laravel_horizon_up") == {}
    assert _values(collection.samples, "laravel_queue_jobs")[(("queue", "default"), ("state", "ready"))] == 0


async def test_log_entries_are_counted_by_level_and_exception_across_a_daily_rotation(tmp_path: Path) -> None:
    app = _app(tmp_path)
    logs = app.path / "storage" / "logs"
    (logs / "laravel-2026-11-27.log").write_text("[2026-11-27 23:59:00] production.ERROR: history  \n", "utf-8")
    collector = LaravelCollector(app, state_dir=tmp_path / "state", clock=Clock(NOW))
    first = await collector.collect()
    assert _values(first.samples, "laravel_log_entries_total")[(("level", "error"),)] == 0  # history is not new
    shutil.copyfile(FIXTURES / "laravel.log", logs / "laravel-2026-11-28.log")  # the daily channel's new file
    collection = await collector.collect()
    assert_contract(collector, collection)
    levels = _values(collection.samples, "laravel_log_entries_total")
    assert {labels[0][1]: value for labels, value in levels.items() if value} == {
        "info": 1,
        "warning": 1,
        "error": 3,
        "critical": 1,
    }
    assert _values(collection.samples, "laravel_exceptions_total") == {
        (("exception", "App\\Exceptions\\PaymentFailed"),): 2,
        (("exception", "Illuminate\\Database\\QueryException"),): 1,
    }
    with (logs / "laravel-2026-11-28.log").open("a", encoding="utf-8") as handle:
        handle.write("[2026-11-28 10:06:00] production.EMERGENCY: Disk full  \n")
    after = await collector.collect()
    assert _values(after.samples, "laravel_log_entries_total")[(("level", "emergency"),)] == 1
    assert _values(after.samples, "laravel_log_entries_total")[(("level", "error"),)] == 3


async def test_recent_errors_reads_the_logs_backwards_and_lists_failed_jobs(
    mariadb: MariaDB, shop_db: _ShopDb, tmp_path: Path
) -> None:
    database = shop_db.name
    exception = (FIXTURES / "failed_job_exception.txt").read_text(encoding="utf-8")
    for uuid, failed_at in (("old", NOW - 7200), ("new-1", NOW - 120), ("new-2", NOW - 60)):
        mariadb.execute(
            "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception, failed_at)"
            " VALUES (%s, 'redis', 'mail', %s, %s, %s)",
            (uuid, _payload(), exception, _mysql_time(failed_at)),
            database=database,
        )
    app = _app(tmp_path, database_url=shop_db.url)
    logs = app.path / "storage" / "logs"
    shutil.copyfile(FIXTURES / "laravel.log", logs / "laravel.log")
    since = datetime(2026, 11, 28, 10, 1, 30, tzinfo=UTC).timestamp()
    os.utime(logs / "laravel.log", (NOW, NOW))  # written up to its last entry
    errors = recent_errors(app, since, limit=2)
    assert errors.errors_total == 3
    assert errors.by_level == {"error": 2, "critical": 1}
    assert [(e.ts, e.level, e.exception) for e in errors.errors] == [
        ("2026-11-28T10:04:00+00:00", "error", "App\\Exceptions\\PaymentFailed"),
        ("2026-11-28T10:03:00+00:00", "critical", None),
    ]
    assert errors.errors[0].message == "Card declined"
    assert errors.errors[0].file == "laravel.log"
    assert [(t.exception, t.count) for t in errors.top_exceptions] == [
        ("App\\Exceptions\\PaymentFailed", 1),
        ("Illuminate\\Database\\QueryException", 1),
    ]
    assert [(j.id, j.job, j.exception) for j in errors.failed_jobs] == [
        ("new-2", "App\\Jobs\\SendInvoice", "Illuminate\\Http\\Client\\ConnectionException"),
        ("new-1", "App\\Jobs\\SendInvoice", "Illuminate\\Http\\Client\\ConnectionException"),
    ]
    assert errors.failed_jobs[0].exception_message is not None
    assert errors.failed_jobs[0].exception_message.startswith("cURL error 28: Operation timed out")
    assert errors.problems == []
    # three distinct entries, two shown: the list says so; the whole range was read
    assert (errors.total, errors.limit, errors.truncated, errors.scan_incomplete) == (3, 2, True, False)
    assert not errors.failed_jobs_truncated


def test_recent_errors_group_repeated_entries_with_their_count_and_first_and_last_time(tmp_path: Path) -> None:
    app = _app(tmp_path)
    log = app.path / "storage" / "logs" / "laravel.log"
    refused = "production.ERROR: SQLSTATE[HY000] [2002] Connection refused"
    repeated = "".join(f"[2026-11-28 {10 + m // 60}:{m % 60:02d}:00] {refused}\n" for m in range(80))
    log.write_text(repeated + "[2026-11-28 11:30:00] production.CRITICAL: Disk full\n", encoding="utf-8")
    since = datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp()
    errors = recent_errors(app, since, limit=50)
    assert (errors.errors_total, errors.total, errors.truncated) == (81, 2, False)
    [critical, refused] = errors.errors
    assert (critical.message, critical.count, critical.first_seen) == ("Disk full", 1, None)
    assert (refused.count, refused.ts, refused.first_seen) == (
        80,
        "2026-11-28T11:19:00+00:00",
        "2026-11-28T10:00:00+00:00",
    )
    only_one = recent_errors(app, since, limit=1)
    assert (only_one.total, only_one.truncated, [e.message for e in only_one.errors]) == (2, True, ["Disk full"])


async def test_a_database_that_fails_is_one_event_and_the_logs_are_still_read(tmp_path: Path) -> None:
    app = _app(
        tmp_path,
        queue_driver="database",
        database_url=f"mysql://shop:secret@localhost/shop?unix_socket={tmp_path}/no.sock",
    )
    collector = LaravelCollector(app, state_dir=tmp_path / "state", clock=Clock(NOW))
    first = await collector.collect()
    second = await collector.collect()
    assert [(e.kind, e.subject) for e in first.events] == [(EventKind.COLLECTOR_ERROR, "laravel:shop")]
    assert first.events[0].message.startswith("laravel app shop: database: MySQL error 2002")
    assert "secret" not in first.events[0].message
    assert second.events == []
    assert [(b.target, b.key) for b in second.blind] == [
        ("database of shop", "collectors.laravel.apps[0].database_url")
    ]
    assert _values(second.samples, "laravel_log_entries_total")[(("level", "error"),)] == 0


async def test_the_scheduler_heartbeat_age_comes_from_the_files_mtime(tmp_path: Path) -> None:
    app = _app(tmp_path, scheduler_heartbeat="storage/framework/schedule-heartbeat")
    heartbeat = app.path / "storage" / "framework" / "schedule-heartbeat"
    collector = LaravelCollector(app, state_dir=tmp_path / "state", clock=Clock(NOW))
    missing = await collector.collect()
    assert [e.message for e in missing.events] == [
        f"laravel app shop: scheduler heartbeat {heartbeat}: No such file or directory"
    ]
    heartbeat.parent.mkdir(parents=True)
    heartbeat.touch()
    os.utime(heartbeat, (NOW - 75, NOW - 75))
    present = await collector.collect()
    assert_contract(collector, present)
    assert _values(present.samples, "laravel_scheduler_heartbeat_age_seconds") == {(): 75}


def test_monolog_first_lines_are_parsed_and_other_lines_are_not() -> None:
    zone = LaravelAppConfig(name="x", path=Path("/srv/x"), queue_driver="none", timezone="Europe/Berlin").zone
    lines = (FIXTURES / "laravel.log").read_bytes().splitlines()
    entries = [entry for line in lines if (entry := parse_log_line(line, zone)) is not None]
    assert [(e.level, e.exception) for e in entries] == [
        ("info", None),
        ("warning", None),
        ("error", "App\\Exceptions\\PaymentFailed"),
        ("error", "Illuminate\\Database\\QueryException"),
        ("critical", None),
        ("error", "App\\Exceptions\\PaymentFailed"),
    ]
    assert entries[0].ts == datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp()  # 10:00 in Berlin
    assert [e.message for e in entries[:4]] == [
        "Order 1234 placed",
        "Slow checkout",
        "Card declined",
        "SQLSTATE[HY000] [2002] Connection refused (Connection: mysql, SQL: select * from `users` where `id` = 1 "
        "limit 1)",
    ]
    iso = parse_log_line(b"[2026-11-28T10:00:00.123456+01:00] app.ALERT: Queue stuck [] []", zone)
    assert iso is not None
    assert (iso.ts, iso.channel, iso.level, iso.message) == (NOW - 3600 - 300 + 0.123456, "app", "alert", "Queue stuck")


def test_config_checks_drivers_zones_and_names_and_keeps_urls_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="queue_driver database needs database_url"):
        LaravelAppConfig(name="shop", path=Path("/srv/shop"))
    with pytest.raises(ValidationError, match="queue_driver redis needs redis_url"):
        LaravelAppConfig(name="shop", path=Path("/srv/shop"), queue_driver="redis")
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        LaravelAppConfig(name="shop", path=Path("/srv/shop"), queue_driver="none", timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="must start with mysql://"):
        LaravelAppConfig.model_validate({"name": "s", "path": "/srv/s", "database_url": "postgres://x@y/z"})
    with pytest.raises(ValidationError, match="must be absolute"):
        LaravelAppConfig(name="shop", path=Path("srv/shop"), queue_driver="none")
    with pytest.raises(ValidationError, match="names must be unique; repeated: shop"):
        LaravelConfig.model_validate({"apps": [{"name": "shop", "path": "/a", "queue_driver": "none"}] * 2})
    secret_file = tmp_path / "db_url"
    secret_file.write_text("mysql://shop:hunter2@localhost/shop\n", encoding="utf-8")
    app = LaravelAppConfig.model_validate({"name": "shop", "path": "/srv/shop", "database_url_file": str(secret_file)})
    assert "hunter2" not in repr(app) and "hunter2" not in app.model_dump_json()
    assert app.database_url is not None and app.database_url.get_secret_value().endswith("@localhost/shop")
    config = LaravelConfig(apps=[app])
    assert find_app(config, "shop") is app
    with pytest.raises(NotFoundError, match="no Laravel app 'blog'; apps: shop"):
        find_app(config, "blog")
