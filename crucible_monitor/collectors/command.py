"""Custom metrics from commands the config allowlists: run as an argument list (never a shell), with a timeout.

``collectors.commands[i]`` names the program (an absolute path) and its arguments; the output is Prometheus text
(``name{labels} value`` lines) or JSON (``{"name": value}`` or ``[{"name": ..., "labels": {...}, "value": ...}]``).
A command that fails (a non-zero exit, output that does not parse) or hangs past its timeout (its whole process
group is killed) is counted in ``command_runs_total{command,result}`` and is a blind spot naming its config key,
and its series are left out that cycle. stdin is closed and the environment is the agent's PATH only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from crucible_monitor.collectors.base import BlindSpot, Collection, Problems
from crucible_monitor.collectors.textfile import ExpositionError, parse_exposition, unit_of
from crucible_monitor.customconfig import CommandConfig
from crucible_monitor.models import MetricKind, MetricSpec, Sample

__all__ = ["CATALOGUE", "CommandCollector", "parse_json_metrics"]

_OUTPUT_LIMIT = 1 << 20
"""Bytes of a command's output read at most."""
CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec(
        "command_runs_total",
        MetricKind.COUNTER,
        "runs",
        "Runs of each command by result: ok, failed (exit status or output) or timeout.",
        ("command", "result"),
    ),
    MetricSpec("command_duration_seconds", MetricKind.GAUGE, "seconds", "How long its last run took.", ("command",)),
)


def parse_json_metrics(text: str, source: str = "a command") -> tuple[list[Sample], list[MetricSpec]]:
    """Samples of ``{"name": value}`` or ``[{"name": ..., "labels": {...}, "value": ...}]``: gauges, unless an entry
    says ``"type": "counter"`` (and its ``"help"``, the description); ``source`` is named in the default one.

    Raises:
        ValueError: anything else; it says what.
    """
    data: Any = json.loads(text)
    items = [{"name": k, "value": v} for k, v in data.items()] if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError("expected an object or a list of {name, labels, value}")
    samples: list[Sample] = []
    specs: dict[str, MetricSpec] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError(f"not a {{name, labels, value}} entry: {str(item)[:80]}")
        value, labels = item.get("value"), item.get("labels") or {}
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{item['name']}: value {value!r} is not a finite number")
        if not isinstance(labels, dict):
            raise ValueError(f"{item['name']}: labels must be an object")
        name, kind, described = item["name"], item.get("type", "gauge"), item.get("help")
        if kind not in ("gauge", "counter") or not isinstance(described, str | None):
            raise ValueError(f"{name}: type must be gauge or counter, help a string")
        samples.append(Sample(name, float(value), {str(k): str(v) for k, v in labels.items()}))
        specs.setdefault(
            name,
            MetricSpec(
                name, MetricKind(kind), unit_of(name), described or f"From {source} (JSON).", tuple(sorted(labels))
            ),
        )
    return samples, list(specs.values())


class CommandCollector:
    """Runs the configured commands, each on its own schedule (one collector per command).

    Args:
        config: one ``collectors.commands`` entry.
        index: its position in the list (for the config key).
        taken: the agent's own metric names, which a command may not emit.
    """

    def __init__(
        self,
        config: CommandConfig,
        index: int,
        *,
        taken: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.name = f"command:{config.name}"
        self.key = f"collectors.commands[{index}]"
        self._taken = frozenset(taken)
        self._clock = clock
        self._specs: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOGUE}
        self._runs = {"ok": 0, "failed": 0, "timeout": 0}
        self._problems = Problems(self.name, f"command {config.name}")

    @property
    def catalogue(self) -> Sequence[MetricSpec]:
        """Its run counters and every metric the command has emitted so far."""
        return list(self._specs.values())

    async def collect(self) -> Collection:
        """Run the command once; its metrics, or a blind spot saying why there are none."""
        started = time.monotonic()
        result, problem, samples = await self._run()
        self._runs[result] += 1
        labels = {"command": self.config.name}
        out = [Sample("command_runs_total", float(n), {**labels, "result": r}) for r, n in self._runs.items()]
        out.append(Sample("command_duration_seconds", round(time.monotonic() - started, 6), labels))
        problems = [BlindSpot(f"command {self.config.name}", self.key, problem)] if problem else []
        return self._problems.collection([*out, *samples], problems, self._clock())

    async def _run(self) -> tuple[str, str | None, list[Sample]]:
        argv = self.config.argv
        try:
            process = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # its own process group: a timeout kills its children too
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
            )
        except OSError as exc:
            return "failed", f"cannot run {argv[0]}: {exc.strerror or exc}", []
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), self.config.timeout.total_seconds())
        except TimeoutError:
            _kill_group(process.pid)
            await process.wait()
            return "timeout", f"{argv[0]} did not finish within {self.config.timeout.total_seconds():g} s: killed", []
        if process.returncode != 0:
            said = stderr[:200].decode("utf-8", "replace").strip()
            return "failed", f"{argv[0]} exited with status {process.returncode}" + (f": {said}" if said else ""), []
        text = stdout[:_OUTPUT_LIMIT].decode("utf-8", "replace")
        try:
            samples, specs = (
                parse_json_metrics(text) if self.config.format == "json" else parse_exposition(text, self._taken)
            )
        except (ValueError, ExpositionError) as exc:
            return "failed", f"{argv[0]}: its output is not {self.config.format} metrics: {exc}", []
        refused = sorted({s.metric for s in samples} & self._taken)
        if refused:
            return "failed", f"{argv[0]}: {', '.join(refused)} are the agent's own metrics", []
        for spec in specs:
            self._specs.setdefault(spec.name, spec)
        return "ok", None, samples[: self.config.max_series]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended on its own meanwhile
        os.killpg(pid, signal.SIGKILL)
