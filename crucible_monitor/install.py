"""``crucible-monitor install``: the service user, its directories, ``monitor.yaml``, ``alerts.yaml`` and the unit.

The steps are data (:func:`plan`) and :func:`run_steps` carries them out, prints them (``--dry-run``) or writes
them under a root directory (``--root DIR``, for packaging: no user is created and nothing is chowned there, the
steps say so). An existing config is never overwritten. ``systemctl`` is never run: its commands are printed as
the next steps. The files come from the package (``crucible_monitor/shipped``, links to ``configs/``), so an
installed wheel has them.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from crucible_monitor.errors import CrucibleError

__all__ = [
    "CONFIG_DIR",
    "DATA_DIR",
    "UNIT_PATH",
    "USER",
    "InstallFile",
    "MakeDir",
    "MakeUser",
    "Step",
    "plan",
    "run_steps",
]

USER = "crucible"
CONFIG_DIR = PurePosixPath("/etc/crucible-monitor")
DATA_DIR = PurePosixPath("/var/lib/crucible-monitor")
UNIT_PATH = PurePosixPath("/etc/systemd/system/crucible-monitor.service")
UNIT_NAME = "crucible-monitor.service"
NOLOGIN = "/usr/sbin/nologin"


@dataclass(frozen=True, slots=True)
class MakeUser:
    """A system user with its own group, home in the data directory, no login shell."""

    name: str
    home: PurePosixPath

    def command(self) -> list[str]:
        return ["useradd", "--system", "--user-group", "--home-dir", str(self.home), "--shell", NOLOGIN, self.name]


@dataclass(frozen=True, slots=True)
class MakeDir:
    path: PurePosixPath
    mode: int
    owner: str
    group: str


@dataclass(frozen=True, slots=True)
class InstallFile:
    """``text`` written to ``path``; a config (``keep``) that exists already is left as it is."""

    path: PurePosixPath
    text: str
    mode: int
    owner: str
    group: str
    keep: bool
    source: str


Step = MakeUser | MakeDir | InstallFile


def shipped(name: str) -> str:
    """A file shipped with the package: ``monitor.yaml``, ``alerts.yaml``, ``crucible-monitor.service``."""
    return (resources.files("crucible_monitor") / "shipped" / name).read_text(encoding="utf-8")


def entry_point() -> str:
    """The ``crucible-monitor`` script of this installation (beside the interpreter), else the one on PATH."""
    beside = Path(sys.executable).parent / "crucible-monitor"
    found = str(beside) if beside.is_file() else shutil.which("crucible-monitor")
    if found is None:
        raise CrucibleError("cannot find the crucible-monitor entry point; give it with --exec PATH")
    return found


def unit_text(executable: str) -> str:
    """The shipped unit with ``ExecStart`` running ``executable serve`` on the installed config.

    Raises:
        CrucibleError: the path is not absolute or holds whitespace (ExecStart would split it).
    """
    if not executable.startswith("/") or any(c.isspace() for c in executable):
        raise CrucibleError(f"--exec must be an absolute path without spaces, got {executable!r}")
    start = f"ExecStart={executable} serve --config {CONFIG_DIR / 'monitor.yaml'}"
    lines = [start if line.startswith("ExecStart=") else line for line in shipped(UNIT_NAME).splitlines()]
    return "\n".join(lines) + "\n"


def plan(executable: str) -> list[Step]:
    """Every step of an install, in order."""
    return [
        MakeUser(USER, DATA_DIR),
        MakeDir(CONFIG_DIR, 0o750, "root", USER),
        MakeDir(DATA_DIR, 0o750, USER, USER),
        InstallFile(CONFIG_DIR / "monitor.yaml", shipped("monitor.yaml"), 0o640, "root", USER, True, "monitor.yaml"),
        InstallFile(CONFIG_DIR / "alerts.yaml", shipped("alerts.yaml"), 0o640, "root", USER, True, "alerts.yaml"),
        InstallFile(UNIT_PATH, unit_text(executable), 0o644, "root", "root", False, UNIT_NAME),
    ]


def next_steps(executable: str) -> list[str]:
    """What the operator runs after the install (never run by it)."""
    return [
        f"editor {CONFIG_DIR / 'monitor.yaml'}    # data_dir, listen_addr, your checks and services",
        f"{executable} check-config --probe {CONFIG_DIR / 'monitor.yaml'}",
        "systemctl daemon-reload",
        "systemctl enable --now crucible-monitor",
    ]


@dataclass(frozen=True, slots=True)
class _Target:
    """Where the steps land: ``root`` prefixes every path; ``dry_run`` changes nothing."""

    root: Path | None
    dry_run: bool
    say: Callable[[str], None]

    def path(self, path: PurePosixPath) -> Path:
        return self.root / path.relative_to("/") if self.root else Path(path)

    def chown(self, path: Path, owner: str, group: str) -> None:
        if self.root is None:
            os.chown(path, pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid)


def _mode(mode: int) -> str:
    return f"{mode:04o}"


def _run_user(step: MakeUser, target: _Target) -> None:
    line = " ".join(step.command())
    if target.root is not None:
        target.say(f"user {step.name}: skipped under --root (no /etc/passwd is written); the package runs: {line}")
        return
    try:
        pwd.getpwnam(step.name)
    except KeyError:
        target.say(f"user {step.name}: {line}")
        if not target.dry_run:
            done = subprocess.run(step.command(), capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise CrucibleError(f"useradd failed ({done.returncode}): {done.stderr.strip()}") from None
        return
    target.say(f"user {step.name}: exists, kept")


def _run_dir(step: MakeDir, target: _Target) -> None:
    path = target.path(step.path)
    owner = f"{step.owner}:{step.group}" + (" (not set under --root)" if target.root else "")
    target.say(f"directory {path}: mode {_mode(step.mode)}, owner {owner}")
    if not target.dry_run:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(step.mode)
        target.chown(path, step.owner, step.group)


def _run_file(step: InstallFile, target: _Target) -> None:
    path = target.path(step.path)
    if step.keep and path.exists():
        target.say(f"file {path}: exists, kept (not overwritten; the shipped {step.source} is not copied)")
        return
    if path.is_file() and path.read_text(encoding="utf-8") == step.text:
        target.say(f"file {path}: up to date")
        return
    owner = f"{step.owner}:{step.group}" + (" (not set under --root)" if target.root else "")
    verb = "replace" if path.exists() else "write"
    target.say(f"file {path}: {verb} from the shipped {step.source}, mode {_mode(step.mode)}, owner {owner}")
    if target.dry_run:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, step.mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(step.text)
    partial.chmod(step.mode)  # the umask may have narrowed it
    target.chown(partial, step.owner, step.group)
    os.replace(partial, path)


def run_steps(
    steps: list[Step], *, root: Path | None, dry_run: bool, say: Callable[[str], None], is_root: bool
) -> None:
    """Carry out (or with ``dry_run`` only print) each step; under ``root`` every path is prefixed.

    Raises:
        CrucibleError: a real install (no ``root``, no ``dry_run``) by a user other than root, or a failed step.
    """
    if root is None and not dry_run and not is_root:
        raise CrucibleError("installing needs root: run it with sudo, or give --root DIR (packaging) or --dry-run")
    target = _Target(root, dry_run, say)
    try:
        for step in steps:
            if isinstance(step, MakeUser):
                _run_user(step, target)
            elif isinstance(step, MakeDir):
                _run_dir(step, target)
            else:
                _run_file(step, target)
    except OSError as exc:
        raise CrucibleError(f"install failed at {exc.filename or 'a step'}: {exc.strerror or exc}") from None
