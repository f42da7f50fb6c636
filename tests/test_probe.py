"""``check-config --probe`` against the real things: a MariaDB (wrong password, then the right one), supervisord
(a socket path where none is, then its own), php-fpm (a pool on a socket that refuses, one on the real pool), an
access log (missing, then present), HTTP checks (a host that cannot resolve, a loopback server) and ``logs.files``.

Each run goes through the CLI's ``main`` with a config file, as an operator types it; the table is read at a wide
terminal so each row is one line. System and systemd collectors are off: the host's own state does not matter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from loopback_servers import Reply, serve_http
from services import refusing_socket, short_directory
from services.mariadb import run_mariadb
from services.php_fpm import run_php_fpm
from services.redis_server import run_redis
from supervisor_fixture import run_supervisord

from crucible_monitor.cli import main
from crucible_monitor.probe import fix_for

PASSWORD = "right-Pa55word"
WRONG = "wrong-Pa55word"


def _write(tmp_path: Path, name: str, collectors: dict[str, Any], logs: dict[str, str]) -> Path:
    config = {
        "agent": {"data_dir": str(tmp_path / "data")},
        "collectors": {"system": {"enabled": False}, **collectors},
        "logs": {"files": logs},
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _probe(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str], str]:
    """Run ``check-config PATH --probe``: its exit status, the table's line per config key, all the output."""
    code = main(["check-config", str(path), "--probe"])
    out = capsys.readouterr().out
    rows: dict[str, str] = {}
    key = ""
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) < 4:
            continue
        if cells[2].startswith(("collectors.", "logs.")):
            key = cells[2]
            rows[key] = line
        elif key and not cells[2]:  # the fix, on the row's second line
            rows[key] += line
    return code, rows, out


def _row(rows: dict[str, str], key: str, result: str, *words: str) -> None:
    assert key in rows, sorted(rows)
    cells = [cell.strip() for cell in rows[key].split("│")]
    assert cells[3] == result, rows[key]
    for word in words:
        assert word in rows[key], rows[key]


