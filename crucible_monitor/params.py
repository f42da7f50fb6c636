"""The parameter forms people and clients write, parsed once for the HTTP API, the MCP tools and the CLI.

Times: ``now``, a duration ago (``2h``, ``-5m``), ``now-1h``, ISO 8601 (a missing zone means UTC) or Unix seconds.
Durations: ``30s``, ``5m``, ``2h``, ``7d`` (see :func:`~crucible_monitor.configtypes.parse_duration`) or a number of
seconds. Labels: ``k=v,k2=v2``. :class:`~crucible_monitor.remote.RemoteMonitor` writes times and durations with
:func:`wire_number` (``repr`` of a float), which these parsers read back exactly.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

from crucible_monitor.configtypes import OutOfRange, parse_duration

__all__ = [
    "DURATION_FORMS",
    "TIME_FORMS",
    "Seconds",
    "Span",
    "Time",
    "format_labels",
    "parse_labels",
    "parse_seconds",
    "parse_span",
    "parse_time",
    "wire_number",
]

TIME_FORMS = "now, a duration ago (30m, 6h, 7d, -5m, now-1h), ISO 8601 (2026-11-28T10:00:00Z) or Unix seconds"
DURATION_FORMS = "a duration such as 30s, 5m, 2h, 7d, or a number of seconds"
_LATEST = 253_402_300_799.0  # 9999-12-31T23:59:59Z
_TEXT_OR_NUMBER = {"anyOf": [{"type": "string"}, {"type": "number"}]}


def parse_time(text: str | float, now: float) -> float:
    """A point in time as Unix seconds, from any of :data:`TIME_FORMS`, between 1970 and the end of 9999.

    Raises:
        ValueError: none of these forms, or a time out of that range (the message says which).
    """
    moment = _parse_time(text, now)
    if not math.isfinite(moment) or not 0 <= moment <= _LATEST:
        raise OutOfRange(f"invalid time {text!r}: it must lie between 1970-01-01 and 9999-12-31 (UTC)")
    return moment


def _parse_time(text: str | float, now: float) -> float:
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    value = str(text).strip()
    if value.lower() == "now":
        return now
    try:
        return float(value)
    except ValueError:
        pass
    ago = value.lower().removeprefix("now").strip().removeprefix("-").strip()
    try:
        return now - parse_duration(ago).total_seconds()
    except OutOfRange:
        raise
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"invalid time {text!r}: use {TIME_FORMS}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_seconds(text: str | float) -> float:
    """A duration in seconds, from any of :data:`DURATION_FORMS`.

    Raises:
        ValueError: not a duration (the message lists the forms), or one out of range (it states the range).
    """
    if isinstance(text, str):
        with contextlib.suppress(ValueError):
            text = float(text.strip())
    try:
        return parse_duration(text).total_seconds()
    except OutOfRange:
        raise
    except ValueError:
        raise ValueError(f"invalid duration {text!r}: use {DURATION_FORMS}") from None


def parse_span(text: str | float | timedelta) -> timedelta:
    """:func:`parse_seconds` as a timedelta (a timedelta passes through)."""
    return text if isinstance(text, timedelta) else timedelta(seconds=parse_seconds(text))


def parse_labels(text: str) -> dict[str, str]:
    """``mountpoint=/,device=vda`` → ``{"mountpoint": "/", "device": "vda"}``.

    Raises:
        ValueError: a part without ``=`` or with an empty name.
    """
    labels = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"invalid label filter {part!r}: use name=value, separated by commas")
        labels[name.strip()] = value.strip()
    return labels


def format_labels(labels: Mapping[str, str]) -> str:
    """The inverse of :func:`parse_labels`."""
    return ",".join(f"{k}={v}" for k, v in labels.items())


def wire_number(value: float) -> str:
    """A time or a duration in seconds as text that :func:`parse_time` and :func:`parse_seconds` read back exactly."""
    return repr(float(value))


def _time_now(value: object) -> float:
    if isinstance(value, str | int | float):
        return parse_time(value, time.time())
    raise ValueError(f"invalid time {value!r}: use {TIME_FORMS}")


def _seconds(value: object) -> float:
    if isinstance(value, str | int | float):
        return parse_seconds(value)
    raise ValueError(f"invalid duration {value!r}: use {DURATION_FORMS}")


def _span(value: object) -> timedelta:
    if isinstance(value, str | int | float | timedelta):
        return parse_span(value)
    raise ValueError(f"invalid duration {value!r}: use {DURATION_FORMS}")


Time = Annotated[float, BeforeValidator(_time_now), WithJsonSchema({**_TEXT_OR_NUMBER, "description": TIME_FORMS})]
"""A point in time (Unix seconds) given in any of :data:`TIME_FORMS`; relative forms count from now."""
Seconds = Annotated[
    float, BeforeValidator(_seconds), WithJsonSchema({**_TEXT_OR_NUMBER, "description": DURATION_FORMS})
]
"""A duration in seconds given in any of :data:`DURATION_FORMS`."""
Span = Annotated[timedelta, BeforeValidator(_span), WithJsonSchema({**_TEXT_OR_NUMBER, "description": DURATION_FORMS})]
"""A duration as a timedelta given in any of :data:`DURATION_FORMS`."""
