"""`crucible-monitor status` and `query` against a real `crucible-monitor serve` watching a real supervisord, at 80
columns: the headline first, middle-truncated names, sparklines that keep their newest point, groups in `query`."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from agent_process import STARTUP_TIMEOUT, ServedAgent, serve_agent
from supervisor_fixture import free_port, run_supervisord, wait_until

from crucible_monitor.cli import main
from crucible_monitor.cli_status import fit_middle, sparkline

PROGRAM = "laravel-queue-worker-emails-high-priority"


def test_fit_middle_keeps_both_ends() -> None:
    assert fit_middle(PROGRAM, 16) == "laravel-…riority"
    assert len(fit_middle(PROGRAM, 16)) == 16
    assert fit_middle("short", 16) == "short"


def test_a_narrow_sparkline_drops_the_oldest_points_and_keeps_the_newest() -> None:
    values = [0.0] * 50 + [10.0]
    assert sparkline(values, 8) == "▁▁▁▁▁▁▁█"
    assert sparkline([1.0, 2.0], 8) == "▁█"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAgent]:
    tmp = tmp_path_factory.mktemp("cli")
    failing = {"command": "/bin/false", "autorestart": "false", "startsecs": "0", "startretries": "0"}
    programs = {PROGRAM: {"command": "/bin/sleep 1000"}, "nightly-report": failing}
    (tmp / "sv").mkdir()
    with run_supervisord(tmp / "sv", programs) as sv:
        extra = f"collectors:\n  services:\n    supervisor:\n      url: {sv.url}\nalerts:\n  service_down: immediate\n"
        with serve_agent(tmp, extra) as agent:
            with httpx.Client(base_url=agent.base_url, headers={"Authorization": f"Bearer {agent.token()}"}) as c:
                wait_until(
                    lambda: f'"{PROGRAM}"' in c.get("/api/v1/metrics/services").text,
                    STARTUP_TIMEOUT,
                    "the supervisor program listed",
                )
                wait_until(
                    lambda: "ServiceDown" in c.get("/api/v1/alerts", params={"state": "firing"}).text,
                    STARTUP_TIMEOUT,
                    "nightly-report's ServiceDown alert firing",
                )
            yield agent


def test_status_at_80_columns_leads_with_the_headline_and_alerts_and_fits(
    served: ServedAgent, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    headers = {"Authorization": f"Bearer {served.token()}"}
    summary = httpx.get(f"{served.base_url}/api/v1/status", headers=headers).json()
    assert main(["status", "--config", str(served.config)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert summary["status"].upper() in lines[0], "the severity comes first"
    assert " ".join(out.split()).find(summary["headline"].split(";")[0]) >= 0, "the headline is printed"
    assert max(len(line) for line in lines) <= 80, [line for line in lines if len(line) > 80]
    assert PROGRAM not in out, "the long program name is cut to fit"
    row = next(line for line in lines if "laravel" in line)
    assert "…" in row and "-priority" in row, "cut in the middle: both ends stay"
    assert out.index("Services") > out.index("System") > out.index("Firing alerts") > out.index(lines[0])
    alerts = out[out.index("Firing alerts") : out.index("System")]
    alert = next(line for line in alerts.splitlines() if "ServiceDown" in line)
    assert "critical" in alert and "nightly-report" in alert, "severity, name and the service label"


def test_query_a_group_lists_its_metrics_and_the_sparkline_ends_with_the_newest_point(
    served: ServedAgent, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    config = ["--config", str(served.config)]
    assert main(["query", "memory", "--format", "json", *config]) == 0
    names = [r["metric"] for r in json.loads(capsys.readouterr().out)["reports"]]
    assert "memory_used_bytes" in names and all(n.startswith("memory_") for n in names) and len(names) > 3
    # more points than an 80-column trend can show: one per second for 40 s
    window = ["memory_used_bytes", "--step", "1s", "--start", str(time.time() - 3600)]

    end = [""]

    def points() -> list[float]:
        end[0] = str(time.time())
        assert main(["query", *window, "--end", end[0], "--format", "json", *config]) == 0
        report = json.loads(capsys.readouterr().out)["reports"][0]
        return [v for _, v in report["series"][0]["points"]] if report["series"] else []

    wait_until(lambda: len(points()) >= 40, 90, "40 points of memory_used_bytes")
    values = points()
    assert main(["query", *window, "--end", end[0], *config]) == 0
    out = capsys.readouterr().out
    trend = next(word for line in out.splitlines() for word in line.split() if set(word) <= set("▁▂▃▄▅▆▇█"))
    assert max(len(line) for line in out.splitlines()) <= 80
    assert len(trend) < len(values), "narrower than the points: the oldest ones go"
    assert trend == sparkline(values, len(trend)), "the newest points are the ones shown"


def test_status_with_no_agent_says_how_to_start_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    config = tmp_path / "monitor.yaml"
    config.write_text(f"agent:\n  listen_addr: 127.0.0.1:{port}\n  data_dir: {tmp_path}\n", encoding="utf-8")
    assert main(["status", "--config", str(config)]) == 3
    err = " ".join(capsys.readouterr().err.split())
    assert f"no agent answers at http://127.0.0.1:{port}" in err
    assert f"crucible-monitor serve --listen 127.0.0.1:{port}" in err


def test_status_watch_redraws_in_place_until_ctrl_c(served: ServedAgent) -> None:
    leader, follower = pty.openpty()  # a terminal, so that rich redraws in place
    command = [sys.executable, "-m", "crucible_monitor.cli", "status", "--watch", "0.2", "--config", str(served.config)]
    env = {**os.environ, "COLUMNS": "80", "LINES": "200", "TERM": "xterm"}
    process = subprocess.Popen(command, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    output = b""
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while output.count(b"Services") < 3 and time.monotonic() < deadline:
            if select.select([leader], [], [], 1.0)[0]:
                output += os.read(leader, 65536)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=STARTUP_TIMEOUT) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    assert output.count(b"Services") >= 3, "three screens drawn"
    assert b"\x1b[" in output and b"\x1b[2K" in output, "redrawn in place: cursor moved up, lines erased"