def test_probe_names_each_failed_target_with_its_key_and_fix_and_passes_when_all_are_right(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    access_log = tmp_path / "access.log"
    app_log = tmp_path / "app.log"
    app_log.write_text("started\n", encoding="utf-8")
    (tmp_path / "sv").mkdir()
    with (
        run_mariadb(tmp_path / "db") as db,
        run_supervisord(tmp_path / "sv", {"sleeper": {"command": "/bin/sleep 1000"}}) as sv,
        run_php_fpm(tmp_path / "fpm") as fpm,
        refusing_socket() as refusing,
        short_directory() as nowhere,
        serve_http() as web,
        run_redis(tmp_path / "redis") as cache,
    ):
        web.script("/health", Reply(200, b"ok"))
        db.execute("CREATE USER 'crucible'@'127.0.0.1' IDENTIFIED BY %s", (PASSWORD,))
        db.execute("CREATE DATABASE shop")
        db.execute("CREATE TABLE shop.failed_jobs (id INT)")
        db.execute("GRANT SELECT ON shop.* TO 'crucible'@'127.0.0.1'")
        db.execute("GRANT SELECT ON performance_schema.* TO 'crucible'@'127.0.0.1'")  # the apps' query time
        for name in ("shop", "blog"):
            (tmp_path / name / "storage" / "logs").mkdir(parents=True)

        def app(name: str, password: str, redis_url: str) -> dict[str, Any]:
            database = f"mysql://crucible:{password}@127.0.0.1:{db.port}/shop"
            path = str(tmp_path / name)
            return {
                "name": name,
                "path": path,
                "queue_driver": "none",
                "database_url": database,
                "redis_url": redis_url,
            }

        mysql = {"enabled": True, "host": "127.0.0.1", "port": db.port, "user": "crucible"}
        checks = [{"name": "site", "url": web.url("/health")}, {"name": "gone", "url": "https://no-such-host.invalid/"}]
        wrong = _write(
            tmp_path,
            "wrong.yaml",
            {
                "mysql": {**mysql, "password": WRONG},
                "services": {"systemd": {"enabled": False}, "supervisor": {"url": f"unix://{nowhere / 'sv.sock'}"}},
                "php_fpm": {
                    "pools": [
                        {"name": "closed", "status_url": f"unix://{refusing}"},
                        {"name": "www", "status_url": f"unix://{fpm.socket}"},
                    ]
                },
                "access_logs": {"files": [{"path": str(access_log)}]},
                "http_checks": checks,
                "laravel": {
                    "apps": [app("shop", WRONG, cache.url), app("blog", PASSWORD, f"unix://{nowhere / 'redis.sock'}")]
                },
            },
            {"app": str(app_log), "old": str(tmp_path / "old.log")},
        )
        code, rows, out = _probe(wrong, capsys)
        assert code == 1, out
        assert WRONG not in out and PASSWORD not in out
        _row(rows, "collectors.mysql.password", "failed", "Access denied", "check the user and password")
        _row(rows, "collectors.services.supervisor.url", "failed", "does not exist", "is the service running")
        _row(rows, "collectors.php_fpm.pools[0].status_url", "failed", "refused", "is the service running")
        _row(rows, "collectors.php_fpm.pools[1]", "ok", "pool www")
        _row(rows, "collectors.access_logs.files[0].path", "failed", str(access_log), "correct the path")
        _row(rows, "collectors.http_checks[0].url", "ok")
        _row(rows, "collectors.http_checks[1].url", "failed", "no-such-host.invalid", "DNS")
        _row(rows, "logs.files.app", "ok")
        _row(rows, "logs.files.old", "failed", "No such file", "correct the path")
        _row(rows, "collectors.laravel.apps[0].logs", "ok")
        _row(rows, "collectors.laravel.apps[0].database_url", "failed", "Access denied", "user and password")
        _row(rows, "collectors.laravel.apps[0].redis_url", "ok")
        _row(rows, "collectors.laravel.apps[1].database_url", "ok", "mysql://crucible:**********@")
        _row(rows, "collectors.laravel.apps[1].redis_url", "failed", "No such file", "is the service running")
        assert "8 of 15 failed" in out
        assert web.count("/health") == 0  # resolved and connected to, never requested

        access_log.write_text("", encoding="utf-8")
        right = _write(
            tmp_path,
            "right.yaml",
            {
                "mysql": {**mysql, "password": PASSWORD},
                "services": {"systemd": {"enabled": False}, "supervisor": {"url": sv.url}},
                "php_fpm": {"pools": [{"name": "www", "status_url": f"unix://{fpm.socket}"}]},
                "access_logs": {"files": [{"path": str(access_log)}]},
                "http_checks": checks[:1],
                "laravel": {"apps": [app("shop", PASSWORD, cache.url)]},
            },
            {"app": str(app_log)},
        )
        code, rows, out = _probe(right, capsys)
        assert code == 0, out
        assert set(rows) == {
            "collectors.mysql",
            "collectors.services.supervisor.url",
            "collectors.php_fpm.pools[0]",
            "collectors.access_logs.files[0].path",
            "collectors.http_checks[0].url",
            "logs.files.app",
            "collectors.laravel.apps[0].logs",
            "collectors.laravel.apps[0].database_url",
            "collectors.laravel.apps[0].redis_url",
        }
        assert all("│ ok" in line for line in rows.values()), out
        assert "0 of 9 failed" in out and PASSWORD not in out


def test_a_password_in_a_url_is_never_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    with refusing_socket() as refusing:
        status_url = f"unix://{refusing}"
        collectors = {
            "services": {
                "systemd": {"enabled": False},
                "supervisor": {"url": f"unix://{refusing}.missing", "username": "monitor", "password": PASSWORD},
            },
            "php_fpm": {"pools": [{"name": "app", "status_url": status_url}]},
            "http_checks": [
                {
                    "name": "api",
                    "url": f"http://monitor:{PASSWORD}@127.0.0.1:1/health",
                    "headers": {"Authorization": f"Bearer {PASSWORD}"},
                }
            ],
        }
        code, rows, out = _probe(_write(tmp_path, "secret.yaml", collectors, {}), capsys)
    assert code == 1
    assert PASSWORD not in out
    _row(rows, "collectors.http_checks[0].url", "failed", "monitor:**********@", "refused")
    _row(rows, "collectors.services.supervisor.url", "failed", "does not exist")
    _row(rows, "collectors.php_fpm.pools[0].status_url", "failed", "refused")


@pytest.mark.parametrize(
    ("error", "advice"),
    [
        ("cannot query the server: MySQL error 1045: Access denied for user", "user and password"),
        ("cannot read /var/log/x.log: Permission denied", "needs read access to /var/log/x.log"),
        ("pool www: [Errno 111] Connection refused", "is the service running"),
        ("no file /var/log/caddy/access.log", "correct the path"),
        ("[Errno -2] Name or service not known", "DNS"),
    ],
)
def test_common_errors_map_to_advice(error: str, advice: str) -> None:
    assert advice in fix_for("collectors.some.key", error)
