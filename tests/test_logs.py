"""tail_log on real files: a link planted where a configured log should be is refused, and so is a FIFO; a glob and
a Laravel app's logs (``laravel:<app>``) read their newest regular file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crucible_monitor.config import LaravelAppConfig, SupervisorConfig
from crucible_monitor.errors import CollectorError, NotFoundError
from crucible_monitor.logs import tail_log

SECRET = "agent-api-token-do-not-leak"


def _tail(path: Path) -> list[str]:
    result = tail_log("app", lines=10, contains=None, services={}, files={"app": path}, supervisor=SupervisorConfig())
    return result.lines


def test_a_configured_log_file_is_tailed(tmp_path: Path) -> None:
    log = tmp_path / "laravel.log"
    log.write_text("first\n[2026-12-02] production.ERROR: boom\n", encoding="utf-8")
    assert _tail(log) == ["first", "[2026-12-02] production.ERROR: boom"]


def test_a_symlink_in_place_of_the_log_is_refused_and_its_target_is_not_read(tmp_path: Path) -> None:
    token = tmp_path / "api_token"
    token.write_text(SECRET + "\n", encoding="utf-8")
    logs = tmp_path / "storage" / "logs"
    logs.mkdir(parents=True)
    (logs / "laravel.log").symlink_to(token)  # what a web user who can write storage/logs could plant
    with pytest.raises(CollectorError, match="symbolic link") as refused:
        _tail(logs / "laravel.log")
    assert SECRET not in str(refused.value)


def test_a_fifo_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "laravel.log"
    os.mkfifo(fifo)
    with pytest.raises(CollectorError, match="not a regular file"):
        _tail(fifo)


def _daily(root: Path) -> Path:
    """A Laravel app's daily channel: two days of logs, the older one modified first."""
    logs = root / "storage" / "logs"
    logs.mkdir(parents=True)
    (logs / "laravel-2026-12-01.log").write_text("[2026-12-01] production.INFO: yesterday\n", encoding="utf-8")
    (logs / "laravel-2026-12-02.log").write_text("[2026-12-02] production.ERROR: today\n", encoding="utf-8")
    os.utime(logs / "laravel-2026-12-01.log", (1_700_000_000, 1_700_000_000))
    os.utime(logs / "laravel-2026-12-02.log", (1_700_086_400, 1_700_086_400))
    return logs


def test_a_glob_in_logs_files_reads_the_newest_matching_file(tmp_path: Path) -> None:
    logs = _daily(tmp_path)
    assert _tail(logs / "laravel-*.log") == ["[2026-12-02] production.ERROR: today"]
    os.utime(logs / "laravel-2026-12-01.log", (1_700_172_800, 1_700_172_800))  # by mtime, not by name
    assert _tail(logs / "laravel-*.log") == ["[2026-12-01] production.INFO: yesterday"]


def test_a_glob_skips_a_newer_symlink_and_says_when_nothing_matches(tmp_path: Path) -> None:
    logs = _daily(tmp_path)
    token = tmp_path / "api_token"
    token.write_text(SECRET + "\n", encoding="utf-8")
    (logs / "laravel-2026-12-03.log").symlink_to(token)  # newest by name and by mtime, but a link
    assert _tail(logs / "laravel-*.log") == ["[2026-12-02] production.ERROR: today"]
    with pytest.raises(CollectorError, match="no regular file matches .*nothing-\\*.log"):
        _tail(logs / "nothing-*.log")


def _laravel(source: str, app: LaravelAppConfig) -> list[str]:
    apps = {app.name: app.log_patterns()}
    result = tail_log(source, lines=10, contains=None, services={}, files={}, supervisor=SupervisorConfig(), apps=apps)
    return result.lines


def test_a_laravel_apps_daily_channel_is_tailed_as_laravel_app(tmp_path: Path) -> None:
    _daily(tmp_path / "shop")
    app = LaravelAppConfig(name="shop", path=tmp_path / "shop", queue_driver="none")
    assert _laravel("laravel:shop", app) == ["[2026-12-02] production.ERROR: today"]
    with pytest.raises(NotFoundError, match=r"unknown log source 'laravel'; valid: laravel:shop$"):
        _laravel("laravel", app)
