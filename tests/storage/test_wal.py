"""The WAL: records read back exactly, torn tails cut off, corruption stops the read, checkpoints survive crashes."""

from __future__ import annotations

from pathlib import Path

from crucible_monitor.storage.wal import WriteAheadLog


def _open(path: Path) -> WriteAheadLog:
    wal = WriteAheadLog(path, fsync=False)
    wal.open()
    return wal


def test_appended_batches_read_back_in_order(tmp_path: Path) -> None:
    wal = _open(tmp_path)
    wal.append([(1000, "m", "{}", 1.5), (1000, "n", '{"a":"b"}', -2.0)])
    wal.append([(2000, "m", "{}", 3.25)])
    wal.close()
    assert list(_open(tmp_path).read(1)) == [
        (1000, "m", "{}", 1.5),
        (1000, "n", '{"a":"b"}', -2.0),
        (2000, "m", "{}", 3.25),
    ]


def test_a_torn_tail_is_cut_off_and_appends_continue_after_the_last_whole_record(tmp_path: Path) -> None:
    wal = _open(tmp_path)
    wal.append([(1000, "m", "{}", 1.0)])
    wal.close()
    segment = tmp_path / "000000000001.wal"
    whole = segment.stat().st_size
    with segment.open("ab") as handle:
        handle.write(b"CW\x40\x00\x00\x00garbage")  # a header and half a payload: a crash mid-write
    wal = _open(tmp_path)
    assert segment.stat().st_size == whole
    wal.append([(2000, "m", "{}", 2.0)])
    wal.close()
    assert [row[3] for row in _open(tmp_path).read(1)] == [1.0, 2.0]


def test_a_corrupt_record_stops_the_read_there(tmp_path: Path) -> None:
    wal = _open(tmp_path)
    wal.append([(1000, "m", "{}", 1.0)])
    wal.append([(2000, "m", "{}", 2.0)])
    wal.close()
    segment = tmp_path / "000000000001.wal"
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF  # flip a byte inside the second payload: its CRC no longer matches
    segment.write_bytes(bytes(data))
    assert [row[3] for row in WriteAheadLog(tmp_path).read(1)] == [1.0]


def test_rotation_closes_segments_and_a_checkpoint_deletes_them(tmp_path: Path) -> None:
    wal = _open(tmp_path)
    wal.append([(1000, "m", "{}", 1.0)])
    assert wal.rotate() == [1]
    wal.append([(2000, "m", "{}", 2.0)])
    assert wal.rotate() == [1, 2]
    wal.checkpoint([1, 2])
    assert wal.segments() == [3]


def test_segments_at_or_below_the_checkpoint_are_deleted_on_open(tmp_path: Path) -> None:
    wal = _open(tmp_path)
    wal.append([(1000, "m", "{}", 1.0)])
    wal.rotate()
    (tmp_path / "checkpoint").write_text("1", encoding="ascii")  # crash after the checkpoint, before the unlink
    wal.close()
    reopened = _open(tmp_path)
    assert reopened.segments() == [2]
    assert reopened.active_segment == 2
