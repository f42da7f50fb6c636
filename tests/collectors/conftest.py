"""Fixtures of the collector tests: one real MariaDB and one real Redis per test module that asks for them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from services.mariadb import MariaDB, run_mariadb
from services.redis_server import RedisServer, run_redis


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    with run_mariadb(tmp_path_factory.mktemp("mariadb")) as server:
        yield server


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with run_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server
