"""Metrics pushed to ``POST /api/v1/metrics``: Prometheus text (the textfile collector's parser) or JSON (the
command collector's), checked against the ``push:`` limits and stored with the time they arrived.

A push is taken whole or refused whole: a bad metric or label name, too many labels (``push.max_labels``), a label
value too long (``push.max_label_length``) or a name another collector emits is a 422
(:class:`~crucible_monitor.errors.MetricsRejected`); more series than ``push.max_series_per_push``, or more distinct
pushed series than ``push.max_series`` in all, a 413 (:class:`~crucible_monitor.errors.PushLimit`). Each message
names the series and the setting. A series not pushed for ``push.forget_after`` no longer counts.

The receiver is also a collector (``push``): its catalogue is its own two metrics and every pushed one, so pushed
series reach ``list_metrics``, history, alert rules, explanations, ``/metrics`` and ``analysis.live_series`` as the
built-in ones do. What it has seen (catalogue entries, series and when each was last pushed) is kept in
``<data_dir>/push.json`` when it changes, so that a restarted agent still knows the pushed metrics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Collection as Names
from dataclasses import asdict, replace
from pathlib import Path

from crucible_monitor.collectors.base import Collection, Collector
from crucible_monitor.collectors.command import parse_json_metrics
from crucible_monitor.collectors.textfile import ExpositionError, parse_exposition
from crucible_monitor.customconfig import PushConfig
from crucible_monitor.errors import ActionRefused, MetricsRejected, PushLimit
from crucible_monitor.models import MetricKind, MetricSpec, Sample, iso
from crucible_monitor.schemas import PUSH_MEDIA_TYPES, PushResult

__all__ = ["CATALOGUE", "PushReceiver", "read_push"]

logger = logging.getLogger(__name__)

CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec(
        "push_requests_total",
        MetricKind.COUNTER,
        "pushes",
        "Pushes to POST /api/v1/metrics by result: accepted or refused.",
        ("result",),
    ),
    MetricSpec("push_series", MetricKind.GAUGE, "series", "Distinct pushed series counted against push.max_series."),
)
_RESERVED = frozenset({"agent_info"})
"""Names no collector declares that ``/metrics`` uses: ``crucible_agent_info`` names the agent."""
_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_Key = tuple[str, tuple[tuple[str, str], ...]]


def _key(sample: Sample) -> _Key:
    return sample.metric, tuple(sorted(sample.labels.items()))


def _shown(key: _Key) -> str:
    return key[0] + ("{" + ",".join(f'{k}="{v[:40]}"' for k, v in key[1]) + "}" if key[1] else "")


def read_push(
    body: str, media: str, taken: Names[str], config: PushConfig
) -> tuple[dict[_Key, Sample], list[MetricSpec], int]:
    """The series of one push (the last value of a series given twice), their catalogue entries and how many
    samples were left out (NaN or infinite).

    Raises:
        MetricsRejected: the body does not parse, or a series breaks a rule (the message names it and the rule).
        PushLimit: more series than ``push.max_series_per_push``.
    """
    try:
        if media == "application/json":
            samples, specs = parse_json_metrics(body, "a push")
            own = sorted({s.metric for s in samples} & set(taken))
            if own:
                raise MetricsRejected(f"{own[0]} is one of the agent's own metrics: push it under another name")
        else:
            samples, specs = parse_exposition(body, taken, "a push")
    except ExpositionError as exc:
        raise MetricsRejected(f"in the Prometheus text, {exc}") from None
    except ValueError as exc:  # JSONDecodeError included
        raise MetricsRejected(f"not push JSON ({{name: value}} or [{{name, labels, value}}]): {exc}") from None
    kept = [s for s in samples if math.isfinite(s.value)]
    series = {_key(s): s for s in kept}
    if not series:
        raise MetricsRejected("the push holds no samples with a finite value")
    if len(series) > config.max_series_per_push:
        raise PushLimit(
            f"{len(series)} series in one push; push.max_series_per_push is {config.max_series_per_push}",
            "push.max_series_per_push",
        )
    for key in series:
        _check(key, config)
    return series, specs, len(samples) - len(kept)


def _check(key: _Key, config: PushConfig) -> None:
    name, labels = key
    if not _METRIC.fullmatch(name):
        raise MetricsRejected(f"{name[:80]!r} is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
    if len(labels) > config.max_labels:
        raise MetricsRejected(f"{_shown(key)}: {len(labels)} labels; push.max_labels is {config.max_labels}")
    for label, value in labels:
        if not _LABEL.fullmatch(label) or label.startswith("__"):
            raise MetricsRejected(
                f"{name}: {label[:80]!r} is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
            )
        if len(value) > config.max_label_length:
            raise MetricsRejected(
                f"{name}: label {label} is {len(value)} characters; push.max_label_length is {config.max_label_length}"
            )


class PushReceiver:
    """Takes pushes and stores them; as a collector, reports them (see the module's docstring).

    Args:
        config: the ``push:`` settings in force (read at each push, so a config change applies at once).
        store: appends samples stamped with a time to the metric store (the agent's, which holds them while the
            disk is full).
        collectors: the running collectors, whose metric names a push may not take.
        state_file: where what was pushed is kept (None: nowhere).
        clock: the receive time.
    """

    name = "push"

    def __init__(
        self,
        config: Callable[[], PushConfig],
        store: Callable[[list[Sample], float], int],
        collectors: Callable[[], Iterable[Collector]],
        *,
        state_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store = store
        self._collectors = collectors
        self._file = state_file
        self._clock = clock
        self._results = {"accepted": 0, "refused": 0}
        self._pushed: dict[str, MetricSpec] = {}
        self._seen: dict[_Key, float] = {}
        self._load()

    @property
    def catalogue(self) -> Sequence[MetricSpec]:
        """Its own metrics and every pushed one."""
        return [*CATALOGUE, *self._pushed.values()]

    async def collect(self) -> Collection:
        """How many pushes were taken and refused, and the series counted against ``push.max_series``."""
        self._forget(self._clock())
        samples = [Sample("push_requests_total", float(n), {"result": r}) for r, n in self._results.items()]
        return Collection([*samples, Sample("push_series", float(len(self._seen)))])

    async def receive(self, body: str, media_type: str) -> PushResult:
        """Store one push, every sample stamped with the time now.

        Raises:
            ActionRefused: pushing is off (``push.enabled``).
            MetricsRejected: a body that does not parse or a series that breaks a rule; the message says which.
            PushLimit: over ``push.max_series_per_push`` or ``push.max_series``; ``limit`` names it.
        """
        try:
            result = await self._receive(body, media_type)
        except (ActionRefused, MetricsRejected):
            self._results["refused"] += 1
            raise
        self._results["accepted"] += 1
        return result

    async def _receive(self, body: str, media_type: str) -> PushResult:
        config = self._config()
        if not config.enabled:
            raise ActionRefused("pushing metrics is off: push.enabled is false")
        media = media_type.partition(";")[0].strip().lower()
        if media not in PUSH_MEDIA_TYPES:
            raise MetricsRejected(f"content type {media!r}: send text/plain (Prometheus text) or application/json")
        others = (c for c in self._collectors() if c is not self)
        taken = {spec.name for c in others for spec in c.catalogue} | {spec.name for spec in CATALOGUE} | _RESERVED
        series, specs, skipped = await asyncio.to_thread(read_push, body, media, taken, config)
        now = self._clock()
        self._forget(now)
        new = [key for key in series if key not in self._seen]
        if len(self._seen) + len(new) > config.max_series:
            raise PushLimit(
                f"{len(new)} new series would make {len(self._seen) + len(new)} pushed series; push.max_series is "
                f"{config.max_series} (a series not pushed for push.forget_after is forgotten)",
                "push.max_series",
            )
        self._store([Sample(s.metric, s.value, s.labels, now) for s in series.values()], now)
        self._seen.update(dict.fromkeys(series, now))
        merged = [self._merged(spec) for spec in specs]
        added = [spec for spec in merged if spec != self._pushed.get(spec.name)]
        self._pushed.update((spec.name, spec) for spec in added)
        if new or added:
            self._save()
        return PushResult(
            accepted=len(series),
            skipped=skipped,
            metrics=sorted({key[0] for key in series}),
            received_at=iso(now),
            series=len(self._seen),
            max_series=config.max_series,
        )

    def _merged(self, spec: MetricSpec) -> MetricSpec:
        """``spec`` as the catalogue keeps it: the first push's kind, unit and description, every label seen."""
        known = self._pushed.get(spec.name)
        if known is None:
            return spec
        return replace(known, labels=tuple(sorted({*known.labels, *spec.labels})))

    def _forget(self, now: float) -> None:
        oldest = now - self._config().forget_after.total_seconds()
        for key in [key for key, seen in self._seen.items() if seen < oldest]:
            del self._seen[key]

    def _load(self) -> None:
        if self._file is None or not self._file.exists():
            return
        try:
            kept = json.loads(self._file.read_text(encoding="utf-8"))
            for spec in kept["metrics"]:
                self._pushed[spec["name"]] = MetricSpec(
                    spec["name"], MetricKind(spec["kind"]), spec["unit"], spec["description"], tuple(spec["labels"])
                )
            self._seen = {(name, tuple((k, v) for k, v in labels)): seen for name, labels, seen in kept["series"]}
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("%s is unreadable: pushed metrics join the catalogue again as they are pushed", self._file)

    def _save(self) -> None:
        if self._file is None:
            return
        kept = {
            "metrics": [asdict(spec) for spec in self._pushed.values()],
            "series": [[name, [list(pair) for pair in labels], seen] for (name, labels), seen in self._seen.items()],
        }
        temporary = self._file.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps(kept), encoding="utf-8")
            os.replace(temporary, self._file)
        except OSError as exc:
            logger.warning("cannot write %s (%s): pushed metrics are kept in memory only", self._file, exc.strerror)
