"""tail_log on real files: a link planted where a configured log should be is refused, and so is a FIFO."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crucible_monitor.config import SupervisorConfig
from crucible_monitor.errors import CollectorError
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
