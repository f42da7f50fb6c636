"""A Laravel app's cache, sessions and query time, against a real Redis and a real MariaDB (performance_schema on)."""

from __future__ import annotations

import functools
import itertools
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import assert_contract, values
from manual_clock import Clock
from pydantic import ValidationError
from services.mariadb import MariaDB, run_mariadb
from services.redis_server import RedisServer

from crucible_monitor.collectors import laravel_usage
from crucible_monitor.collectors.laravel import LaravelAppConfig, LaravelCollector
from crucible_monitor.models import Sample

pytestmark = pytest.mark.anyio

NOW = 1_795_000_000.0
_databases = itertools.count()
_values = functools.partial(values, without=("app",))

# Laravel's sessions migration (database/migrations/0001_01_01_000000_create_users_table.php), as MySQL creates it.
_SESSIONS = """CREATE TABLE sessions (
    id VARCHAR(255) NOT NULL PRIMARY KEY,
    user_id BIGINT UNSIGNED NULL,
    ip_address VARCHAR(45) NULL,
    user_agent TEXT NULL,
    payload LONGTEXT NOT NULL,
    last_activity INT NOT NULL,
    INDEX sessions_user_id_index (user_id),
    INDEX sessions_last_activity_index (last_activity)
)"""
_FAILED_JOBS = "CREATE TABLE failed_jobs (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, uuid VARCHAR(255))"


def _schema(mariadb: MariaDB) -> str:
    """A fresh database with Laravel's sessions and failed_jobs tables."""
    name = f"shop{next(_databases)}"
    mariadb.execute(f"CREATE DATABASE {name}")
    mariadb.execute(_SESSIONS, database=name)
    mariadb.execute(_FAILED_JOBS, database=name)
    return name


def _url(mariadb: MariaDB, schema: str, user: str = "root") -> str:
    return f"mysql://{user}@localhost/{schema}?unix_socket={mariadb.socket}"


def _app(tmp_path: Path, **settings: Any) -> LaravelAppConfig:
    root = tmp_path / "shop"
    (root / "storage" / "logs").mkdir(parents=True, exist_ok=True)
    return LaravelAppConfig.model_validate({"name": "shop", "path": root, "queue_driver": "none", **settings})


async def _collect(app: LaravelAppConfig, tmp_path: Path, cycles: int = 1) -> list[list[Sample]]:
    collector = LaravelCollector(app, state_dir=tmp_path / "state", clock=Clock(NOW))
    readings = []
    try:
        for _ in range(cycles):
            collection = await collector.collect()
            assert_contract(collector, collection)
            assert collection.events == []
            readings.append(collection.samples)
    finally:
        await collector.aclose()
    return readings


def _stats(server: RedisServer) -> tuple[int, int]:
    with server.client() as client:
        stats = client.info("stats")
    return int(stats["keyspace_hits"]), int(stats["keyspace_misses"])


def _session_id() -> str:
    return secrets.token_hex(20)  # 40 characters, like Str::random(40)


