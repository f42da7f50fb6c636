"""The rotation-safe tailer, on real files rotated the ways logrotate, Caddy and Laravel rotate them."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest

from crucible_monitor.collectors.tailing import CHUNK_BYTES, Chunk, Tailer


def _lines(chunks: Iterable[Chunk]) -> list[str]:
    return [line for chunk in chunks for line in chunk.data.decode().splitlines()]


def _append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.writelines(f"{line}\n" for line in lines)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "logs" / "access.log"
    path.parent.mkdir()
    path.write_text("old 1\nold 2\n", encoding="utf-8")
    return path


def _tailer(log: Path, **kwargs: int) -> Tailer:
    return Tailer([str(log.parent / "access*.log")], log.parent.parent / "state" / "tail.json", **kwargs)


def test_files_present_at_the_first_run_are_read_from_their_end_then_followed(log: Path) -> None:
    tailer = _tailer(log)
    assert list(tailer.read()) == []
    _append(log, "new 1", "new 2")
    assert _lines(tailer.read()) == ["new 1", "new 2"]
    assert list(tailer.read()) == []


def test_a_file_that_appears_later_is_read_from_its_start(log: Path) -> None:
    tailer = _tailer(log)
    list(tailer.read())
    later = log.with_name("access-admin.log")
    later.write_text("a\nb\n", encoding="utf-8")
    chunks = list(tailer.read())
    assert [(c.path, c.data) for c in chunks] == [(later, b"a\nb\n")]


def test_a_partial_last_line_waits_for_its_newline(log: Path) -> None:
    tailer = _tailer(log)
    list(tailer.read())
    with log.open("a", encoding="utf-8") as handle:
        handle.write("complete\nhalf")
    assert _lines(tailer.read()) == ["complete"]
    with log.open("a", encoding="utf-8") as handle:
        handle.write(" done\n")
    assert _lines(tailer.read()) == ["half done"]


def test_rename_and_create_rotation_loses_no_line_written_before_or_after_it(log: Path) -> None:
    tailer = _tailer(log)
    list(tailer.read())
    writer = log.open("a", encoding="utf-8")
    writer.write("before rotation\n")
    writer.flush()
    log.rename(log.with_name("access.log.1"))
    log.write_text("", encoding="utf-8")
    writer.write("late write to the rotated file\n")  # the writer has not reopened yet
    writer.flush()
    assert _lines(tailer.read()) == ["before rotation", "late write to the rotated file"]
    writer.write("unterminated last words")  # then it reopens: the rotated file is finished
    writer.close()
    _append(log, "after rotation")
    assert _lines(tailer.read()) == ["unterminated last words", "after rotation"]
    _append(log.with_name("access.log.1"), "never read: the rotated file is no longer followed")
    _append(log, "next")
    assert _lines(tailer.read()) == ["next"]


def test_copytruncate_rotation_reads_the_truncated_file_from_its_start(log: Path) -> None:
    tailer = _tailer(log)
    list(tailer.read())
    _append(log, "before copy")
    assert _lines(tailer.read()) == ["before copy"]
    shutil.copyfile(log, log.with_name("access.log.1"))
    os.truncate(log, 0)
    _append(log, "after truncation")
    assert _lines(tailer.read()) == ["after truncation"]


def test_a_truncated_file_that_grew_past_the_old_offset_is_recognised_by_its_first_bytes(log: Path) -> None:
    tailer = _tailer(log)
    list(tailer.read())
    os.truncate(log, 0)
    _append(log, "a much longer first line after the truncation", "second")
    assert log.stat().st_size > len("old 1\nold 2\n")
    assert _lines(tailer.read()) == ["a much longer first line after the truncation", "second"]


def test_positions_persist_across_restarts(log: Path) -> None:
    first = _tailer(log)
    list(first.read())
    _append(log, "read before the restart")
    assert _lines(first.read()) == ["read before the restart"]
    first.save()
    _append(log, "written while stopped")
    assert _lines(_tailer(log).read()) == ["written while stopped"]


def test_unsaved_positions_read_the_same_lines_again_after_a_restart(log: Path) -> None:
    first = _tailer(log)
    list(first.read())
    first.save()
    _append(log, "processed but not saved")
    assert _lines(first.read()) == ["processed but not saved"]
    assert _lines(_tailer(log).read()) == ["processed but not saved"]


def test_a_rotation_while_stopped_reads_the_rest_of_the_rotated_file_then_the_new_one(log: Path) -> None:
    first = _tailer(log)
    list(first.read())
    first.save()
    _append(log, "tail of the old file")
    log.rename(log.with_name("access.log.1"))
    _append(log, "head of the new file")
    second = _tailer(log)
    assert _lines(second.read()) == ["tail of the old file", "head of the new file"]


def test_a_pattern_added_later_starts_at_the_end_of_its_files(log: Path, tmp_path: Path) -> None:
    first = _tailer(log)
    list(first.read())
    first.save()
    other = tmp_path / "logs" / "error.log"
    other.write_text("history\n", encoding="utf-8")
    both = Tailer([str(log.parent / "access*.log"), str(other)], tmp_path / "state" / "tail.json")
    assert list(both.read()) == []
    _append(other, "fresh")
    assert _lines(both.read()) == ["fresh"]


def test_one_read_returns_at_most_max_bytes_and_the_rest_comes_next(log: Path) -> None:
    tailer = _tailer(log, max_bytes=16)
    list(tailer.read())
    _append(log, "line one", "line two", "line three")
    assert _lines(tailer.read()) == ["line one"]
    assert _lines(tailer.read()) == ["line two"]
    assert _lines(tailer.read()) == ["line three"]


def test_the_state_file_is_replaced_atomically_and_only_when_positions_change(log: Path) -> None:
    tailer = _tailer(log)
    list(tailer.read())
    tailer.save()
    state = tailer.state_file
    inode = state.stat().st_ino
    list(tailer.read())
    tailer.save()
    assert state.stat().st_ino == inode
    _append(log, "x")
    list(tailer.read())
    tailer.save()
    assert state.stat().st_ino != inode
    assert [p.name for p in state.parent.iterdir()] == ["tail.json"]
    saved = json.loads(state.read_text(encoding="utf-8"))
    (position,) = saved["files"].values()
    assert position["offset"] == log.stat().st_size


def test_an_unreadable_state_file_is_logged_and_tailing_starts_afresh(
    log: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = log.parent.parent / "state" / "tail.json"
    state.parent.mkdir()
    state.write_text("{not json", encoding="utf-8")
    tailer = _tailer(log)
    assert list(tailer.read()) == []
    assert "cannot read tail positions" in caplog.text
    _append(log, "followed")
    assert _lines(tailer.read()) == ["followed"]


def test_problems_name_missing_files_and_the_missing_directories_of_globs(log: Path, tmp_path: Path) -> None:
    missing_file = tmp_path / "logs" / "error.log"
    glob_in_missing_directory = str(tmp_path / "nowhere" / "*.log")
    glob_without_files_yet = str(tmp_path / "logs" / "laravel-*.log")
    tailer = Tailer([str(missing_file), glob_in_missing_directory, glob_without_files_yet], tmp_path / "tail.json")
    list(tailer.read())
    assert tailer.problems == [
        f"no file {missing_file}",
        f"no directory {tmp_path / 'nowhere'} (for {glob_in_missing_directory})",
    ]
    missing_file.write_text("", encoding="utf-8")
    (tmp_path / "nowhere").mkdir()
    list(tailer.read())
    assert tailer.problems == []


def test_a_large_backlog_comes_in_chunks_that_end_at_line_boundaries(log: Path) -> None:
    tailer = _tailer(log)
    list(tailer.read())
    line = "x" * 999
    count = 3 * CHUNK_BYTES // 1000
    _append(log, *[line] * count)
    chunks = list(tailer.read())
    assert len(chunks) == 4
    assert all(len(c.data) <= CHUNK_BYTES and c.data.endswith(b"\n") for c in chunks)
    assert sum(c.data.count(b"\n") for c in chunks) == count
