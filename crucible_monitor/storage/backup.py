"""Back up a data directory while an agent writes to it, and restore one into an empty directory.

What is copied, in this order (the order is what makes a live copy consistent):

1. ``state.db`` through SQLite's online backup API: one consistent snapshot, the SQLite WAL folded in (the
   ``-wal`` and ``-shm`` files are not copied).
2. The metric WAL (``metrics/wal``): the checkpoint file, then each segment up to its last complete record (an
   append in progress is left out, as a crash would leave it).
3. Everything else: Parquet files (immutable once renamed into place; temp files are skipped), models, tail
   positions, ``api_token`` (mode kept). A file that compaction or retention deletes between listing and copying
   is replaced by the file that superseded it: the directory is listed again until a listing finds nothing new.

A segment flushed while the copy runs is in the copied WAL or in a Parquet file copied after it, or both; on
restore the store replays the WAL and the flushed duplicate is superseded by its Parquet range, as after a crash.

The manifest (``manifest.json``) lists every file with its size and SHA-256; :func:`restore` verifies them all
before it writes anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from crucible_monitor.errors import StorageError
from crucible_monitor.storage.wal import complete_length
from crucible_monitor.units import human_bytes

__all__ = ["MANIFEST", "BackupResult", "Progress", "backup", "restore", "verify"]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
_STATE = "state.db"
_WAL_DIR = Path("metrics") / "wal"
_SKIP_SUFFIXES = ("-wal", "-shm", "-journal", ".tmp")
_MAX_PASSES = 10

Progress = Callable[[str, int, int], None]
"""Called after each file: (relative path, files done, files known so far)."""


@dataclass(frozen=True)
class BackupResult:
    """What a backup or restore wrote: the directory, the number of files and their total size in bytes."""

    directory: Path
    files: int
    bytes: int

    def summary(self) -> str:
        """``12 files, 3.4 MiB``."""
        return f"{self.files} file{'s' * (self.files != 1)}, {human_bytes(self.bytes)}"


def backup(data_dir: Path, dest: Path, *, progress: Progress | None = None) -> BackupResult:
    """Copy ``data_dir`` into ``dest`` (absent or empty) while an agent may be writing to it.

    Raises:
        StorageError: ``data_dir`` holds no agent data, ``dest`` is not empty, or a copy fails.
    """
    if not (data_dir / _STATE).is_file() and not (data_dir / "metrics").is_dir():
        raise StorageError(f"{data_dir} holds no agent data (no state.db, no metrics/); check agent.data_dir")
    if dest.resolve().is_relative_to(data_dir.resolve()):
        raise StorageError(f"the backup destination {dest} is inside the data directory {data_dir}; name one outside")
    _require_empty(dest, "backup destination", "name a new or empty directory")
    started = time.time()
    files: dict[str, dict[str, int | str]] = {}
    try:
        dest.mkdir(parents=True, exist_ok=True, mode=0o700)  # it holds the API token
        report = _reporter(progress, sum(1 for _ in _walk(data_dir)) + (data_dir / _STATE).is_file())
        if (data_dir / _STATE).is_file():
            _backup_sqlite(data_dir / _STATE, dest / _STATE)
            files[_STATE] = _entry(dest / _STATE)
            report(_STATE)
        for source in _walk(data_dir / _WAL_DIR):
            rel = source.relative_to(data_dir).as_posix()
            if _copy_wal_file(source, dest / rel):
                files[rel] = _entry(dest / rel)
                report(rel)
        for _ in range(_MAX_PASSES):  # until a listing finds nothing new (a file deleted under us was superseded)
            copied = False
            for source in _walk(data_dir):
                rel = source.relative_to(data_dir).as_posix()
                if rel in files or rel.startswith(_WAL_DIR.as_posix() + "/"):
                    continue
                if _copy_file(source, dest / rel):
                    files[rel] = _entry(dest / rel)
                    report(rel)
                    copied = True
            if not copied:
                break
        manifest = {
            "version": FORMAT_VERSION,
            "created_at": started,
            "created": datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds"),
            "source": str(data_dir),
            "files": files,
        }
        _write_json(dest / MANIFEST, manifest)
    except OSError as exc:
        raise StorageError(f"backup to {dest} failed: {exc.strerror or exc} ({exc.filename or dest})") from exc
    except sqlite3.Error as exc:
        raise StorageError(f"backup of {data_dir / _STATE} failed: {exc}") from exc
    return BackupResult(dest, len(files), sum(int(e["size"]) for e in files.values()))


def verify(src: Path) -> dict[str, dict[str, int | str]]:
    """The manifest's file list, once every file in it has its recorded size and SHA-256.

    Raises:
        StorageError: no manifest, an unknown format version, or a file missing or not matching.
    """
    try:
        manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StorageError(f"{src} is not a backup: it has no {MANIFEST}") from None
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot read {src / MANIFEST}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("version") != FORMAT_VERSION:
        raise StorageError(f"{src / MANIFEST}: unknown backup format (expected version {FORMAT_VERSION})")
    files: dict[str, dict[str, int | str]] = manifest.get("files", {})
    if not isinstance(files, dict) or not all(_well_formed(rel, entry) for rel, entry in files.items()):
        raise StorageError(f"{src / MANIFEST} is malformed: 'files' must map relative paths to size, sha256, mode")
    bad = []
    for rel, entry in files.items():
        path = src / rel
        if not path.is_file():
            bad.append(f"{rel} (missing)")
        elif path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
            bad.append(f"{rel} (checksum mismatch)")
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise StorageError(f"backup {src} is damaged: {shown}; nothing was restored")
    return files


def restore(src: Path, data_dir: Path, *, progress: Progress | None = None) -> BackupResult:
    """Verify the backup in ``src``, then copy it into ``data_dir`` (absent or empty).

    Raises:
        StorageError: ``data_dir`` is not empty, or the backup has no manifest or is damaged.
    """
    _require_empty(data_dir, "data directory", "set agent.data_dir to a new or empty directory")
    files = verify(src)
    source = json.loads((src / MANIFEST).read_text(encoding="utf-8")).get("source")
    done: dict[str, dict[str, int | str]] = {}
    report = _reporter(progress, len(files))
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        for rel, entry in files.items():
            target = data_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / rel, target)
            os.chmod(target, int(entry["mode"]))
            done[rel] = entry
            report(rel)
        if isinstance(source, str) and _STATE in done:
            _relocate_models(data_dir / _STATE, Path(source), data_dir)
    except OSError as exc:
        raise StorageError(
            f"restore into {data_dir} failed: {exc.strerror or exc} ({exc.filename}); empty it before trying again"
        ) from exc
    except sqlite3.Error as exc:
        raise StorageError(f"restore into {data_dir} failed: {data_dir / _STATE}: {exc}; empty it and retry") from exc
    return BackupResult(data_dir, len(done), sum(int(e["size"]) for e in done.values()))


# -- helpers ----------------------------------------------------------------------------------------------------


def _well_formed(rel: object, entry: object) -> bool:
    return (
        isinstance(rel, str)
        and not Path(rel).is_absolute()
        and ".." not in Path(rel).parts
        and isinstance(entry, dict)
        and isinstance(entry.get("size"), int)
        and isinstance(entry.get("sha256"), str)
        and isinstance(entry.get("mode"), int)
    )


def _require_empty(path: Path, what: str, hint: str) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise StorageError(f"the {what} {path} exists and is not empty; {hint}")


def _reporter(progress: Progress | None, expected: int) -> Callable[[str], None]:
    """Counts copied files for ``progress``; ``expected`` is the first listing's count (the total grows past it
    if files appear while copying)."""
    count = 0

    def report(rel: str) -> None:
        nonlocal count
        count += 1
        if progress is not None:
            progress(rel, count, max(count, expected))

    return report


def _walk(root: Path) -> Iterator[Path]:
    """Regular files under ``root``, sorted, without temp files and SQLite's side files."""
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if path.name.startswith(".") or path.name.endswith(_SKIP_SUFFIXES) or path.name == _STATE:
            continue
        if path.is_file() and not path.is_symlink():
            yield path


