"""The building blocks of config models: durations people write (``30s``, ``7d``), checked names and URLs, unique
names, and the strict, frozen base model with secret-file support. Kept apart from :mod:`crucible_monitor.config` so
that collectors, alerting and analysis can define their own settings models without importing the whole config tree
(which imports them)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from crucible_monitor.configfile import read_secret_files

__all__ = [
    "Duration",
    "PositiveDuration",
    "StrictModel",
    "WebUrl",
    "check_unique",
    "format_duration",
    "matching",
    "parse_duration",
]


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class OutOfRange(ValueError):
    """A value of the right form outside the range the message states."""


MAX_DURATION_DAYS = 36_500
"""The longest duration anything accepts (a hundred years)."""
MAX_DURATION_SECONDS = MAX_DURATION_DAYS * 86400.0


def parse_duration(value: object) -> timedelta:
    """Parse ``30s``, ``5m``, ``1h30m``, ``7d``, ``2w``, ``250ms`` (or a number of seconds) into a timedelta.

    Raises:
        ValueError: the text is not a duration.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h or 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        parts = list(_DURATION_PART.finditer(text))
        if not text or "".join(p.group(0) for p in parts) != text:
            raise ValueError(f"invalid duration {value!r}: use e.g. 30s, 5m, 1h, 7d (units: ms, s, m, h, d, w)")
        seconds = sum(float(p.group(1)) * _DURATION_UNITS[p.group(2)] for p in parts)
    else:
        raise ValueError("expected a duration such as 30s, 5m, 1h or 7d")
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_DURATION_SECONDS:
        raise OutOfRange(f"invalid duration {value!r}: it must lie between 0s and {MAX_DURATION_DAYS}d")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest text :func:`parse_duration` reads back as ``value`` (``90s`` → ``1m30s``)."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1)):
        count, total_ms = divmod(total_ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
PositiveDuration = Annotated[Duration, Field(gt=timedelta(0))]


def matching(pattern: str, problem: str) -> BeforeValidator:
    """A validator that keeps a value as text when all of it matches ``pattern``; else ``problem`` is the error.

    ``problem`` may name the text as ``{text!r}``.
    """
    compiled = re.compile(pattern, re.DOTALL)

    def check(value: object) -> str:
        text = str(value)
        if compiled.fullmatch(text) is None:
            raise ValueError(problem.format(text=text))
        return text

    return BeforeValidator(check)


def check_unique(names: Iterable[str], what: str) -> None:
    """Raise when a name repeats: ``{what} must be unique; repeated: a, b``.

    Raises:
        ValueError: some name occurs more than once.
    """
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"{what} must be unique; repeated: {', '.join(repeated)}")


WebUrl = Annotated[
    str, matching(r"https?://[^/\s]+.*", "invalid URL {text!r}: it must start with http:// or https:// and name a host")
]
"""An ``http://`` or ``https://`` URL that names a host, kept as written."""


class StrictModel(BaseModel):
    """Strict and frozen: unknown keys are errors, loaded config never changes under a running agent.

    ``config_aliases`` names the keys a model also accepts (another product's spelling) with the canonical keys each
    is read as; the model's own before-validator translates them, check-config reports them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    config_aliases: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """Turn ``x_file: PATH`` into ``x: <content of PATH>`` for every secret field ``x``."""
        secrets = {name for name, f in cls.model_fields.items() if "SecretStr" in repr(f.annotation)}
        return read_secret_files(data, secrets)


REDACTED = "**********"
"""What every secret looks like in output (pydantic's SecretStr rendering)."""


def mask_url(url: str) -> str:
    """``url`` with the password of its userinfo replaced by :data:`REDACTED` (``https://u:p@h`` → ``https://u:***@h``);
    any other text comes back as it is."""
    parts = urlsplit(url)
    if "@" not in parts.netloc or ":" not in parts.netloc.rpartition("@")[0]:
        return url
    user = parts.netloc.rpartition("@")[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{parts.netloc.rpartition('@')[2]}"))
