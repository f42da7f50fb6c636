"""Immutable Parquet files: the tuned layout, atomic writes, and reads that skip unrelated row groups.

Rows are sorted by series (metric, labels) then time, so a one-series read touches few row groups. Strings are
written as plain strings (Parquet dictionary-encodes them on disk; Arrow's dictionary *type* would defeat row-group
statistics), timestamps with DELTA_BINARY_PACKED, all zstd-compressed.

Values are stored losslessly as decimals where they are decimals. Most samples are whole numbers (bytes, counts)
or have a few decimals (load averages, ratios rounded by their collector, microsecond totals), and such a float
``v`` is written as an integer mantissa ``m`` and a per-series number of decimals ``s`` with ``m / 10**s == v``
exactly; the mantissas are delta-encoded, which is what brings a day of 10 s data to about one byte per sample.
A value that is not a short decimal (``1/3``, a full-precision latency) goes to a float column instead. In the
file each logical float column ``x`` is three columns ``x_m`` (int64), ``x_s`` (int8) and ``x_f`` (float64), one
of ``x_m``/``x_f`` set per row; :func:`write_atomic` encodes and the readers decode, so callers see plain floats.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crucible_monitor.storage.wal import Row, fsync_dir

__all__ = [
    "RAW_SCHEMA",
    "Columns",
    "publish",
    "write_temp",
    "ROLLUP_SCHEMA",
    "file_metadata",
    "raw_table",
    "read_metric",
    "read_table",
    "round_to_decimals",
    "series_decimals",
    "series_starts",
    "write_atomic",
]

RAW_SCHEMA = pa.schema(
    [
        ("metric", pa.string()),
        ("labels", pa.string()),
        ("ts", pa.timestamp("ms", tz="UTC")),
        ("value", pa.float64()),
    ]
)
ROLLUP_SCHEMA = pa.schema(
    [
        ("metric", pa.string()),
        ("labels", pa.string()),
        ("ts", pa.timestamp("ms", tz="UTC")),
        ("min", pa.float64()),
        ("max", pa.float64()),
        ("sum", pa.float64()),
        ("count", pa.int64()),
        ("last", pa.float64()),
    ]
)
_ROW_GROUP_ROWS = 65536
_MAX_DECIMALS = 9
_POW10 = 10.0 ** np.arange(_MAX_DECIMALS + 1)
_EXACT_INT = 2.0**53
SORT_KEYS = [("metric", "ascending"), ("labels", "ascending"), ("ts", "ascending")]


def raw_table(rows: Sequence[Row]) -> pa.Table:
    """Rows as a raw-tier table sorted by series then time."""
    ts, metric, labels, value = zip(*rows, strict=True) if rows else ((), (), (), ())
    table = pa.table(
        {
            "metric": pa.array(metric, pa.string()),
            "labels": pa.array(labels, pa.string()),
            "ts": pa.array(ts, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "value": pa.array(value, pa.float64()),
        },
        schema=RAW_SCHEMA,
    )
    return table.sort_by(SORT_KEYS)


def write_temp(table: pa.Table, path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Write a sorted logical ``table``, encoded, to a temp file beside ``path``, fsynced; return the temp path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = _encode(table)
    if metadata:
        encoded = encoded.replace_schema_metadata({**(encoded.schema.metadata or {}), **metadata})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    names = encoded.schema.names
    pq.write_table(
        encoded,
        tmp,
        compression="zstd",
        compression_level=9,
        use_dictionary=["metric", "labels", *(n for n in names if n.endswith("_s"))],
        column_encoding={
            "ts": "DELTA_BINARY_PACKED",
            **{n: "DELTA_BINARY_PACKED" for n in names if n.endswith("_m") or n == "count"},
            **{n: "BYTE_STREAM_SPLIT" for n in names if n.endswith("_f")},
        },
        row_group_size=_ROW_GROUP_ROWS,
        write_statistics=["metric", "ts"],
    )
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    return tmp


def publish(tmp: Path, path: Path) -> None:
    """Move a finished temp file to its name, durably (rename, fsync of the directory)."""
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_atomic(table: pa.Table, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``table`` to ``path`` so that the file either does not exist or is complete."""
    publish(write_temp(table, path, metadata), path)


def read_table(path: Path) -> pa.Table:
    """A whole file as a logical table (plain float columns)."""
    return _decode(pq.read_table(path))


def series_starts(table: pa.Table) -> npt.NDArray[np.int64]:
    """Row index where each series begins in a table sorted by metric, labels."""
    n = table.num_rows
    if n == 0:
        return np.empty(0, np.int64)
    metric = pc.dictionary_encode(table.column("metric")).combine_chunks().indices.to_numpy()
    labels = pc.dictionary_encode(table.column("labels")).combine_chunks().indices.to_numpy()
    change = np.r_[True, (metric[1:] != metric[:-1]) | (labels[1:] != labels[:-1])]
    return np.flatnonzero(change).astype(np.int64)


