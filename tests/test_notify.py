"""systemd's notify protocol: a real unix datagram socket bound by the test stands in for systemd's (nothing else
listens there), for the function and for a real ``crucible-monitor serve``."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_process import STARTUP_TIMEOUT, serve_agent

from crucible_monitor.notify import notify, watchdog_interval

_NO_SUPERVISOR = "collectors:\n  services:\n    supervisor:\n      url: unix://{tmp}/absent.sock\n"


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    yield sock, path
    sock.close()


def _messages(sock: socket.socket, until: str, timeout: float) -> list[str]:
    """Datagrams received until one equals ``until`` (bounded by ``timeout``)."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while until not in seen:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            seen.append(sock.recv(4096).decode())
        except TimeoutError:
            pytest.fail(f"no {until} within {timeout}s; got {seen}")
    return seen


def test_nothing_is_sent_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert notify("READY=1") is False
    assert watchdog_interval() is None


def test_a_path_socket_receives_the_message(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert notify("READY=1") is True
    assert _messages(sock, "READY=1", 5) == ["READY=1"]


def test_an_abstract_socket_receives_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"crucible-notify-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("WATCHDOG=1") is True
        assert _messages(sock, "WATCHDOG=1", 5) == ["WATCHDOG=1"]


def test_an_unreachable_socket_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "absent.sock"))
    assert notify("READY=1") is False
    assert "cannot notify systemd" in caplog.text


def test_the_watchdog_interval_is_half_of_watchdog_usec_for_this_process(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", listener[1])
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # systemd's watchdog is for another process
    assert watchdog_interval() is None
    monkeypatch.delenv("WATCHDOG_PID")
    monkeypatch.setenv("WATCHDOG_USEC", "0")
    assert watchdog_interval() is None


def test_serve_says_ready_then_pings_the_watchdog_from_its_loop(
    tmp_path: Path, listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # a ping every 0.5 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    with serve_agent(tmp_path, _NO_SUPERVISOR.format(tmp=tmp_path)) as agent:
        first = _messages(sock, "READY=1", STARTUP_TIMEOUT)
        assert set(first) <= {"READY=1", "WATCHDOG=1"}
        again = _messages(sock, "WATCHDOG=1", STARTUP_TIMEOUT)
        again += _messages(sock, "WATCHDOG=1", STARTUP_TIMEOUT)  # it keeps pinging, not once
        assert "READY=1" not in again
        agent.process.terminate()
        assert "STOPPING=1" in _messages(sock, "STOPPING=1", STARTUP_TIMEOUT)
        assert agent.process.wait(timeout=STARTUP_TIMEOUT) == 0
