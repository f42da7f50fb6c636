"""The model registry (the saved host models), process snapshots and scoring progress, kept in ``state.db``.

Models go to ``<data_dir>/models/`` (the trees as ``.npz``, the baselines and parameters as ``.json``) with a row in
``model_registry``; only the newest ``models_kept`` keep their files.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from crucible_monitor.analysis.baseline import SeasonalBaseline
from crucible_monitor.analysis.features import KeySeries
from crucible_monitor.analysis.forest import CompactForest, HostModel
from crucible_monitor.models import iso
from crucible_monitor.schemas import ModelInfo, ProcessSnapshot
from crucible_monitor.storage.state import StateDB

__all__ = ["ANALYSIS_MIGRATIONS", "FittedModel", "ModelRegistry", "ProcessSnapshots", "Progress"]

logger = logging.getLogger(__name__)

Floats = npt.NDArray[np.float64]

ANALYSIS_MIGRATIONS: list[str] = [
    """
    CREATE TABLE model_registry (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        trained_at REAL NOT NULL,
        window_start REAL NOT NULL,
        window_end REAL NOT NULL,
        samples INTEGER NOT NULL,
        features TEXT NOT NULL,
        parameters TEXT NOT NULL,
        threshold REAL NOT NULL,
        path TEXT NOT NULL
    );
    CREATE TABLE anomalies (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        host TEXT NOT NULL,
        start_ts REAL NOT NULL,
        peak_ts REAL NOT NULL,
        end_ts REAL NOT NULL,
        ongoing INTEGER NOT NULL,
        score REAL NOT NULL,
        threshold REAL NOT NULL,
        model_id INTEGER NOT NULL,
        signature TEXT NOT NULL,
        attribution TEXT NOT NULL,
        context TEXT NOT NULL
    );
    CREATE INDEX anomalies_start ON anomalies (start_ts);
    CREATE TABLE process_snapshots (ts REAL PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE analysis_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)
    """,
]
"""The ``analysis`` area of ``state.db``."""

_DEVIATION_CAP = 1000.0  # MADs: keeps never-moving series finite
_SNAPSHOT_TOP = 5  # processes kept per list in stored snapshots


@dataclass(frozen=True, slots=True)
class FittedModel:
    """The host model with the baselines of the series it watches; ``id`` is its registry row (0: a draft)."""

    id: int
    keys: tuple[KeySeries, ...]
    baselines: dict[str, SeasonalBaseline]
    model: HostModel

    def deviations(self, stamps: Floats, columns: Mapping[str, Floats]) -> Floats:
        """Rows × keys of deviations in MADs; a missing value counts as its baseline (0)."""
        out = np.zeros((len(stamps), len(self.keys)))
        for j, key in enumerate(self.keys):
            column = columns.get(key.name)
            if column is not None:
                d = self.baselines[key.name].deviation(stamps, column)
                out[:, j] = np.clip(np.nan_to_num(d, nan=0.0), -_DEVIATION_CAP, _DEVIATION_CAP)
        return out


@dataclass(frozen=True, slots=True)
class TrainingWindow:
    """What a model was fitted on: the window and how many buckets of it had data."""

    start: float
    end: float
    samples: int


class ModelRegistry:
    """Saves fitted host models, registers them, lists them and loads the newest back.

    Args:
        state: ``state.db`` (its ``analysis`` area migrated).
        models_dir: where the model files go.
        keys: the series a loaded model may watch; a saved key not among them is dropped on load.
    """

    def __init__(self, state: StateDB, models_dir: Path, keys: Sequence[KeySeries]) -> None:
        self.state = state
        self.models_dir = models_dir
        self._keys = {k.name: k for k in keys}

    def last_trained(self) -> float | None:
        """When the newest host model was fitted (Unix seconds), if any was."""
        rows = self.state.execute("SELECT max(trained_at) AS last FROM model_registry WHERE kind = 'host'")
        last = rows[0]["last"] if rows else None
        return float(last) if last is not None else None

    def register(self, now: float, window: TrainingWindow, draft: FittedModel) -> FittedModel:
        """Save ``draft``'s files and add its registry row; returns it with its id.

        Raises:
            OSError: the model files could not be written.
        """
        path = self._save(now, draft)
        with self.state.transaction() as db:
            cursor = db.execute(
                "INSERT INTO model_registry (kind, trained_at, window_start, window_end, samples, features, "
                "parameters, threshold, path) VALUES ('host', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now,
                    window.start,
                    window.end,
                    window.samples,
                    json.dumps([k.name for k in draft.keys]),
                    json.dumps(draft.model.get_params()),
                    draft.model.threshold_,
                    str(path),
                ),
            )
            model_id = int(cursor.lastrowid or 0)
        return FittedModel(id=model_id, keys=draft.keys, baselines=draft.baselines, model=draft.model)

    def models(self, limit: int = 20) -> list[ModelInfo]:
        """Model registry rows, newest first."""
        rows = self.state.execute("SELECT * FROM model_registry ORDER BY id DESC LIMIT ?", (limit,))
        return [
            ModelInfo(
                id=r["id"],
                kind=r["kind"],
                trained_at=iso(r["trained_at"]),
                window_start=iso(r["window_start"]),
                window_end=iso(r["window_end"]),
                samples=r["samples"],
                features=json.loads(r["features"]),
                parameters=json.loads(r["parameters"]),
                threshold=r["threshold"],
                path=r["path"],
            )
            for r in rows
        ]

    def load_latest(self) -> FittedModel | None:
        """The newest host model, or None when there is none or its files cannot be read (it is then refitted)."""
        rows = self.state.execute("SELECT id, path FROM model_registry WHERE kind = 'host' ORDER BY id DESC LIMIT 1")
        if not rows:
            return None
        path = Path(rows[0]["path"])
        try:
            meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
            forest = CompactForest.load(path)
        except (OSError, ValueError, KeyError):
            logger.exception("cannot load the host model from %s; it will be refitted", path)
            return None
        names = [n for n in meta["keys"] if n in self._keys]
        return FittedModel(
            id=int(rows[0]["id"]),
            keys=tuple(self._keys[n] for n in names),
            baselines={n: SeasonalBaseline.from_dict(meta["baselines"][n]) for n in names},
            model=HostModel.from_parts(meta["model"], forest),
        )

    def prune(self, kept: int) -> None:
        """Delete the files of all but the newest ``kept`` models (their registry rows stay)."""
        rows = self.state.execute("SELECT path FROM model_registry ORDER BY id DESC LIMIT -1 OFFSET ?", (kept,))
        for row in rows:
            for suffix in (".npz", ".json"):
                Path(row["path"]).with_suffix(suffix).unlink(missing_ok=True)

    def _save(self, now: float, fitted: FittedModel) -> Path:
        """Write the trees (``.npz``) and the rest (``.json``) atomically; returns the ``.npz`` path."""
        self.models_dir.mkdir(parents=True, exist_ok=True)
        stem = self.models_dir / f"host-{int(now)}"
        meta = {
            "keys": [k.name for k in fitted.keys],
            "baselines": {name: b.to_dict() for name, b in fitted.baselines.items()},
            "model": fitted.model.to_dict(),
        }
        for suffix, write in (
            (".npz", lambda p: fitted.model.forest_.save(p)),
            (".json", lambda p: p.write_text(json.dumps(meta), encoding="utf-8")),
        ):
            target = stem.with_suffix(suffix)
            tmp = target.with_name(f".{target.name}.tmp")
            write(tmp)
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        return stem.with_suffix(".npz")


class ProcessSnapshots:
    """The top processes by CPU and memory, stored at each scoring run so that explanations can name them."""

    def __init__(self, state: StateDB) -> None:
        self.state = state

    def record(self, snapshot: ProcessSnapshot | None, *, keep_after: float) -> None:
        """Store ``snapshot`` (its top few of each list) and delete those older than ``keep_after``."""
        if snapshot is not None:
            self.state.execute(
                "INSERT OR IGNORE INTO process_snapshots (ts, data) VALUES (?, ?)",
                (snapshot.ts, json.dumps(_stored(snapshot))),
            )
        self.state.execute("DELETE FROM process_snapshots WHERE ts < ?", (keep_after,))

    def near(self, ts: float, *, after: float) -> dict[str, Any] | None:
        """The stored snapshot nearest ``ts``, from ten minutes before it to ``after`` seconds after it; one that
        measured CPU (a collector's first snapshot has no CPU figures) before a nearer one that did not."""
        rows = self.state.execute(
            "SELECT ts, data FROM process_snapshots WHERE ts BETWEEN ? AND ? "
            "ORDER BY json_array_length(data, '$.by_cpu') = 0, abs(ts - ?) LIMIT 1",
            (ts - 600.0, ts + after, ts),
        )
        if not rows:
            return None
        data: dict[str, Any] = json.loads(rows[0]["data"])
        data["ts"] = rows[0]["ts"]
        return data

    def between(self, start: float, end: float, live: ProcessSnapshot | None = None) -> list[dict[str, Any]]:
        """The stored snapshots in ``[start, end)``, oldest first, and ``live`` (not stored yet) when it falls there."""
        rows = self.state.execute(
            "SELECT ts, data FROM process_snapshots WHERE ts >= ? AND ts < ? ORDER BY ts", (start, end)
        )
        out = [{**json.loads(r["data"]), "ts": r["ts"]} for r in rows]
        if live is not None and start <= live.ts < end and all(s["ts"] != live.ts for s in out):
            out.append({**_stored(live), "ts": live.ts})
        return out


class Progress:
    """How far scoring has got (``scored_until``), kept across restarts."""

    def __init__(self, state: StateDB) -> None:
        self.state = state

    def scored_until(self) -> float | None:
        """The end of the last bucket scored, if any was."""
        rows = self.state.execute("SELECT value FROM analysis_state WHERE key = 'scored_until'")
        return float(rows[0]["value"]) if rows else None

    def set_scored_until(self, value: float) -> None:
        """Record that buckets up to ``value`` are scored."""
        self.state.execute(
            "INSERT INTO analysis_state (key, value) VALUES ('scored_until', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (repr(value),),
        )


def _stored(snapshot: ProcessSnapshot) -> dict[str, list[dict[str, Any]]]:
    """The top few processes of each list as stored: what a :class:`~.results.ProcessRef` holds."""
    lists = {"by_cpu": snapshot.by_cpu, "by_memory": snapshot.by_memory}
    return {
        name: [
            {
                "pid": p.pid,
                "name": p.name,
                "cmdline": p.cmdline[:120],
                "user": p.user,
                "cpu_cores": p.cpu_cores,
                "memory_bytes": p.memory_bytes,
            }
            for p in processes[:_SNAPSHOT_TOP]
        ]
        for name, processes in lists.items()
    }
