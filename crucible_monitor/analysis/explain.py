"""Explanations: why an anomaly or a window looks anomalous, with the series, events, processes and history."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from crucible_monitor.analysis.anomalies import EVENTS_BEFORE, AnomalyLog, Attribution, describe
from crucible_monitor.analysis.features import KeySeries, read_columns
from crucible_monitor.analysis.registry import FittedModel, ProcessSnapshots
from crucible_monitor.analysis.window import Evidence, gather
from crucible_monitor.analysis.wording import evidence_summary, method
from crucible_monitor.errors import QueryError
from crucible_monitor.models import MetricSpec, iso
from crucible_monitor.schemas import (
    ContributingSeries,
    EventRef,
    Explanation,
    NextTool,
    ProcessRef,
    ProcessSnapshot,
    SimilarAnomaly,
)
from crucible_monitor.storage.store import History

__all__ = ["Explainer"]

_LOOKBACK = 6 * 3600.0  # how far back "since when" looks
_SINCE_MADS = 5.0
_EVENTS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class _Inputs:
    """What one call brings beyond the stores: the metric catalogue and the newest process snapshot."""

    catalogue: Mapping[str, MetricSpec]
    live: ProcessSnapshot | None


class Explainer:
    """Builds :class:`~crucible_monitor.schemas.analysis.Explanation` s from stored anomalies or the raw series.

    Every explanation compares its window with the one before it of the same length
    (:mod:`~crucible_monitor.analysis.window`: no model needed); the host model's attribution is added when there is
    one.

    Args:
        store: the metric store, for windows with no stored anomaly and for "since when".
        anomalies: the stored anomalies (and through them ``state.db``'s events).
        snapshots: the stored process snapshots.
    """

    def __init__(self, store: History, anomalies: AnomalyLog, snapshots: ProcessSnapshots) -> None:
        self.store = store
        self.anomalies = anomalies
        self.snapshots = snapshots

    def explain(
        self,
        fitted: FittedModel | None,
        anomaly_id: int | None = None,
        *,
        start: float | None = None,
        end: float | None = None,
        catalogue: Mapping[str, MetricSpec] | None = None,
        live: ProcessSnapshot | None = None,
    ) -> Explanation:
        """Why an anomaly (by id), or a window of time, looks anomalous; ``fitted`` is the current host model,
        ``catalogue`` the metrics compared beyond the key series, ``live`` the newest process snapshot (not stored
        yet).

        A window overlapping a stored anomaly explains that anomaly; otherwise the window is compared with the one
        before it, and with the baselines when a model is fitted.

        Raises:
            NotFoundError: no anomaly with this id.
            QueryError: neither an id nor a window was given, or the window is empty.
        """
        inputs = _Inputs(dict(catalogue or {}), live)
        if anomaly_id is None:
            if start is None or end is None:
                raise QueryError("give an anomaly id, or a window with both start and end")
            if end <= start:
                raise QueryError(f"the window is empty: start ({iso(start)}) must be before end ({iso(end)})")
            anomaly_id = self.anomalies.strongest_overlapping(start, end)
            if anomaly_id is None:
                return self._explain_window(fitted, start, end, inputs)
        row = self.anomalies.row(anomaly_id)
        streaming = row["model_id"] == 0  # the streaming detector's: its series is in the anomaly's view
        return self._explain(
            fitted,
            row["start_ts"],
            row["end_ts"],
            row["peak_ts"],
            [] if streaming else json.loads(row["attribution"]),
            json.loads(row["context"]).get("snapshot"),
            row,
            inputs,
        )

    @property
    def _step(self) -> float:
        return self.anomalies.step

    def _explain_window(self, fitted: FittedModel | None, start: float, end: float, inputs: _Inputs) -> Explanation:
        if fitted is None:
            return self._explain(None, start, end, end, [], None, None, inputs)
        stamps, columns = read_columns(self.store, fitted.keys, start=start, end=end, step=self._step)
        if not len(stamps) or not columns:  # no bucket for the model to score: the previous window still speaks
            return self._explain(fitted, start, end, end, [], None, None, inputs)
        deviations = fitted.deviations(stamps, columns)
        row = int(np.argmax(fitted.model.score_samples(deviations)))
        details = self.anomalies.peak_details(fitted, float(stamps[row]), columns, deviations[row], row)
        return self._explain(
            fitted, start, end, float(stamps[row]), details.attribution, details.context["snapshot"], None, inputs
        )

    def _explain(
        self,
        fitted: FittedModel | None,
        start: float,
        end: float,
        peak: float,
        attribution: list[Attribution],
        snapshot: dict[str, Any] | None,
        row: sqlite3.Row | None,
        inputs: _Inputs,
    ) -> Explanation:
        keys = self.anomalies.keys
        evidence = self._evidence(start, end, inputs)
        if snapshot is None and evidence.latest is not None:
            snapshot = dict(evidence.latest)
        contributing = [a for a in attribution if a["contribution"] > 0] or attribution[:1]
        since = self._since(fitted, peak, start, [keys[a["name"]] for a in contributing])
        series = [
            ContributingSeries(
                series=keys[a["name"]].display,
                metric=keys[a["name"]].metric,
                labels=dict(keys[a["name"]].labels),
                value=a["value"],
                baseline=a["baseline"],
                mads=round(a["mads"], 2),
                since=iso(since[a["name"]]) if a["name"] in since else None,
                contribution=round(a["contribution"], 4),
            )
            for a in contributing
        ]
        state = self.anomalies.state
        stored = state.events(since=start - EVENTS_BEFORE, until=end, limit=_EVENTS_SHOWN)
        events = [EventRef.of(s) for s in stored]
        [count] = state.execute(
            "SELECT count(*) AS n FROM events WHERE ts >= ? AND ts < ?", (start - EVENTS_BEFORE, end)
        )
        evidence.totals["events"] = int(count["n"])
        similar = self._similar(row) if row is not None else []
        recurring = sum(1 for s in similar if s.same_time_of_day or s.same_time_of_week) >= 2
        by_cpu = [ProcessRef(**p) for p in (snapshot or {}).get("by_cpu", [])]
        by_memory = [ProcessRef(**p) for p in (snapshot or {}).get("by_memory", [])]
        ongoing = bool(row["ongoing"]) if row is not None else False
        modelled = bool(attribution)
        streaming = row is not None and row["model_id"] == 0
        summary = describe(keys, start, end, ongoing, contributing, snapshot) if modelled else ""
        summary = self.anomalies.view(row).summary if streaming and row is not None else summary
        summary = " ".join(p for p in (summary, evidence_summary(evidence, start, end, modelled=modelled)) if p)
        if events:
            summary += (
                f" {evidence.totals['events']} event(s) in or just before the window, the latest: {events[0].message}."
            )
        if recurring:
            summary += f" It recurs: {len(similar)} earlier anomalies of the same series, some at this time of day."
        model_id = int(row["model_id"]) if row is not None else fitted.id if fitted is not None else None
        basis = ["previous_window"] if evidence.data_before else []
        basis += ["events"] if stored else []
        basis += ["process_snapshots"] if evidence.snapshots or snapshot else []
        basis += ["host_model"] if modelled else []
        basis += ["streaming_detector"] if streaming else []
        return Explanation(
            anomaly=self.anomalies.view(row) if row is not None else None,
            window_start=iso(start),
            window_end=iso(end),
            method=("streaming detector on the series against its recent range; " if streaming else "")
            + method(evidence, start, model_id if modelled else None, fitted is not None),
            basis=basis,
            moved=evidence.moved,
            restarts=evidence.restarts,
            failing_checks=evidence.failing_checks,
            error_bursts=evidence.error_bursts,
            processes_by_cpu_growth=evidence.by_cpu,
            processes_by_memory_growth=evidence.by_memory,
            totals=evidence.totals,
            series=series,
            events=events,
            snapshot_ts=iso(snapshot["ts"]) if snapshot else None,
            top_processes_by_cpu=by_cpu,
            top_processes_by_memory=by_memory,
            similar=similar,
            recurring=recurring,
            summary=summary,
            next_tools=self._next_tools(start, end, contributing, events, evidence),
        )

    def _evidence(self, start: float, end: float, inputs: _Inputs) -> Evidence:
        """The model-free comparison of ``[start, end)`` with the window before it (nothing when it is empty)."""
        if end <= start:
            return Evidence(before_start=start)
        snapshots = self.snapshots.between(start - (end - start), end, inputs.live)
        return gather(self.store, self.anomalies.state, inputs.catalogue, snapshots, start, end)

    def _since(
        self, fitted: FittedModel | None, peak: float, start: float, keys: Sequence[KeySeries]
    ) -> dict[str, float]:
        """For each key, when its current run of |deviation| ≥ 5 MADs (same side as at the peak) began."""
        if fitted is None:
            return {}
        first = min(start, peak) - _LOOKBACK
        stamps, columns = read_columns(self.store, keys, start=first, end=peak + self._step, step=self._step)
        out: dict[str, float] = {}
        for key in keys:
            column = columns.get(key.name)
            if column is None or key.name not in fitted.baselines or not len(stamps):
                continue
            d = np.nan_to_num(fitted.baselines[key.name].deviation(stamps, column), nan=0.0)
            sign = np.sign(d[-1])
            if abs(d[-1]) < _SINCE_MADS:
                continue
            outside = np.flatnonzero(~(np.sign(d) == sign) | (np.abs(d) < _SINCE_MADS))
            first_in_run = int(outside[-1]) + 1 if len(outside) else 0
            out[key.name] = float(stamps[first_in_run])
        return out

    def _similar(self, row: sqlite3.Row) -> list[SimilarAnomaly]:
        signature = set(str(row["signature"]).split("+")) - {""}
        if not signature:
            return []
        keys = self.anomalies.keys
        out = []
        for other in self.anomalies.earlier(row):
            shared = signature & set(str(other["signature"]).split("+"))
            if not shared:
                continue
            out.append(
                SimilarAnomaly(
                    id=other["id"],
                    start=iso(other["start_ts"]),
                    score=round(other["score"], 4),
                    series=sorted(keys[n].display for n in shared if n in keys),
                    same_time_of_day=_hours_apart(row["peak_ts"], other["peak_ts"], 24) <= 1,
                    same_time_of_week=_hours_apart(row["peak_ts"], other["peak_ts"], 168) <= 1,
                )
            )
        return out[:10]

    def _next_tools(
        self,
        start: float,
        end: float,
        contributing: Sequence[Attribution],
        events: Sequence[EventRef],
        evidence: Evidence,
    ) -> list[NextTool]:
        tools = []
        if not contributing:
            tools += [
                NextTool(
                    tool="get_metrics",
                    arguments={
                        "metric": moved.metric,
                        "labels": moved.labels,
                        "since": iso(start - (end - start)),
                        "until": iso(end + 600),
                    },
                    why=f"see {moved.metric} ({moved.change}) around the window",
                )
                for moved in evidence.moved[:2]
            ]
        for a in contributing[:2]:
            key = self.anomalies.keys[a["name"]]
            tools.append(
                NextTool(
                    tool="get_metrics",
                    arguments={
                        "metric": key.metric,
                        "labels": dict(key.labels),
                        "since": iso(start - 3600),
                        "until": iso(end + 600),
                    },
                    why=f"see {key.what or key.metric} around the anomaly",
                )
            )
        names = {a["name"] for a in contributing}
        if names & {"cpu", "load", "memory", "swap"} or evidence.by_cpu or evidence.by_memory:
            tools.append(
                NextTool(tool="get_system_status", arguments={}, why="the top processes now, by CPU and memory")
            )
        if evidence.restarts or any(e.kind in ("service_state", "service_restart") for e in events):
            tools.append(NextTool(tool="list_services", arguments={}, why="services changed state around the anomaly"))
        if evidence.failing_checks or any(e.kind in ("check_failed", "check_recovered") for e in events):
            tools.append(NextTool(tool="list_http_checks", arguments={}, why="HTTP checks failed around the anomaly"))
        tools += [
            NextTool(
                tool="recent_errors",
                arguments={"app": burst.app, "since": iso(start)},
                why=f"the {burst.exception} entries {burst.app} logged in the window",
            )
            for burst in evidence.error_bursts[:1]
        ]
        return tools


def _hours_apart(a: float, b: float, period_hours: int) -> float:
    diff = abs(a - b) / 3600 % period_hours
    return min(diff, period_hours - diff)