def series_decimals(values: npt.NDArray[np.float64], starts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Per row, the decimals its series needs for every decimal value (-1 for rows that are not short decimals).

    ``starts`` are the rows where each series begins (values sorted by series).
    """
    n = len(values)
    decimals = np.full(n, -1, np.int64)
    pending = np.flatnonzero(np.isfinite(values) & (np.abs(values) < _EXACT_INT))
    for k in range(_MAX_DECIMALS + 1):
        if not len(pending):
            break
        candidate = values[pending]
        mantissa = np.round(candidate * _POW10[k])
        exact = (mantissa / _POW10[k] == candidate) & (np.abs(mantissa) < _EXACT_INT)
        decimals[pending[exact]] = k
        pending = pending[~exact]
    if len(starts):  # one scale per series keeps mantissas comparable, so their deltas stay small
        per_series = np.maximum.reduceat(decimals, starts)
        decimals = np.where(decimals >= 0, np.repeat(per_series, np.diff(np.r_[starts, n])), -1)
    return decimals


def round_to_decimals(values: npt.NDArray[np.float64], decimals: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """``values`` rounded to ``decimals`` where that is >= 0 (sums of k-decimal values have k decimals exactly)."""
    scale = _POW10[np.maximum(decimals, 0)]
    rounded: npt.NDArray[np.float64] = np.where(decimals >= 0, np.round(values * scale) / scale, values)
    return rounded


def _split_decimal(
    values: npt.NDArray[np.float64], starts: npt.NDArray[np.int64]
) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(mantissa, decimals, float) arrays: a row has mantissa and decimals, or the float."""
    decimals = series_decimals(values, starts)
    scaled = np.round(values * _POW10[np.maximum(decimals, 0)])
    ok = (decimals >= 0) & (np.abs(scaled) < _EXACT_INT)
    ok[ok] = scaled[ok] / _POW10[decimals[ok]] == values[ok]
    return (
        pa.array(np.where(ok, scaled, 0).astype(np.int64), pa.int64(), mask=~ok),
        pa.array(np.where(ok, decimals, 0).astype(np.int8), pa.int8(), mask=~ok),
        pa.array(values, pa.float64(), mask=ok),
    )


def _encode(table: pa.Table) -> pa.Table:
    starts = series_starts(table)
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    for field in table.schema:
        column = table.column(field.name)
        if pa.types.is_floating(field.type):
            mantissa, decimals, floats = _split_decimal(column.to_numpy(), starts)
            columns |= {f"{field.name}_m": mantissa, f"{field.name}_s": decimals, f"{field.name}_f": floats}
        else:
            columns[field.name] = column
    return pa.table(columns, metadata=table.schema.metadata)


def _decode(table: pa.Table) -> pa.Table:
    names = table.schema.names
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name in names:
        if name.endswith(("_s", "_f")):
            continue
        if name.endswith("_m"):
            base = name[:-2]
            mantissa, decimals, floats = (table.column(f"{base}{x}").combine_chunks() for x in ("_m", "_s", "_f"))
            is_decimal = pc.is_valid(mantissa).to_numpy(zero_copy_only=False)
            m = pc.fill_null(mantissa, 0).to_numpy()
            s = pc.fill_null(decimals, 0).to_numpy().astype(np.int64)
            f = pc.fill_null(floats, np.nan).to_numpy()
            columns[base] = pa.array(np.where(is_decimal, m / _POW10[s], f), pa.float64())
        else:
            columns[name] = table.column(name)
    return pa.table(columns, metadata=table.schema.metadata)


@lru_cache(maxsize=512)
def file_metadata(path: str, _mtime_ns: int, _size: int) -> pq.FileMetaData:
    """Parquet footers of immutable files, cached by path, mtime and size."""
    return pq.read_metadata(path)


Columns = dict[str, npt.NDArray[Any]]
"""A read: ``labels`` (object array of label keys), ``ts`` (int64 ms) and the requested value columns."""


def read_metric(path: Path, metric: str, start_ms: int, end_ms: int, columns: Sequence[str]) -> Columns | None:
    """The rows of ``metric`` with ``start_ms <= ts < end_ms``, reading only row groups that can hold them.

    Decoded straight from Arrow's buffers into numpy: Arrow's own conversions would import pandas (tens of MB) into
    the agent just to read a few thousand numbers.

    Raises:
        FileNotFoundError: the file was deleted (by compaction or retention) since it was listed.
    """
    stat = path.stat()
    meta = file_metadata(str(path), stat.st_mtime_ns, stat.st_size)
    names = meta.schema.names
    metric_col, ts_col = names.index("metric"), names.index("ts")
    groups = []
    for i in range(meta.num_row_groups):
        group = meta.row_group(i)
        m_stats, t_stats = group.column(metric_col).statistics, group.column(ts_col).statistics
        if m_stats is not None and m_stats.has_min_max and not m_stats.min <= metric <= m_stats.max:
            continue
        if t_stats is not None and t_stats.has_min_max and not _overlaps(t_stats, start_ms, end_ms):
            continue
        groups.append(i)
    if not groups:
        return None
    wanted = [c for c in columns if c not in ("labels", "ts")]
    stored = [c for c in names if c in wanted or (c[-2:] in ("_m", "_s", "_f") and c[:-2] in wanted)]
    table = pq.ParquetFile(path, metadata=meta, read_dictionary=["metric", "labels"]).read_row_groups(
        groups, columns=["metric", "labels", "ts", *stored]
    )
    ts = _fixed(table.column("ts"), np.int64)[0]
    keep = _equals(table.column("metric"), metric) & (ts >= start_ms) & (ts < end_ms)
    if not keep.any():
        return None
    out: Columns = {"labels": _strings(table.column("labels"), keep), "ts": ts[keep]}
    for name in wanted:
        if name == "count":
            out[name] = _fixed(table.column(name), np.int64)[0][keep]
            continue
        mantissa, is_decimal = _fixed(table.column(f"{name}_m"), np.int64)
        decimals = _fixed(table.column(f"{name}_s"), np.int8)[0].astype(np.int64)
        floats = _fixed(table.column(f"{name}_f"), np.float64)[0]
        out[name] = np.where(is_decimal, mantissa / _POW10[np.clip(decimals, 0, _MAX_DECIMALS)], floats)[keep]
    return out


def _fixed(column: pa.ChunkedArray, dtype: type[np.generic]) -> tuple[npt.NDArray[Any], npt.NDArray[np.bool_]]:
    """Values (garbage where null) and validity of a fixed-width column, from its buffers."""
    values, valid = [], []
    for chunk in column.chunks:
        buffers = chunk.buffers()
        data = np.frombuffer(buffers[1], dtype=dtype) if buffers[1] is not None else np.zeros(0, dtype)
        values.append(data[chunk.offset : chunk.offset + len(chunk)])
        valid.append(_validity(chunk))
    if not values:
        return np.zeros(0, dtype), np.zeros(0, bool)
    return np.concatenate(values), np.concatenate(valid)


def _validity(chunk: pa.Array) -> npt.NDArray[np.bool_]:
    bitmap = chunk.buffers()[0]
    if bitmap is None or chunk.null_count == 0:
        return np.ones(len(chunk), bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), bitorder="little")
    return bits[chunk.offset : chunk.offset + len(chunk)].astype(bool)


