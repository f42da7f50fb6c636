"""Rotation-safe tailing of log files, with the read positions persisted across restarts.

A :class:`Tailer` follows every file matching its glob patterns and returns the complete lines appended since the
last read. A file is known by its identity (device, inode), not by its name, which is how it survives rotations:

- **rename + create** (logrotate's default, Caddy's own rolling): the renamed file is found again by inode in its
  directory (among names sharing its first word: ``access.log.1``, ``access-2026-11-28T10-00-00.000.log``) and read
  to its end when the rotation is noticed and once more on the next read, for a writer that reopens its file a
  little later (logrotate's ``postrotate`` reload); then it is dropped. The new file is read from its start.
- **copytruncate**: the file becomes shorter than the offset, or its first bytes change, and it is read again from
  its start (lines written between the copy and the truncation are lost: that is copytruncate's own race). A
  writer that does not append (Caddy) goes on at its old offset, leaving a hole of NUL bytes, which is skipped.
- **new files** (a new daily log, or one created while the agent was stopped) are read from their start. Files that
  match a pattern the tailer has never followed (its first run, or a pattern just added) are read from their end,
  so that old history is not counted as new traffic.

Only complete lines are returned; a partial last line waits for its newline, except the last line of a rotated file
on its final read. The positions live in one small JSON file written atomically by :meth:`Tailer.save` (temp file,
fsync, rename, fsync of the directory), which callers run once they have used what :meth:`Tailer.read` returned: a
crash in between reads those lines again rather than losing them. :attr:`Tailer.problems` says what the last read
could not do (a pattern matching no file, a file that cannot be opened);
:class:`~crucible_monitor.collectors.base.Problems` turns such problems, the tailer's and others', into events
when they appear.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import re
import stat
from collections.abc import Generator, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["CHUNK_BYTES", "FINGERPRINT_BYTES", "MAX_LINE_BYTES", "Chunk", "Tailer"]

logger = logging.getLogger(__name__)

FINGERPRINT_BYTES = 256
"""How much of a file's start identifies it (to notice a truncated file that has already grown past the offset)."""

CHUNK_BYTES = 1024 * 1024
"""Most bytes one :class:`Chunk` holds (small reads stay in the CPU caches and bound memory)."""

MAX_LINE_BYTES = CHUNK_BYTES
"""A "line" this long without a newline is skipped rather than waited for."""

