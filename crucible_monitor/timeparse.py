"""Parsing times and label filters given by people: ``now``, ``1h`` (ago), ISO 8601, Unix seconds, ``k=v,k2=v2``."""

from __future__ import annotations

from datetime import UTC, datetime

from crucible_monitor.config import parse_duration

__all__ = ["parse_labels", "parse_time"]


def parse_time(text: str, now: float) -> float:
    """A point in time as Unix seconds.

    Accepts ``now``, a duration ago (``1h``, ``-30m``, ``2d``), ISO 8601 (a missing zone means UTC), or Unix seconds.

    Raises:
        ValueError: none of these forms.
    """
    value = text.strip()
    if value.lower() == "now":
        return now
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return now - parse_duration(value.removeprefix("-")).total_seconds()
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: use now, a duration ago (1h, 30m, 7d), ISO 8601 (2026-11-28T10:00:00Z) "
            "or Unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


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