def _indices(chunk: pa.DictionaryArray) -> npt.NDArray[np.int64]:
    indices = chunk.indices
    dtype = np.dtype(f"int{indices.type.bit_width}")
    data = np.frombuffer(indices.buffers()[1], dtype=dtype)[indices.offset : indices.offset + len(indices)]
    return data.astype(np.int64)


def _equals(column: pa.ChunkedArray, value: str) -> npt.NDArray[np.bool_]:
    """Rows of a dictionary-encoded string column equal to ``value``, compared as dictionary codes."""
    parts = []
    for chunk in column.chunks:
        dictionary = chunk.dictionary.to_pylist()
        code = dictionary.index(value) if value in dictionary else -1
        parts.append(_indices(chunk) == code)
    return np.concatenate(parts) if parts else np.zeros(0, bool)


def _strings(column: pa.ChunkedArray, keep: npt.NDArray[np.bool_]) -> npt.NDArray[np.object_]:
    """The ``keep`` rows of a dictionary-encoded string column as an object array (dictionaries are small)."""
    parts, offset = [], 0
    for chunk in column.chunks:
        rows = keep[offset : offset + len(chunk)]
        offset += len(chunk)
        dictionary = np.array(chunk.dictionary.to_pylist(), dtype=object)
        parts.append(dictionary[_indices(chunk)[rows]])
    return np.concatenate(parts) if parts else np.empty(0, dtype=object)


def _overlaps(stats: pq.Statistics, start_ms: int, end_ms: int) -> bool:
    # the raw int64 values: converting the logical timestamps would import pandas
    return int(stats.min_raw) < end_ms and int(stats.max_raw) >= start_ms