_STATE_VERSION = 1
_TAIL_PROBE = 64 * 1024
_NAME_WORD = re.compile(r"[.\-_]")
_WILDCARD = re.compile(r"[*?[]")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Complete lines read from one file, each ending with ``\\n``."""

    path: Path
    data: bytes


@dataclass(slots=True)
class _Position:
    path: str
    offset: int
    fingerprint: str
    fingerprint_size: int
    moved: bool = False
    """The file left the patterns (rotated away): read to its end once more on the next read, then dropped."""


def _unmatched(pattern: str) -> str | None:
    """The problem with a pattern that matches nothing: a missing file, or a missing directory for a glob (a glob
    in an existing directory may simply have no file yet: a daily log before its first entry)."""
    if not _WILDCARD.search(pattern):
        return f"no file {pattern}"
    directory = next(parent for parent in Path(pattern).parents if not _WILDCARD.search(str(parent)))
    return None if directory.is_dir() else f"no directory {directory} (for {pattern})"


def _identity(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


def _first_data(fd: int) -> int:
    """Where a file's data starts: after the hole that a writer without ``O_APPEND`` (Caddy) leaves when its file
    is truncated under it, since it goes on writing at its old offset. Holes are found in whole blocks; the NUL
    bytes left in the first block are skipped as they are read."""
    try:
        return os.lseek(fd, 0, os.SEEK_DATA)
    except OSError:  # no data at all, or a filesystem without SEEK_DATA
        return 0


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=8).hexdigest()


class Tailer:
    """Follows the files matching ``patterns`` (absolute globs); positions persist in ``state_file``.

    ``max_bytes`` bounds what one :meth:`read` returns in all; the rest comes with the next read.
    """

    def __init__(self, patterns: Sequence[str], state_file: Path, *, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.patterns = list(dict.fromkeys(patterns))
        self.state_file = state_file
        self.max_bytes = max_bytes
        self._budget = max_bytes
        self.problems: list[str] = []
        """What the last :meth:`read` could not do: missing files or directories, files that cannot be opened."""
        self._positions: dict[str, _Position] = {}
        self._known_patterns: set[str] = set()
        self._load()
        self._new_patterns = set(self.patterns) - self._known_patterns
        self._dirty = bool(self._new_patterns)

    def read(self) -> Iterator[Chunk]:
        """The complete lines appended since the last read, in chunks of at most :data:`CHUNK_BYTES`.

        Rotated files come first, then the files of each pattern in name order. Positions advance as chunks are
        taken, so a caller that stops early resumes from there.
        """
        self._budget = self.max_bytes
        self.problems = []
        found = self._scan()
        for key, position in list(self._positions.items()):
            if key in found:
                continue
            path = self._relocate(key, position)
            if path is None:
                logger.debug("stopped following %s: it no longer exists", position.path)
                del self._positions[key]
                self._dirty = True
                continue
            if not position.moved:
                logger.info("%s was rotated to %s; reading it to its end", position.path, path)
            finished = yield from self._drain(key, path, position, flush=position.moved)
            if position.moved and finished:
                del self._positions[key]
                self._dirty = True
            position.moved = True
        for key, (path, pattern) in found.items():
            known = self._positions.get(key) or self._start(key, path, from_end=pattern in self._new_patterns)
            if known is not None:
                yield from self._drain(key, path, known, flush=False)
        self._new_patterns = set()

    def save(self) -> None:
        """Persist the positions (only when they changed), atomically.

        Raises:
            OSError: the state file cannot be written.
        """
        if not self._dirty:
            return
        state = {
            "version": _STATE_VERSION,
            "patterns": sorted(set(self.patterns) | self._known_patterns),
            "files": {key: asdict(position) for key, position in self._positions.items()},
        }
        directory = self.state_file.parent
        directory.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(f".{self.state_file.name}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as handle:
            json.dump(state, handle, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.state_file)
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self._known_patterns |= set(self.patterns)
        self._dirty = False

    # -- internals ------------------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
            if state.get("version") != _STATE_VERSION:
                raise ValueError(f"unknown version {state.get('version')!r}")
            self._known_patterns = set(state["patterns"])
            self._positions = {key: _Position(**fields) for key, fields in state["files"].items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError):
            logger.exception("cannot read tail positions from %s; starting afresh", self.state_file)
            self._known_patterns = set()
            self._positions = {}

    def _scan(self) -> dict[str, tuple[Path, str]]:
        """Regular files matching the patterns, by identity, in pattern then name order."""
        found: dict[str, tuple[Path, str]] = {}
        for pattern in self.patterns:
            names = sorted(glob.glob(pattern))
            if not names and (problem := _unmatched(pattern)) is not None:
                self.problems.append(problem)
            for name in names:
                try:
                    st = os.stat(name)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    found.setdefault(_identity(st), (Path(name), pattern))
        return found

    def _relocate(self, key: str, position: _Position) -> Path | None:
        """Where a file that left the patterns is now: same directory, a name sharing its first word."""
        old = Path(position.path)
        if old.exists() and _identity(old.stat()) == key:
            return old
        word = _NAME_WORD.split(old.name, maxsplit=1)[0]
        inode = int(key.partition(":")[2])
        try:
            with os.scandir(old.parent) as entries:
                for entry in entries:
                    same = entry.name.startswith(word) and entry.inode() == inode
                    if same and entry.is_file() and _identity(entry.stat()) == key:
                        return Path(entry.path)
        except OSError:
            return None
        return None

    def _start(self, key: str, path: Path, *, from_end: bool) -> _Position | None:
        """A position for a file seen for the first time: its start, or after its last complete line."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self.problems.append(f"cannot read {path}: {exc.strerror}")
            return None
        try:
            st = os.fstat(fd)
            if _identity(st) != key:
                return None
            offset = 0
            if from_end and st.st_size:
                probe_at = max(0, st.st_size - _TAIL_PROBE)
                tail = os.pread(fd, st.st_size - probe_at, probe_at)
                newline = tail.rfind(b"\n")
                offset = probe_at + newline + 1 if newline >= 0 or probe_at == 0 else st.st_size
            size = min(st.st_size, FINGERPRINT_BYTES)
            position = _Position(str(path), offset, _digest(os.pread(fd, size, 0)), size)
        finally:
            os.close(fd)
        self._positions[key] = position
        self._dirty = True
        return position

    def _drain(self, key: str, path: Path, position: _Position, *, flush: bool) -> Generator[Chunk, None, bool]:
        """Chunks of one file within the read's budget; returns whether they reached its end."""
        while self._budget > 0:
            chunk, at_end = self._read(key, path, position, min(self._budget, CHUNK_BYTES), flush=flush)
            if chunk is None:
                return at_end
            self._budget -= len(chunk.data)
            yield chunk
            if at_end:
                return True
        return False

    def _read(
        self, key: str, path: Path, position: _Position, budget: int, *, flush: bool
    ) -> tuple[Chunk | None, bool]:
        """New complete lines of one file, and whether they reach its end; ``flush`` ends an unterminated last line."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            self.problems.append(f"cannot read {path}: {exc.strerror}")
            return None, False
        try:
            st = os.fstat(fd)
            if _identity(st) != key:  # replaced between the scan and the open: the next read sorts it out
                return None, False
            if st.st_size < position.offset or not self._same_start(fd, position, st.st_size):
                logger.info("%s was truncated or replaced; reading it from its start", path)
                position.offset = _first_data(fd)
                position.fingerprint_size = 0
            if position.fingerprint_size < min(st.st_size, FINGERPRINT_BYTES):
                position.fingerprint_size = min(st.st_size, FINGERPRINT_BYTES)
                position.fingerprint = _digest(os.pread(fd, position.fingerprint_size, 0))
                self._dirty = True
            position.path = str(path)
            remaining = st.st_size - position.offset
            data = os.pread(fd, min(remaining, budget), position.offset) if remaining > 0 else b""
        finally:
            os.close(fd)
        if data.startswith(b"\0"):  # the rest of a hole (see _first_data)
            hole = len(data) - len(data.lstrip(b"\0"))
            position.offset += hole
            remaining -= hole
            data = data[hole:]
            self._dirty = True
        end = data.rfind(b"\n") + 1
        if flush and end < len(data) == remaining:
            end = len(data)
            lines = data + b"\n"  # the stopped writer's unterminated last line
        elif end == 0 and len(data) >= MAX_LINE_BYTES:
            logger.warning("skipping %d bytes of %s without a newline", len(data), path)
            end, lines = len(data), b""
        else:
            lines = data[:end]
        if end:
            position.offset += end
            self._dirty = True
        return (Chunk(path, lines) if lines else None), position.offset == st.st_size

    @staticmethod
    def _same_start(fd: int, position: _Position, size: int) -> bool:
        if position.fingerprint_size == 0:
            return True
        if size < position.fingerprint_size:
            return False
        return _digest(os.pread(fd, position.fingerprint_size, 0)) == position.fingerprint
