"""Restarting systemd units: the exact argument list, run without a shell, audited.

systemd is not PID 1 on these machines, so `systemctl` cannot restart anything here: a stand-in `systemctl` (and
`sudo`) early on PATH records the arguments it was started with. Supervisor restarts run against a real
supervisord in tests/server/test_mcp.py.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from crucible_monitor.actions import RestartRequest, restart_service
from crucible_monitor.config import Config
from crucible_monitor.errors import ActionRefused
from crucible_monitor.schemas import RestartResult, ServiceStatus
from crucible_monitor.storage.state import StateDB

pytestmark = pytest.mark.anyio

NOW = 1_764_300_000.0
CADDY = ServiceStatus(
    name="caddy", manager="systemd", category="web", up=True, state="active", sub_state="running", last_seen=NOW
)


@pytest.fixture
def recorded_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory first on PATH with stand-ins for systemctl and sudo that append their argv to calls.txt."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("systemctl", "sudo"):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\necho "{name} $*" >> {tmp_path}/calls.txt\n', encoding="utf-8")
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    yield tmp_path / "calls.txt"


def _config(**actions: object) -> Config:
    return Config.model_validate({"actions": {"restart_allowlist": ["caddy"], **actions}})


async def _restart(config: Config, state: StateDB, *, reason: str = "502s") -> RestartResult:
    async def refresh() -> dict[str, ServiceStatus]:
        return {"caddy": CADDY.model_copy(update={"since": NOW})}

    return await restart_service(
        RestartRequest(service="caddy", reason=reason, actor="test", confirmed=True),
        config=config,
        statuses={"caddy": CADDY},
        state=state,
        refresh=refresh,
        now=NOW,
    )


@pytest.mark.parametrize(
    ("privilege", "expected"),
    [
        ("direct", "systemctl restart --no-ask-password caddy.service"),
        ("sudo", "sudo -n systemctl restart --no-ask-password caddy.service"),
    ],
)
async def test_a_systemd_restart_runs_the_exact_argument_list(
    recorded_bin: Path, tmp_path: Path, privilege: str, expected: str
) -> None:
    state = StateDB(tmp_path / "state.db", clock=lambda: NOW)
    result = await _restart(_config(privilege=privilege), state)
    assert result.result == "restarted"
    assert recorded_bin.read_text(encoding="utf-8").splitlines() == [expected]
    [record] = state.audit(target="caddy")
    assert record.result == "restarted" and record.state_after is not None and record.state_after["since"] == NOW
    state.close()


async def test_a_failing_systemctl_is_reported_and_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "systemctl"
    script.write_text("#!/bin/sh\necho 'Failed to restart caddy.service: Access denied' >&2\nexit 4\n", "utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    state = StateDB(tmp_path / "state.db", clock=lambda: NOW)
    result = await _restart(_config(), state)
    assert result.result == "failed"
    assert "exit status 4: Failed to restart caddy.service: Access denied" in result.message
    assert [r.result for r in state.audit(target="caddy")] == ["failed"]
    state.close()


async def test_the_back_off_doubles_after_each_restart(recorded_bin: Path, tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db", clock=lambda: NOW)
    config = _config(restart_backoff="1m", restart_budget=5)
    await _restart(config, state)
    with pytest.raises(ActionRefused, match="back-off: caddy was restarted"):
        await _restart(config, state)
    assert [r.result for r in state.audit(target="caddy")] == ["refused", "restarted"]
    state.close()


async def test_a_restart_without_a_reason_is_refused(recorded_bin: Path, tmp_path: Path) -> None:
    state = StateDB(tmp_path / "state.db", clock=lambda: NOW)
    with pytest.raises(ActionRefused, match="give a reason"):
        await _restart(_config(), state, reason="  ")
    assert not recorded_bin.exists()
    state.close()
