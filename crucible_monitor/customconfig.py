"""Settings of the custom metrics: Prometheus text files, allowlisted commands, plugins, and pushes.

The first three are part of the ``collectors:`` tree (:class:`~crucible_monitor.collectorconfig.CollectorsConfig`).
Each names files or programs, so none of them changes over the config API (``liveconfig``): only in the file.
:class:`PushConfig` is the top-level ``push:`` section (limits only: the config API may change them).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from crucible_monitor.configtypes import PositiveDuration, StrictModel

__all__ = ["CommandConfig", "PluginConfig", "PushConfig", "TextfileConfig"]


class TextfileConfig(StrictModel):
    """Prometheus text-format files (``*.prom``) in one directory, node_exporter's textfile convention: cron jobs
    write them atomically (to a temporary name, then ``mv``)."""

    enabled: bool = Field(True, description="Runs when directory is set.")
    directory: Path | None = Field(None, description="e.g. /var/lib/crucible-monitor/textfile")
    interval: PositiveDuration | None = Field(None, description="Defaults to agent.collect_interval.")
    max_series: int = Field(10_000, ge=1, le=1_000_000, description="Series read per cycle at most (the rest left).")


class CommandConfig(StrictModel):
    """A command run on a schedule as an argument list (never through a shell); its output is metrics."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="The command label (letters, digits, _ . -).")
    argv: list[str] = Field(min_length=1, description="The program (an absolute path) and its arguments.")
    interval: PositiveDuration = timedelta(seconds=60)
    timeout: PositiveDuration = Field(timedelta(seconds=10), description="Killed (its process group) past this.")
    format: Literal["prometheus", "json"] = Field(
        "prometheus",
        description="prometheus: `name{labels} value` lines; json: {name: value} or "
        '[{"name": ..., "labels": {...}, "value": ...}]',
    )
    max_series: int = Field(1_000, ge=1, le=100_000, description="Series kept from one run at most.")

    @field_validator("argv")
    @classmethod
    def _absolute(cls, argv: list[str]) -> list[str]:
        if not Path(argv[0]).is_absolute():
            raise ValueError(f"the program must be an absolute path, not {argv[0]!r} (no PATH lookup, no shell)")
        return argv


class PluginConfig(StrictModel):
    """A collector from an installed package (entry point group ``crucible_monitor.collectors``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    enabled: bool = True
    interval: PositiveDuration | None = Field(None, description="Defaults to agent.collect_interval.")

    def settings(self) -> dict[str, Any]:
        """The plugin's own settings: every key but ``enabled`` and ``interval``."""
        return dict(self.model_extra or {})


class PushConfig(StrictModel):
    """Metrics pushed to ``POST /api/v1/metrics`` (Prometheus text or JSON, a token of scope ``operate``), stored
    as they arrive; each limit, when a push passes it, is named in the refusal (413 or 422)."""

    enabled: bool = Field(True, description="false: every push is refused (403).")
    max_series_per_push: int = Field(1_000, ge=1, le=100_000, description="Series in one push at most (413).")
    max_series: int = Field(
        10_000, ge=1, le=1_000_000, description="Distinct pushed series at most, all pushes together (413)."
    )
    max_labels: int = Field(16, ge=0, le=64, description="Labels on one series at most (422).")
    max_label_length: int = Field(200, ge=1, le=10_000, description="Characters in a label value at most (422).")
    forget_after: PositiveDuration = Field(
        timedelta(days=1), description="A series not pushed for this long no longer counts against max_series."
    )
