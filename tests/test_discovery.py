"""Config discovery (``--config``, ``CRUCIBLE_MONITOR_CONFIG``, the search path, the defaults), ``serve --listen``,
and a taken port: each against a real ``crucible-monitor serve`` process where a process is what is promised."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import httpx
import pytest
from agent_process import STARTUP_TIMEOUT, serve_agent, serve_command
from supervisor_fixture import wait_until

from crucible_monitor.cli import main
from crucible_monitor.configfile import CONFIG_ENV, SEARCH_PATH, SEARCH_PATH_ENV, discover

_NO_SUPERVISOR = "collectors:\n  services:\n    supervisor:\n      url: unix://{tmp}/absent.sock\n"


def test_discovery_order(tmp_path: Path) -> None:
    first, second = tmp_path / "etc-crucible-monitor.yaml", tmp_path / "etc-crucible.yaml"
    search = {SEARCH_PATH_ENV: f"{first}{os.pathsep}{second}"}
    assert discover(None, search) == (None, "built-in defaults")
    second.touch()
    assert discover(None, search) == (second, "the search path")
    first.touch()
    assert discover(None, search) == (first, "the search path")
    assert discover(None, {**search, CONFIG_ENV: "/from/env.yaml"}) == (Path("/from/env.yaml"), CONFIG_ENV)
    assert discover("/explicit.yaml", {**search, CONFIG_ENV: "/from/env.yaml"}) == (Path("/explicit.yaml"), "--config")
    assert discover(None, {SEARCH_PATH_ENV: ""}) == (None, "built-in defaults")


def test_the_default_search_path_is_ours_then_the_roadmaps() -> None:
    assert [str(path) for path in SEARCH_PATH] == ["/etc/crucible-monitor/monitor.yaml", "/etc/crucible/monitor.yaml"]


def test_a_missing_file_named_by_the_environment_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path / "absent.yaml"))
    assert main(["token"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'absent.yaml'}: cannot read config" in err and CONFIG_ENV in err


def test_check_config_reads_the_discovered_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = tmp_path / "monitor.yaml"
    found.write_text("agent:\n  listen_addr: 127.0.0.1:9191\n", encoding="utf-8")
    monkeypatch.setenv(SEARCH_PATH_ENV, str(found))
    assert main(["check-config"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{found} is valid" in out and "127.0.0.1:9191" in out


def test_a_bad_listen_flag_names_the_flag_and_the_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--listen", "9090"]) == 2
    assert "--listen: invalid listen address '9090': use HOST:PORT" in capsys.readouterr().err


def test_serve_on_a_taken_port_exits_naming_the_address_and_what_to_change(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "monitor.yaml"
        config.write_text(
            f"agent:\n  listen_addr: 127.0.0.1:{port}\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8"
        )
        result = subprocess.run(
            serve_command("--config", str(config)), capture_output=True, text=True, timeout=STARTUP_TIMEOUT
        )
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert f"--listen HOST:PORT or agent.listen_addr in {config}" in result.stderr
    assert "serving" not in result.stderr and "Traceback" not in result.stderr


def test_serve_listen_overrides_the_config_and_clients_take_it_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve_agent(tmp_path, _NO_SUPERVISOR.format(tmp=tmp_path), listen_flag=True) as served:
        assert "listen_addr" not in served.config.read_text(encoding="utf-8")
        serving = f"127.0.0.1:{served.port}"
        _wait_for_system(served.base_url, served.token())
        assert main(["status", "--config", str(served.config), "--listen", serving]) == 0
        assert "Memory" in capsys.readouterr().out
        assert main(["query", "memory_used_bytes", "--config", str(served.config), "--listen", serving]) == 0
        assert "memory_used_bytes" in capsys.readouterr().out


def test_serve_and_status_find_the_config_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with serve_agent(tmp_path, _NO_SUPERVISOR.format(tmp=tmp_path), config_from_env=True) as served:
        _wait_for_system(served.base_url, served.token())
        monkeypatch.setenv(CONFIG_ENV, str(served.config))
        assert main(["status"]) == 0
        assert "Memory" in capsys.readouterr().out
        assert main(["token"]) == 0
        assert capsys.readouterr().out.strip() == served.token()


def _wait_for_system(base_url: str, token: str) -> None:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=5) as client:

        def ready() -> bool:
            try:
                return client.get("/api/v1/metrics/system").json()["memory"]["total_bytes"] is not None
            except httpx.TransportError:
                return False

        wait_until(ready, STARTUP_TIMEOUT, "system metrics")
