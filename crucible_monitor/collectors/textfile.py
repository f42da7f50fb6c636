"""Custom metrics from Prometheus text files: node_exporter's textfile convention (``*.prom`` in one directory).

Each cycle reads every ``*.prom`` file of ``collectors.textfile.directory`` with ``prometheus-client``'s parser.
Their series join the store under their own names (a name the agent's own collectors use is refused), with the
type the file declares: counters (and a histogram's or summary's ``_bucket``, ``_count``, ``_sum``) as counters,
the rest as gauges; units come from the name's suffix (``_seconds``, ``_bytes``, ``_ratio``...), else
``count``. Each file's modification time is ``textfile_mtime_seconds{file}``. A file that does not parse is a
blind spot that names the file and the line, and its series are left out; the other files go on. The catalogue
grows as new names appear.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Collection as Names
from pathlib import Path

from crucible_monitor.collectors.base import BlindSpot, Collection, Problems
from crucible_monitor.customconfig import TextfileConfig
from crucible_monitor.errors import CollectorError
from crucible_monitor.models import MetricKind, MetricSpec, Sample

__all__ = ["CATALOGUE", "UNITLESS", "ExpositionError", "TextfileCollector", "parse_exposition", "unit_of"]

_KEY = "collectors.textfile.directory"
CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec(
        "textfile_mtime_seconds", MetricKind.GAUGE, "seconds", "When each *.prom file was last written.", ("file",)
    ),
    MetricSpec("textfile_series", MetricKind.GAUGE, "series", "Series read from each *.prom file.", ("file",)),
)
_COUNTER_TYPES = {"counter"}
_COUNTER_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")
_UNITS = (
    ("_seconds_total", "seconds"),
    ("_bytes_total", "bytes"),
    ("_seconds", "seconds"),
    ("_bytes", "bytes"),
    ("_ratio", "ratio"),
    ("_celsius", "celsius"),
    ("_celsius_total", "celsius"),
)
UNITLESS = "count"
"""The unit of a custom metric whose name names none (``backups_total``, ``queue_depth``)."""


class ExpositionError(ValueError):
    """Text that is not Prometheus exposition format; ``line`` is 1-based."""

    def __init__(self, line: int, text: str, reason: str) -> None:
        super().__init__(f"line {line}: {reason}: {text[:80]!r}")
        self.line = line


def unit_of(name: str) -> str:
    """The unit a metric name's suffix names (``_seconds``, ``_bytes``...), else :data:`UNITLESS`."""
    return next((unit for suffix, unit in _UNITS if name.endswith(suffix)), UNITLESS)


def parse_exposition(
    text: str, taken: Names[str] = (), source: str = "a textfile"
) -> tuple[list[Sample], list[MetricSpec]]:
    """The samples and their catalogue entries in Prometheus text ``text`` (names in ``taken`` are refused;
    ``source`` is named in the description of a family without ``# HELP``).

    Raises:
        ExpositionError: a line does not parse, or uses a name of ``taken``; it says which line.
    """
    from prometheus_client.parser import text_string_to_metric_families  # imported with the collector only

    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        raise _locate(text, exc) from exc
    samples: list[Sample] = []
    specs: dict[str, MetricSpec] = {}
    for family in families:
        for sample in family.samples:
            if sample.name in taken:
                raise _locate(text, ValueError(f"{sample.name} is one of the agent's own metrics"), sample.name)
            if math.isnan(sample.value):
                continue
            counter = family.type in _COUNTER_TYPES or (
                family.type in ("histogram", "summary") and sample.name.endswith(_COUNTER_SUFFIXES)
            )
            kind = MetricKind.COUNTER if counter else MetricKind.GAUGE
            labels = tuple(sorted(sample.labels))
            known = specs.get(sample.name)
            if known is None or len(labels) > len(known.labels):
                description = family.documentation or f"From {source} ({family.type})."
                specs[sample.name] = MetricSpec(sample.name, kind, unit_of(sample.name), description, labels)
            samples.append(Sample(sample.name, float(sample.value), dict(sample.labels)))
    return samples, list(specs.values())


def _locate(text: str, error: ValueError, name: str | None = None) -> ExpositionError:
    """The first line that fails to parse alone (or that names ``name``), for a message an operator can act on."""
    from prometheus_client.parser import text_string_to_metric_families

    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if name is not None:
            if line.split("{")[0].split()[0] == name:
                return ExpositionError(number, line, str(error))
            continue
        try:
            list(text_string_to_metric_families(line + "\n"))
        except ValueError as exc:
            return ExpositionError(number, line, str(exc) or "does not parse")
    return ExpositionError(0, "", str(error))


class TextfileCollector:
    """Reads ``*.prom`` files of one directory each cycle (in a worker thread).

    Args:
        config: the ``collectors.textfile`` settings (``directory`` set).
        taken: the agent's own metric names, which a file may not use.
        clock: the collection time.
    """

    name = "textfile"

    def __init__(
        self, config: TextfileConfig, *, taken: Iterable[str] = (), clock: Callable[[], float] = time.time
    ) -> None:
        if config.directory is None:
            raise ValueError("collectors.textfile.directory is not set")
        self.directory: Path = config.directory
        self.config = config
        self._taken = frozenset(taken)
        self._clock = clock
        self._specs: dict[str, MetricSpec] = {spec.name: spec for spec in CATALOGUE}
        self._problems = Problems("textfile", "textfile")

    @property
    def catalogue(self) -> Sequence[MetricSpec]:
        """The file metrics and every custom metric seen so far."""
        return list(self._specs.values())

    async def collect(self) -> Collection:
        """Read every file once.

        Raises:
            CollectorError: the directory cannot be listed.
        """
        return await asyncio.to_thread(self._collect)

    def _collect(self) -> Collection:
        now = self._clock()
        try:
            files = sorted(p for p in self.directory.glob("*.prom") if p.is_file())
        except OSError as exc:
            raise CollectorError(f"cannot list {self.directory}: {exc.strerror or exc}") from exc
        samples: list[Sample] = []
        problems: list[str | BlindSpot] = []
        for path in files:
            try:
                stat = path.stat()
                text = path.read_text(encoding="utf-8")
                read, specs = parse_exposition(text, self._taken)
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(BlindSpot(str(path), _KEY, f"{path}: cannot read: {exc}"))
                continue
            except ExpositionError as exc:
                problems.append(BlindSpot(str(path), _KEY, f"{path}: {exc}"))
                continue
            room = self.config.max_series - len(samples)
            if len(read) > room:
                problems.append(f"{path}: {len(read)} series, only {max(room, 0)} kept (max_series)")
                read = read[: max(room, 0)]
            labels = {"file": path.name}
            samples += [
                Sample("textfile_mtime_seconds", stat.st_mtime, labels),
                Sample("textfile_series", len(read), labels),
            ]
            samples += read
            for spec in specs:
                self._specs.setdefault(spec.name, spec)
        return self._problems.collection(samples, problems, now)