def _backup_sqlite(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    os.chmod(target, source.stat().st_mode & 0o777)


def _relocate_models(state: Path, old: Path, new: Path) -> None:
    """Point the model registry's file paths (absolute, under the old data dir) into the new data dir."""
    db = sqlite3.connect(state)
    try:
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'model_registry'").fetchone():
            prefix = f"{old}/"
            with db:
                db.execute(
                    "UPDATE model_registry SET path = ? || substr(path, ?) WHERE substr(path, 1, ?) = ?",
                    (f"{new}/", len(prefix) + 1, len(prefix), prefix),
                )
    finally:
        db.close()


def _copy_wal_file(source: Path, target: Path) -> bool:
    """Copy a WAL segment up to its last complete record (the checkpoint file whole); False if it is gone."""
    try:
        data = source.read_bytes()
        mode = source.stat().st_mode & 0o777
    except FileNotFoundError:
        return False  # flushed and deleted: its rows are in a Parquet file copied later
    if source.suffix == ".wal":
        data = data[: complete_length(data)]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    os.chmod(target, mode)
    return True


def _copy_file(source: Path, target: Path) -> bool:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.copy2(source, target)  # keeps the mode (api_token stays 0600)
    except FileNotFoundError:
        target.unlink(missing_ok=True)
        return False
    return True


def _entry(path: Path) -> dict[str, int | str]:
    stat = path.stat()
    return {"size": stat.st_size, "sha256": _sha256(path), "mode": stat.st_mode & 0o777}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path: Path, value: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
