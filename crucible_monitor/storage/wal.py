"""Write-ahead log: every collected batch is appended here before it counts as stored.

The log is a directory of numbered segment files. A segment is a sequence of records::

    b"CW" | payload length (u32 LE) | CRC-32 of payload (u32 LE) | payload (UTF-8 JSON list of rows)

A crash can leave a torn record at the end of the newest segment; reading stops at the first record that is
short or fails its checksum, and :meth:`WriteAheadLog.open` truncates the active segment there, so every record
that :meth:`WriteAheadLog.append` returned from is read back exactly once.

Once segments are safely in Parquet, :meth:`WriteAheadLog.checkpoint` records the newest flushed segment in the
``checkpoint`` file (atomically) before deleting them, so a crash midway through the deletions never makes a
half-deleted set of segments look unflushed.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from crucible_monitor.errors import StorageError

__all__ = ["Row", "WriteAheadLog", "complete_length"]

logger = logging.getLogger(__name__)

Row = tuple[int, str, str, float]
"""One stored sample: (timestamp in ms, metric, canonical labels key, value)."""

_MAGIC = b"CW"
_HEADER = struct.Struct("<2sII")
_SUFFIX = ".wal"


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteAheadLog:
    """Append-only, checksummed log of sample batches, split into segments that are flushed and removed."""

    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self.fsync = fsync
        self._file: int | None = None
        self._active = 0
        self._size = 0

    @property
    def active_segment(self) -> int:
        """The number of the segment appends go to."""
        return self._active

    def open(self) -> None:
        """Open the newest segment for appending, cutting off a torn tail left by a crash.

        Raises:
            StorageError: the directory cannot be created or written.
        """
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            done = self._read_checkpoint()
            for segment in self.segments():
                if segment <= done:  # flushed before a crash interrupted their deletion
                    self._path(segment).unlink()
            segments = self.segments()
            self._active = segments[-1] if segments else done + 1
            path = self._path(self._active)
            valid = sum(_HEADER.size + len(p) for p in _read_payloads(path)) if path.exists() else 0
            self._file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            if os.fstat(self._file).st_size != valid:
                logger.warning("WAL segment %s had a torn tail; truncated to %d bytes", path.name, valid)
                os.ftruncate(self._file, valid)
            self._size = valid
            fsync_dir(self.directory)
        except OSError as exc:
            raise StorageError(f"cannot open the WAL in {self.directory}: {exc.strerror}") from exc

    def close(self) -> None:
        """Close the active segment."""
        if self._file is not None:
            os.close(self._file)
            self._file = None

    def append(self, rows: Sequence[Row]) -> None:
        """Append one batch; when this returns, the batch survives a crash (and power loss with ``fsync``).

        Raises:
            StorageError: the write failed (disk full, I/O error).
        """
        if self._file is None:
            raise StorageError("the WAL is not open")
        payload = json.dumps(rows, separators=(",", ":"), allow_nan=False).encode()
        record = _HEADER.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload
        try:
            if os.write(self._file, record) != len(record):
                raise OSError(28, "No space left on device")
            if self.fsync:
                os.fdatasync(self._file)
        except OSError as exc:
            os.ftruncate(self._file, self._size)  # cut off a partial record so later appends stay readable
            raise StorageError(f"cannot append to the WAL: {exc.strerror}") from exc
        self._size += len(record)

    def rotate(self) -> list[int]:
        """Start a new segment; return every closed segment (all but the new one), oldest first."""
        self.close()
        self._active += 1
        self._file = os.open(self._path(self._active), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._size = 0
        fsync_dir(self.directory)
        return [s for s in self.segments() if s != self._active]

    def segments(self) -> list[int]:
        """Numbers of the segments on disk, oldest first."""
        return sorted(int(p.stem) for p in self.directory.glob(f"*{_SUFFIX}") if p.stem.isdigit())

    def read(self, segment: int) -> Iterator[Row]:
        """The rows of one segment, up to the first torn or corrupt record."""
        for payload in _read_payloads(self._path(segment)):
            for ts, metric, labels, value in json.loads(payload):
                yield int(ts), metric, labels, float(value)

    def checkpoint(self, flushed: Sequence[int]) -> None:
        """Record that ``flushed`` segments are in Parquet, then delete them."""
        if not flushed:
            return
        tmp = self.directory / "checkpoint.tmp"
        tmp.write_text(str(max(flushed)), encoding="ascii")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.directory / "checkpoint")
        fsync_dir(self.directory)
        for segment in flushed:
            self._path(segment).unlink(missing_ok=True)
        fsync_dir(self.directory)

    def _read_checkpoint(self) -> int:
        try:
            return int((self.directory / "checkpoint").read_text(encoding="ascii"))
        except (FileNotFoundError, ValueError):
            return 0

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:012d}{_SUFFIX}"


def complete_length(data: bytes) -> int:
    """The length of the prefix of a segment's bytes that holds only complete, valid records."""
    return sum(_HEADER.size + len(payload) for payload in _payloads(data))


def _read_payloads(path: Path) -> Iterator[bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    yield from _payloads(data, path.name)


def _payloads(data: bytes, name: str | None = None) -> Iterator[bytes]:
    offset = 0
    while offset + _HEADER.size <= len(data):
        magic, length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        payload = data[start : start + length]
        if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
            if name is not None and (offset + _HEADER.size + length < len(data) or magic != _MAGIC):
                logger.warning("WAL segment %s is corrupt at byte %d; later records are ignored", name, offset)
            return
        yield payload
        offset = start + length
