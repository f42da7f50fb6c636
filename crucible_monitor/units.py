"""Human forms of raw values: ``7.8 GiB``, ``42.1 %``, ``3 hours``, ``1.98 GHz``, by a metric's unit."""

from __future__ import annotations

from datetime import timedelta

import humanize

__all__ = ["human", "human_bytes", "human_duration", "human_ratio"]


def human_bytes(value: float) -> str:
    """``8375186227`` → ``7.8 GiB``."""
    return str(humanize.naturalsize(value, binary=True, format="%.1f"))


def human_ratio(value: float) -> str:
    """``0.4213`` → ``42.1 %``."""
    return f"{value * 100:.1f} %"


def human_duration(seconds: float) -> str:
    """``93784`` → ``1 day, 2 hours and 3 minutes``; sub-second values in ms."""
    if abs(seconds) < 1:
        return f"{seconds * 1000:.0f} ms"
    if abs(seconds) < 60:
        return f"{seconds:.1f} s"
    return str(humanize.precisedelta(timedelta(seconds=abs(seconds)), minimum_unit="minutes", format="%0.0f"))


def human(value: float, unit: str) -> str:
    """A value in a metric's unit as people read it; rates of ``bytes`` are ``…/s``."""
    per_second = unit.endswith("/s")
    base = unit.removesuffix("/s")
    match base:
        case "bytes":
            text = human_bytes(value)
        case "ratio":
            text = human_ratio(value)
        case "seconds":
            text = human_duration(value)
        case "hertz":
            text = f"{value / 1e9:.2f} GHz" if abs(value) >= 1e9 else f"{value / 1e6:.0f} MHz"
        case _:
            text = f"{value:,.4g}" + (f" {base}" if base else "")
    return text + ("/s" if per_second else "")
