"""The MySQL collector and slow_queries against real MariaDB servers (a primary, and a replica of it)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_contract, values
from manual_clock import Clock
from services.mariadb import MariaDB, run_mariadb
from supervisor_fixture import wait_until

from crucible_monitor.collectors.mysql import (
    MysqlCollector,
    MysqlConfig,
    SlowQuerySource,
    normalise_statement,
    slow_queries,
)
from crucible_monitor.errors import CollectorError
from crucible_monitor.models import EventKind, Sample

pytestmark = pytest.mark.anyio

PASSWORD = "s3cret-Pa55"


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    with run_mariadb(tmp_path_factory.mktemp("primary"), ["--log-bin=mariadb-bin", "--server-id=1"]) as server:
        # The least-privilege user the module docstring documents.
        server.execute("CREATE USER 'crucible'@'localhost' IDENTIFIED BY %s", (PASSWORD,))
        server.execute("CREATE USER 'crucible'@'127.0.0.1' IDENTIFIED BY %s", (PASSWORD,))
        for host in ("localhost", "127.0.0.1"):
            server.execute(f"GRANT PROCESS, SLAVE MONITOR, SHOW VIEW ON *.* TO 'crucible'@'{host}'")
            server.execute(f"GRANT SELECT ON performance_schema.* TO 'crucible'@'{host}'")
            server.execute(f"GRANT SELECT ON mysql.slow_log TO 'crucible'@'{host}'")
        server.execute("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'repl'")
        server.execute("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'")
        yield server


def _config(server: MariaDB, **settings: Any) -> MysqlConfig:
    return MysqlConfig.model_validate(
        {"enabled": True, "unix_socket": server.socket, "user": "crucible", "password": PASSWORD, **settings}
    )


def _value(samples: list[Sample], metric: str) -> float:
    (value,) = values(samples, metric).values()
    return value


async def test_a_live_server_reports_connections_queries_and_the_buffer_pool_hit_ratio(
    primary: MariaDB, tmp_path: Path
) -> None:
    secret = tmp_path / "mysql_password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    config = MysqlConfig.model_validate(
        {"host": "127.0.0.1", "port": primary.port, "user": "crucible", "password_file": str(secret)}
    )
    collector = MysqlCollector(config, clock=Clock(1000.0))
    try:
        first = await collector.collect()
        primary.execute("CREATE DATABASE IF NOT EXISTS hits")
        primary.execute("CREATE TABLE IF NOT EXISTS hits.t (id INT PRIMARY KEY)")
        primary.execute("SELECT COUNT(*) FROM hits.t")
        second = await collector.collect()
    finally:
        await collector.aclose()
    ((max_connections,),) = primary.execute("SELECT @@max_connections")
    assert_contract(collector, first)
    assert_contract(collector, second)
    assert first.events == [] and second.events == []
    assert _value(first.samples, "mysql_up") == 1
    assert _value(first.samples, "mysql_max_connections") == max_connections
    assert _value(first.samples, "mysql_connections") >= 1
    assert _value(first.samples, "mysql_connections_used_ratio") == round(
        _value(first.samples, "mysql_connections") / max_connections, 4
    )
    assert _value(second.samples, "mysql_queries_total") > _value(first.samples, "mysql_queries_total")
    ((_, uptime_after),) = primary.execute("SHOW GLOBAL STATUS LIKE 'Uptime'")
    assert 0 <= _value(second.samples, "mysql_uptime_seconds") <= int(uptime_after)
    assert "mysql_innodb_buffer_pool_hit_ratio" not in {s.metric for s in first.samples}  # needs two cycles
    assert 0 <= _value(second.samples, "mysql_innodb_buffer_pool_hit_ratio") <= 1
    assert values(second.samples, "mysql_replica_lag_seconds") == {}  # not a replica


async def test_database_and_table_sizes_are_read_every_sizes_interval(primary: MariaDB) -> None:
    primary.execute("CREATE DATABASE IF NOT EXISTS shop")
    primary.execute("CREATE TABLE IF NOT EXISTS shop.orders (id INT PRIMARY KEY, note TEXT)")
    primary.execute("CREATE TABLE IF NOT EXISTS shop.tiny (id INT PRIMARY KEY)")
    primary.execute("CREATE DATABASE IF NOT EXISTS empty_db")
    clock = Clock(1000.0)
    collector = MysqlCollector(_config(primary, top_tables=1, sizes_interval="5m"), clock=clock)
    try:
        first = await collector.collect()
        clock.now += 10
        second = await collector.collect()
        clock.now += 300
        third = await collector.collect()
    finally:
        await collector.aclose()
    assert_contract(collector, first)
    databases = values(first.samples, "mysql_database_size_bytes")
    assert databases[(("database", "empty_db"),)] == 0
    assert databases[(("database", "shop"),)] >= 2 * 16384  # InnoDB's smallest table is one 16 KiB page
    assert len(values(first.samples, "mysql_table_size_bytes")) == 1
    assert values(second.samples, "mysql_database_size_bytes") == {}
    assert values(third.samples, "mysql_database_size_bytes").keys() == databases.keys()


async def test_an_unreachable_server_is_down_with_one_event_and_no_password_in_it(
    primary: MariaDB, tmp_path: Path
) -> None:
    gone = MysqlCollector(_config(primary, unix_socket=tmp_path / "nowhere.sock"), clock=Clock(1000.0))
    first = await gone.collect()
    second = await gone.collect()
    assert_contract(gone, first)
    assert _value(first.samples, "mysql_up") == 0
    assert [(e.kind, e.subject) for e in first.events] == [(EventKind.COLLECTOR_ERROR, "mysql")]
    assert "MySQL error 2002" in first.events[0].message
    assert second.events == []
    refused = MysqlCollector(_config(primary, password="wrong-" + PASSWORD), clock=Clock(1000.0))
    denied = await refused.collect()
    assert "MySQL error 1045: Access denied for user 'crucible'@'localhost'" in denied.events[0].message
    assert PASSWORD not in denied.events[0].message


async def test_a_defaults_file_supplies_user_password_and_socket(primary: MariaDB, tmp_path: Path) -> None:
    defaults = tmp_path / "client.cnf"
    defaults.write_text(
        f"[client]\nuser = crucible\npassword = {PASSWORD}\nsocket = {primary.socket}\n", encoding="utf-8"
    )
    collector = MysqlCollector(MysqlConfig(defaults_file=defaults), clock=Clock(1000.0))
    try:
        collection = await collector.collect()
    finally:
        await collector.aclose()
    assert _value(collection.samples, "mysql_up") == 1


async def test_slow_queries_come_from_performance_schema_digests(primary: MariaDB) -> None:
    since = time.time() - 1
    primary.execute("CREATE DATABASE IF NOT EXISTS digest")
    primary.execute("CREATE TABLE IF NOT EXISTS digest.items (id INT PRIMARY KEY, name TEXT)")
    primary.execute("INSERT IGNORE INTO digest.items VALUES (0, 'a'), (1, 'b'), (2, 'c'), (3, 'd'), (4, 'e')")
    for i in range(5):
        primary.execute(f"SELECT name FROM digest.items WHERE id = {i} AND SLEEP(0.01) = 0")
    result = slow_queries(_config(primary), since, limit=50)
    assert result.source == "performance_schema"
    (statement,) = [s for s in result.statements if "`digest` . `items`" in s.statement and "SLEEP" in s.statement]
    assert statement.calls == 5
    assert statement.total_seconds >= 0.05
    assert statement.schema_name is None
    assert statement.avg_seconds == pytest.approx(statement.total_seconds / 5, abs=1e-6)
    assert result.statements == sorted(result.statements, key=lambda s: s.total_seconds, reverse=True)
    assert result.limit == 50 and result.total >= len(result.statements) and result.truncated == (result.total > 50)
    # the test ran several statements since `since` (CREATE, INSERT, SELECT): with limit 1 the list says it is cut
    one = slow_queries(_config(primary), since, limit=1)
    assert (len(one.statements), one.limit, one.truncated) == (1, 1, True) and one.total > 1


async def test_slow_queries_come_from_the_slow_log_table_and_say_how_to_turn_it_on(primary: MariaDB) -> None:
    config = _config(primary)
    with pytest.raises(CollectorError, match="slow_query_log=ON with log_output=TABLE"):
        slow_queries(config, 0, source="slow_log")
    primary.execute("SET GLOBAL log_output = 'TABLE', GLOBAL long_query_time = 0, GLOBAL slow_query_log = ON")
    try:
        since = time.time() - 1
        for name in ("'a'", "'bb'", "'ccc'"):
            primary.execute(f"SELECT SLEEP(0.02), {name} AS label")
        result = slow_queries(config, since, source="slow_log")
    finally:
        primary.execute("SET GLOBAL slow_query_log = OFF, GLOBAL long_query_time = 10, GLOBAL log_output = 'FILE'")
    assert result.source == "slow_log"
    (statement,) = [s for s in result.statements if s.statement.startswith("SELECT SLEEP")]
    assert statement.statement == "SELECT SLEEP(?), ? AS label"
    assert statement.calls == 3
    assert statement.total_seconds >= 0.06
    assert statement.max_seconds >= 0.02
    assert result.total == len(result.statements) and not result.truncated


def test_statements_are_normalised_with_literals_and_lists_as_placeholders() -> None:
    assert normalise_statement("SELECT *  FROM t WHERE a = 'x''y' AND b IN (1, 2, 3)\n AND c = 0x1F") == (
        "SELECT * FROM t WHERE a = ? AND b IN (...) AND c = ?"
    )


@pytest.fixture(scope="module")
def replica(primary: MariaDB, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    with run_mariadb(tmp_path_factory.mktemp("replica"), ["--server-id=2"]) as server:
        server.execute(
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %s, MASTER_USER = 'repl',"
            " MASTER_PASSWORD = 'repl', MASTER_USE_GTID = slave_pos",
            (primary.port,),
        )
        server.execute("START SLAVE")
        yield server


def _replica_running(replica: MariaDB) -> bool:
    with replica.connect() as connection, connection.cursor() as cursor:
        cursor.execute("SHOW REPLICA STATUS")
        columns = [c[0] for c in cursor.description or ()]
        row = dict(zip(columns, cursor.fetchone() or (), strict=False))
    return row.get("Slave_IO_Running") == "Yes" and row.get("Seconds_Behind_Master") is not None


async def test_a_replica_reports_its_lag_and_threads(primary: MariaDB, replica: MariaDB) -> None:
    wait_until(lambda: _replica_running(replica), 30, "the replica to connect to the primary")
    ((position,),) = primary.execute("SELECT @@gtid_binlog_pos")
    ((caught_up,),) = replica.execute("SELECT MASTER_GTID_WAIT(%s, 30)", (position,))
    assert caught_up == 0  # replayed everything the primary had: the lag is 0 from now on
    config = MysqlConfig(unix_socket=replica.socket, user="root", connect_timeout=timedelta(seconds=5))
    collector = MysqlCollector(config, clock=Clock(1000.0))
    try:
        running = await collector.collect()
        replica.execute("STOP SLAVE SQL_THREAD")
        stopped = await collector.collect()
    finally:
        await collector.aclose()
        replica.execute("START SLAVE SQL_THREAD")
    assert_contract(collector, running)
    assert_contract(collector, stopped)
    channel = (("channel", ""),)
    assert values(running.samples, "mysql_replica_io_running") == {channel: 1}
    assert values(running.samples, "mysql_replica_sql_running") == {channel: 1}
    assert values(running.samples, "mysql_replica_lag_seconds") == {channel: 0}
    assert values(stopped.samples, "mysql_replica_sql_running") == {channel: 0}
    assert values(stopped.samples, "mysql_replica_lag_seconds") == {}


async def test_a_go_dsn_connects_through_the_socket_it_names(primary: MariaDB) -> None:
    config = MysqlConfig.model_validate({"enabled": True, "connection": f"crucible:{PASSWORD}@unix({primary.socket})/"})
    collector = MysqlCollector(config, clock=Clock(1000.0))
    try:
        collection = await collector.collect()
    finally:
        await collector.aclose()
    assert _value(collection.samples, "mysql_up") == 1


async def test_slow_query_threshold_leaves_out_statements_that_never_ran_that_long(primary: MariaDB) -> None:
    since = time.time() - 1
    primary.execute("SELECT SLEEP(0.3) AS threshold_slow")
    for _ in range(3):
        primary.execute("SELECT SLEEP(0.01) AS threshold_quick")
    labels = ("threshold_slow", "threshold_quick")

    def listed(config: MysqlConfig, source: SlowQuerySource) -> set[str]:
        statements = slow_queries(config, since, limit=1000, source=source).statements
        return {label for label in labels for s in statements if label in s.statement}

    assert listed(_config(primary), "performance_schema") == set(labels)
    assert listed(_config(primary, slow_query_threshold="200ms"), "performance_schema") == {"threshold_slow"}
    primary.execute("SET GLOBAL log_output = 'TABLE', GLOBAL long_query_time = 0, GLOBAL slow_query_log = ON")
    try:
        since = time.time() - 1
        primary.execute("SELECT SLEEP(0.3) AS threshold_slow")
        primary.execute("SELECT SLEEP(0.01) AS threshold_quick")
        assert listed(_config(primary), "slow_log") == set(labels)
        assert listed(_config(primary, slow_query_threshold="200ms"), "slow_log") == {"threshold_slow"}
    finally:
        primary.execute("SET GLOBAL slow_query_log = OFF, GLOBAL long_query_time = 10, GLOBAL log_output = 'FILE'")
