"""`crucible-monitor status` shows a section per application collector: a real MariaDB, a real PHP-FPM pool, a Laravel
app's SQLite database in Laravel 11's schema and an access log the test writes (combined format), read by a real
`crucible-monitor serve`."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from agent_process import STARTUP_TIMEOUT, serve_agent
from services.mariadb import run_mariadb
from services.php_fpm import run_php_fpm
from supervisor_fixture import wait_until

from crucible_monitor.cli import main

SCHEMA = Path(__file__).parent / "fixtures" / "apps" / "laravel" / "schema.sqlite.sql"


def _laravel_app(root: Path) -> Path:
    """A Laravel app's folder with a SQLite database: two jobs waiting on ``default``, one failed job."""
    (root / "storage" / "logs").mkdir(parents=True)
    database = root / "database.sqlite"
    now = int(time.time())
    with sqlite3.connect(database) as connection:
        connection.executescript(SCHEMA.read_text(encoding="utf-8"))
        for _ in range(2):
            connection.execute(
                "INSERT INTO jobs (queue, payload, attempts, available_at, created_at) "
                "VALUES ('default', '{}', 0, ?, ?)",
                (now - 10, now - 10),
            )
        connection.execute(
            "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception) "
            "VALUES ('u-1', 'database', 'default', '{}', 'RuntimeException: boom')"
        )
    connection.close()
    return database


def test_status_has_mysql_php_fpm_and_access_log_sections(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    log = tmp_path / "access.log"
    log.write_text("", encoding="utf-8")
    database = _laravel_app(tmp_path / "shop")
    with run_mariadb(tmp_path / "db") as db, run_php_fpm(tmp_path / "fpm") as fpm:
        extra = (
            "collectors:\n  services:\n    supervisor:\n      enabled: false\n"
            f"  mysql:\n    enabled: true\n    interval: 1s\n    unix_socket: {db.socket}\n    user: root\n"
            f"  php_fpm:\n    enabled: true\n    interval: 1s\n    pools:\n      - name: app\n"
            f"        status_url: unix://{fpm.socket}\n"
            f"  access_logs:\n    enabled: true\n    interval: 1s\n    files:\n      - path: {log}\n"
            "        format: combined\n        host: shop.test\n"
            f"  laravel:\n    enabled: true\n    interval: 1s\n    apps:\n      - name: shop\n"
            f"        path: {tmp_path / 'shop'}\n        queue_driver: database\n"
            f"        database_url: sqlite:///{database}\n"
        )
        (tmp_path / "agent").mkdir()
        with serve_agent(tmp_path / "agent", extra) as agent:

            def screen() -> str:
                """Requests keep arriving (the collector reads what is appended after it opened the file)."""
                stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
                with log.open("a", encoding="utf-8") as out:
                    for status in (200, 200, 503):
                        out.write(f'10.0.0.1 - - [{stamp}] "GET /orders HTTP/1.1" {status} 512 "-" "test"\n')
                assert main(["status", "--config", str(agent.config)]) == 0
                return capsys.readouterr().out

            shown = [""]

            def sections() -> bool:
                shown[0] = screen()
                return all(map(shown[0].__contains__, ("MySQL", "PHP-FPM", "Laravel", "Access logs"))) and _cell(
                    shown[0], "shop.test", 3
                ) not in (None, "-")

            wait_until(sections, STARTUP_TIMEOUT, "the application sections with a 5xx rate")
    out = shown[0]
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    connections = next(line for line in lines if "Connections" in line)
    assert " / " in connections and "%" in connections, "open connections against max_connections"
    assert _cell(out, "app", 2) not in (None, "-"), "the pool's active processes"
    assert (_cell(out, "shop", 2), _cell(out, "shop", 3)) == ("2", "1"), "ready and failed jobs"
    requests, errors = float(_cell(out, "shop.test", 2) or 0), float(_cell(out, "shop.test", 3) or 0)
    assert requests > errors > 0, "requests/s and 5xx/s of the vhost"


def _cell(out: str, key: str, column: int) -> str | None:
    """The ``column``-th cell (1 = the key) of the table row starting with ``key``."""
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > column and cells[1] == key:
            return cells[column]
    return None
