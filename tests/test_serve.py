"""End to end: `crucible-monitor serve` as a real process, the CLI against it, and SIGTERM flushing to Parquet."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from agent_process import STARTUP_TIMEOUT, ServedAgent, serve_agent
from supervisor_fixture import free_port, wait_until

from crucible_monitor.cli import main


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedAgent]:
    supervisor = "collectors:\n  services:\n    supervisor:\n      enabled: false\n"
    with serve_agent(tmp_path, supervisor) as agent:
        yield agent


def test_serve_answers_with_real_data_and_sigterm_flushes_to_parquet(served: ServedAgent) -> None:
    token = served.token()
    assert oct((served.data_dir / "api_token").stat().st_mode & 0o777) == "0o600"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=served.base_url, headers=headers, timeout=5) as client:
        wait_until(lambda: _ok(client, "/api/v1/health"), STARTUP_TIMEOUT, "a healthy agent")
        assert httpx.get(f"{served.base_url}/api/v1/metrics/system").status_code == 401
        wait_until(
            lambda: client.get("/api/v1/metrics/system").json()["cpu"]["usage_ratio"] is not None,
            STARTUP_TIMEOUT,
            "CPU ratios (two collections)",
        )
        system = client.get("/api/v1/metrics/system").json()
        assert system["memory"]["total_bytes"] > 0
        assert "crucible_memory_total_bytes" in client.get("/metrics").text
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0
    raw = list((served.data_dir / "metrics" / "raw").rglob("*.parquet"))
    assert raw, "SIGTERM should flush the WAL to Parquet"
    wal = served.data_dir / "metrics" / "wal"
    assert sum(p.stat().st_size for p in wal.glob("*.wal")) == 0


def test_cli_status_and_query_read_a_running_agent(served: ServedAgent, capsys: pytest.CaptureFixture[str]) -> None:
    with httpx.Client(base_url=served.base_url, headers={"Authorization": f"Bearer {served.token()}"}) as client:
        wait_until(
            lambda: client.get("/api/v1/metrics/system").json()["cpu"]["usage_ratio"] is not None,
            STARTUP_TIMEOUT,
            "CPU ratios",
        )
    assert main(["status", "--config", str(served.config)]) == 0
    out = capsys.readouterr().out
    assert "System" in out and "Memory" in out and "Disk /" in out
    assert main(["query", "memory_used_bytes", "--since", "10m", "--config", str(served.config)]) == 0
    assert "memory_used_bytes" in capsys.readouterr().out
    assert main(["query", "memory_used_bytes", "--format", "json", "--config", str(served.config)]) == 0
    assert '"kind": "gauge"' in capsys.readouterr().out
    assert main(["query", "no_such_metric", "--config", str(served.config)]) == 3
    assert "unknown metric or group 'no_such_metric'" in capsys.readouterr().err


def test_cli_says_clearly_when_no_agent_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text(f"agent:\n  listen_addr: 127.0.0.1:{free_port()}\n  data_dir: {tmp_path}\n", encoding="utf-8")
    assert main(["status", "--config", str(config)]) == 3
    assert "no agent answers at http://127.0.0.1:" in capsys.readouterr().err


def _ok(client: httpx.Client, path: str) -> bool:
    try:
        return client.get(path).status_code == 200
    except httpx.TransportError:
        return False