async def test_cache_hits_and_misses_move_after_gets_and_keys_are_counted_under_the_cache_prefix(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with redis.Redis(unix_socket_path=str(redis_server.socket), db=1) as cache:  # REDIS_CACHE_DB, Laravel's 1
        for key in ("catalog", "prices"):
            cache.set(f"laravel_database_shop_cache_{key}", "v")
        cache.set("laravel_database_blog_cache_catalog", "another app's")
        hits, misses = _stats(redis_server)
        for key in ("catalog", "prices", "catalog"):
            assert cache.get(f"laravel_database_shop_cache_{key}") == b"v"
        for key in ("absent", "gone"):
            assert cache.get(f"laravel_database_shop_cache_{key}") is None
    with redis_server.client() as default:  # the default connection's database: not the cache's
        default.set("laravel_database_shop_cache_elsewhere", "v")
    app = _app(tmp_path, cache_store="redis", redis_url=redis_server.url)
    (samples,) = await _collect(app, tmp_path)
    found = {name: _values(samples, name)[()] for name in ("laravel_cache_hits_total", "laravel_cache_misses_total")}
    assert found == {"laravel_cache_hits_total": hits + 3, "laravel_cache_misses_total": misses + 2}
    total = found["laravel_cache_hits_total"] + found["laravel_cache_misses_total"]
    ratio = _values(samples, "laravel_cache_hit_ratio")[()]
    assert ratio == pytest.approx(found["laravel_cache_hits_total"] / total, abs=1e-6)
    assert _values(samples, "laravel_cache_keys") == {(): 2}


async def test_a_cache_scan_that_reaches_its_bound_reports_a_lower_bound_and_says_so(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(laravel_usage, "MAX_SCAN_CALLS", 1)
    with redis.Redis(unix_socket_path=str(redis_server.socket), db=2) as cache:
        cache.mset({f"laravel_database_big_cache_{i}": "v" for i in range(5000)})
    app = _app(tmp_path, cache_store="redis", cache_redis_db=2, redis_url=redis_server.url, cache_prefix="big_cache_")
    collector = LaravelCollector(app, state_dir=tmp_path / "state", clock=Clock(NOW))
    try:
        collection = await collector.collect()
    finally:
        await collector.aclose()
    assert 0 < _values(collection.samples, "laravel_cache_keys")[()] < 5000
    assert [event.message for event in collection.events] == [
        "laravel app shop: cache keys: scan stopped after 1000 keys"
    ]


async def test_database_sessions_used_within_the_lifetime_are_active(mariadb: MariaDB, tmp_path: Path) -> None:
    schema = _schema(mariadb)
    now = int(NOW)
    for user, last_activity in ((7, now - 60), (7, now - 3600), (None, now - 7000), (8, now - 3 * 3600)):
        mariadb.execute(
            "INSERT INTO sessions (id, user_id, payload, last_activity) VALUES (%s, %s, '', %s)",
            (_session_id(), user, last_activity),
            database=schema,
        )
    url = _url(mariadb, schema)
    (default,) = await _collect(_app(tmp_path, session_driver="database", database_url=url), tmp_path)
    assert _values(default, "laravel_sessions_active") == {(): 3}  # 120 minutes: the 3-hour-old one has ended
    assert _values(default, "laravel_session_users_active") == {(): 1}  # user 7 twice; the guest is no user
    longer = _app(tmp_path, session_driver="database", database_url=url, session_lifetime="4h")
    (samples,) = await _collect(longer, tmp_path)
    assert _values(samples, "laravel_sessions_active") == {(): 4}
    assert _values(samples, "laravel_session_users_active") == {(): 2}


async def test_redis_sessions_are_the_session_ids_under_the_cache_prefix(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    with redis.Redis(unix_socket_path=str(redis_server.socket), db=3) as client:
        for _ in range(3):
            client.set(f"laravel_database_portal_cache_{_session_id()}", "payload", ex=7200)
        client.set(f"laravel_database_portal_cache_:{_session_id()}", "payload", ex=7200)  # older releases' colon
        client.set("laravel_database_portal_cache_catalog", "a cache entry, no session")
        client.set(f"laravel_database_blog_cache_{_session_id()}", "another app's session")
    url = f"unix://{redis_server.socket}?db=3"
    app = _app(tmp_path, session_driver="redis", redis_url=url, cache_prefix="portal_cache_")
    (samples,) = await _collect(app, tmp_path)
    assert _values(samples, "laravel_sessions_active") == {(): 4}


async def test_query_time_of_the_apps_schema_grows_with_its_statements(mariadb: MariaDB, tmp_path: Path) -> None:
    schema, other = _schema(mariadb), _schema(mariadb)
    app = _app(tmp_path, database_url=_url(mariadb, schema), query_time=True)
    collector = LaravelCollector(app, state_dir=tmp_path / "state", clock=Clock(NOW))
    try:
        before = (await collector.collect()).samples
        for _ in range(5):
            mariadb.execute("SELECT COUNT(*) FROM sessions", database=schema)
        mariadb.execute("SELECT SLEEP(0.2)", database=schema)
        for _ in range(50):
            mariadb.execute("SELECT COUNT(*) FROM sessions", database=other)  # another schema: not the app's
        after = await collector.collect()
    finally:
        await collector.aclose()
    assert_contract(collector, after)

    def reading(samples: list[Sample], name: str) -> float:
        return _values(samples, name)[()]

    grown = reading(after.samples, "laravel_db_statements_total") - reading(before, "laravel_db_statements_total")
    # The 6 statements above, and the few of the collector's own reading in between (failed jobs, the digests).
    assert 6 <= grown < 6 + 10
    seconds = reading(after.samples, "laravel_db_statement_seconds_total") - reading(
        before, "laravel_db_statement_seconds_total"
    )
    assert seconds >= 0.2  # SLEEP(0.2) ran in the app's schema
    mean = reading(after.samples, "laravel_db_statement_avg_seconds")
    assert mean == pytest.approx(
        reading(after.samples, "laravel_db_statement_seconds_total")
        / reading(after.samples, "laravel_db_statements_total")
    )


async def test_a_database_user_without_performance_schema_gets_a_grant_to_run(mariadb: MariaDB, tmp_path: Path) -> None:
    schema = _schema(mariadb)
    mariadb.execute(f"CREATE USER '{schema}'@'localhost'")
    mariadb.execute(f"GRANT ALL ON {schema}.* TO '{schema}'@'localhost'")
    app = _app(tmp_path, database_url=_url(mariadb, schema, user=schema), query_time=True)
    collector = LaravelCollector(app, state_dir=tmp_path / "state", clock=Clock(NOW))
    try:
        collection = await collector.collect()
    finally:
        await collector.aclose()
    assert _values(collection.samples, "laravel_failed_jobs") == {(): 0}  # the rest of the database is still read
    assert not _values(collection.samples, "laravel_db_statements_total")
    assert [event.message for event in collection.events] == [
        "laravel app shop: query time: the database user may not read performance_schema (GRANT SELECT ON "
        "performance_schema.* TO it, or set query_time: false)"
    ]
    assert [(spot.target, spot.key) for spot in collection.blind] == [
        ("query time of shop", "collectors.laravel.apps[0].query_time")
    ]


def test_cache_and_session_stores_need_their_urls_and_the_prefix_follows_laravels_default() -> None:
    with pytest.raises(ValidationError, match="cache_store redis needs redis_url"):
        LaravelAppConfig(name="shop", path=Path("/srv/shop"), queue_driver="none", cache_store="redis")
    with pytest.raises(ValidationError, match="session_driver redis needs redis_url"):
        LaravelAppConfig(name="shop", path=Path("/srv/shop"), queue_driver="none", session_driver="redis")
    with pytest.raises(ValidationError, match="session_driver database needs database_url"):
        LaravelAppConfig(name="shop", path=Path("/srv/shop"), queue_driver="none", session_driver="database")
    app = LaravelAppConfig(name="My-Shop", path=Path("/srv/shop"), queue_driver="none")
    assert app.cache_key_prefix == "laravel_database_my_shop_cache_"  # Str::slug(APP_NAME, '_') . '_cache_'
    assert app.session_lifetime == timedelta(minutes=120)
    with pytest.raises(ValidationError, match="less than or equal to 15"):
        LaravelAppConfig(name="shop", path=Path("/srv/shop"), queue_driver="none", cache_redis_db=16)


async def test_a_server_with_performance_schema_off_says_how_to_turn_it_on(tmp_path: Path) -> None:
    with run_mariadb(tmp_path / "mariadb", ["--performance-schema=OFF"]) as server:
        schema = _schema(server)
        app = _app(tmp_path, database_url=_url(server, schema), query_time=True)
        collector = LaravelCollector(app, state_dir=tmp_path / "state", clock=Clock(NOW))
        try:
            collection = await collector.collect()
        finally:
            await collector.aclose()
    assert not _values(collection.samples, "laravel_db_statements_total")
    assert [event.message for event in collection.events] == [
        "laravel app shop: query time: performance_schema is off (performance_schema=ON in my.cnf, then restart)"
    ]
