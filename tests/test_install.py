"""``crucible-monitor install`` into a temporary root (what packaging and CI do; a test never writes the host's
/etc), ``--dry-run``, a second run keeping the configs, and the missing alerting file naming its key."""

from __future__ import annotations

import configparser
import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from crucible_monitor.agent import alerting_config
from crucible_monitor.cli import main
from crucible_monitor.config import load_config
from crucible_monitor.errors import CrucibleError
from crucible_monitor.install import InstallFile, MakeDir, MakeUser, Step, plan, run_steps

REPO = Path(__file__).resolve().parent.parent
EXEC = sys.executable  # an executable that exists, so systemd-analyze can check ExecStart


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_install_under_a_root_creates_the_tree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "--root", str(tmp_path), "--exec", EXEC]) == 0
    out = capsys.readouterr().out
    etc, data = tmp_path / "etc/crucible-monitor", tmp_path / "var/lib/crucible-monitor"
    unit = tmp_path / "etc/systemd/system/crucible-monitor.service"
    assert (_mode(etc), _mode(data), _mode(etc / "monitor.yaml"), _mode(etc / "alerts.yaml"), _mode(unit)) == (
        0o750,
        0o750,
        0o640,
        0o640,
        0o644,
    )
    assert (etc / "monitor.yaml").read_text() == (REPO / "configs/monitor.yaml").read_text()
    assert (etc / "alerts.yaml").read_text() == (REPO / "configs/alerts.yaml").read_text()
    # alerts.rules_file of the installed config is the installed alerts.yaml, and both load
    config = load_config(etc / "monitor.yaml")
    assert config.alerts.rules_file == etc / "alerts.yaml"
    assert alerting_config(config).rules
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.read_string(unit.read_text())
    assert (
        dict(service["Service"]).items()
        >= {
            "type": "notify",
            "notifyaccess": "main",
            "watchdogsec": "30s",
            "restart": "on-failure",
            "user": "crucible",
            "execstart": f"{EXEC} serve --config /etc/crucible-monitor/monitor.yaml",
        }.items()
    )
    assert "useradd --system --user-group" in out and "skipped under --root" in out
    assert "systemctl daemon-reload" in out and "systemctl enable --now crucible-monitor" in out
    assert not (tmp_path / "etc/passwd").exists()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_installed_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    assert main(["install", "--root", str(tmp_path), "--exec", EXEC]) == 0
    unit = tmp_path / "etc/systemd/system/crucible-monitor.service"
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_dry_run_prints_every_step_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "--root", str(tmp_path), "--exec", EXEC, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert list(tmp_path.iterdir()) == []
    steps = [line for line in lines if line.startswith("(dry run) ")]
    assert len(steps) == len(plan(EXEC)) == 6
    for where in ("etc/crucible-monitor:", "var/lib/crucible-monitor:", "monitor.yaml:", "alerts.yaml:", ".service:"):
        assert any(where in line for line in steps), where
    assert "dry run: nothing was changed" in lines


def test_a_second_run_keeps_the_configs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "--root", str(tmp_path), "--exec", EXEC]) == 0
    edited = tmp_path / "etc/crucible-monitor/monitor.yaml"
    edited.write_text("agent:\n  listen_addr: 127.0.0.1:9191\n")
    before = _files(tmp_path)
    capsys.readouterr()
    assert main(["install", "--root", str(tmp_path), "--exec", EXEC]) == 0
    out = capsys.readouterr().out
    assert _files(tmp_path) == before
    assert f"{edited}: exists, kept" in out
    assert "alerts.yaml: exists, kept" in out and "crucible-monitor.service: up to date" in out


def test_a_real_install_needs_root(tmp_path: Path) -> None:
    with pytest.raises(CrucibleError, match="needs root: run it with sudo, or give --root DIR"):
        run_steps(plan(EXEC), root=None, dry_run=False, say=print, is_root=False)


def test_exec_must_be_an_absolute_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install", "--dry-run", "--exec", "crucible monitor"]) == 3
    assert "--exec must be an absolute path without spaces" in capsys.readouterr().err


def test_check_config_names_alerts_rules_file_when_it_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "monitor.yaml"
    config.write_text("alerts:\n  rules_file: alerts.yaml\n")
    assert main(["check-config", str(config)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{tmp_path / 'alerts.yaml'}: cannot read the alerting file named by alerts.rules_file" in err


def test_without_root_the_steps_own_what_they_create(tmp_path: Path) -> None:
    """The host install's own path (ownership, an existing user), on paths in tmp_path owned by whoever runs it."""
    me, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    place = PurePosixPath(tmp_path)
    steps: list[Step] = [
        MakeUser(me, place),
        MakeDir(place / "etc", 0o750, me, group),
        InstallFile(place / "etc/monitor.yaml", "agent: {}\n", 0o640, me, group, True, "monitor.yaml"),
    ]
    said: list[str] = []
    run_steps(steps, root=None, dry_run=False, say=said.append, is_root=True)
    assert said[0] == f"user {me}: exists, kept"
    written = tmp_path / "etc/monitor.yaml"
    assert (_mode(tmp_path / "etc"), _mode(written), written.read_text()) == (0o750, 0o640, "agent: {}\n")
    assert (written.stat().st_uid, written.stat().st_gid) == (os.getuid(), os.getgid())
    assert not list((tmp_path / "etc").glob(".*.partial"))


def test_a_built_package_carries_the_files_install_copies(tmp_path: Path) -> None:
    """What setuptools puts in a wheel (build_py, on a copy of the tree): the linked configs as real files."""
    pytest.importorskip("setuptools", reason="setuptools is not installed in this environment")
    source, built = tmp_path / "src", tmp_path / "built"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, source / name)
    for tree in ("crucible_monitor", "configs"):
        shutil.copytree(REPO / tree, source / tree, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    command = [sys.executable, "-W", "ignore", "-c", "from setuptools import setup; setup()", "-q", "build_py"]
    done = subprocess.run([*command, "-d", str(built)], cwd=source, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    shipped = built / "crucible_monitor/shipped"
    for name, origin in [
        ("monitor.yaml", "monitor.yaml"),
        ("alerts.yaml", "alerts.yaml"),
        ("crucible-monitor.service", "systemd/crucible-monitor.service"),
    ]:
        assert not (shipped / name).is_symlink()
        assert (shipped / name).read_text() == (REPO / "configs" / origin).read_text()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed here")
def test_make_install_agent_calls_install(tmp_path: Path) -> None:
    command = f"CRUCIBLE_MONITOR={sys.executable} -m crucible_monitor.cli"
    done = subprocess.run(
        ["make", "-s", "-C", str(REPO), "install-agent", command, f"ROOT={tmp_path}", f"ARGS=--exec {EXEC}"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "etc/crucible-monitor/alerts.yaml").is_file()
    assert (tmp_path / "etc/systemd/system/crucible-monitor.service").is_file()
