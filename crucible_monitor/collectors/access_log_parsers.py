"""Access-log lines to requests: Caddy's JSON log and the nginx/Apache combined format.

A request's path is normalised (query dropped; numeric, UUID and long hex segments collapsed to ``{id}``) and its
vhost is the request's Host without its port, or the file's configured ``host``. Latency comes from Caddy's
``duration`` and, in the combined format, from an optional last field after the user agent holding nginx's
``$request_time`` (both in seconds).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import NamedTuple

import orjson

__all__ = [
    "OTHER_PATH",
    "AccessRecord",
    "CaddyParser",
    "CombinedParser",
    "LineParser",
    "Row",
    "normalise_path",
    "parse_caddy_line",
    "parse_combined_line",
]

OTHER_PATH = "(other)"
"""The path of a request target that is no path (``*``, a full URL), and of endpoints past ``max_paths``."""

_MAX_PATH_CHARS = 200
_CACHE_SIZE = 10_000
_DIGIT = re.compile(r"\d")
_ID_SEGMENT = re.compile(
    r"\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,}"
)
_COMBINED = re.compile(
    rb'\S+ \S+ \S+ \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) \S+'
    rb'(?: "(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*"(?: (\d+(?:\.\d+)?))?)?'
)


class AccessRecord(NamedTuple):
    """One request from an access log."""

    ts: float
    vhost: str
    method: str
    path: str
    """Normalised: see :func:`normalise_path`."""
    status: int
    duration: float | None
    """Seconds, when the log records it."""


def normalise_path(uri: str) -> str:
    """The path of a request target, without query or fragment, with id-like segments as ``{id}``."""
    path = uri.split("?", 1)[0].split("#", 1)[0] or "/"
    if _DIGIT.search(path):
        path = "/".join("{id}" if _ID_SEGMENT.fullmatch(part) else part for part in path.split("/"))
    return path[:_MAX_PATH_CHARS]


def _vhost(host: str) -> str:
    """A Host header without its port, lower case."""
    if host.startswith("["):  # [::1]:8080
        return host[: host.find("]") + 1].lower() or "(none)"
    name, _, port = host.rpartition(":")
    return (name if name and port.isdigit() else host).lower() or "(none)"


Row = tuple[float, str, str, str, int, float | None]
"""An :class:`AccessRecord`'s fields: the parsers' hot loops make plain tuples."""


class LineParser:
    """Lines of one format to rows, with the caches real traffic makes worthwhile (it repeats its URIs)."""

    def __init__(self, host: str | None) -> None:
        self.host = host
        self._paths: dict[str, str] = {}

    def rows(self, lines: Iterable[bytes]) -> Iterator[Row | None]:
        """One row per line; None for a line that does not parse."""
        raise NotImplementedError

    def path(self, uri: str) -> str:
        """:func:`normalise_path`, cached."""
        path = self._paths.get(uri)
        if path is None:
            if len(self._paths) >= _CACHE_SIZE:
                self._paths.clear()
            path = self._paths[uri] = normalise_path(uri)
        return path


class CaddyParser(LineParser):
    """Caddy's JSON: ``ts`` (Unix seconds or ISO 8601), ``request.{host,method,uri}``, ``status``, ``duration``."""

    def __init__(self, host: str | None) -> None:
        super().__init__(host)
        self._vhosts: dict[str, str] = {}

    def rows(self, lines: Iterable[bytes]) -> Iterator[Row | None]:
        loads, paths, vhosts, host = orjson.loads, self._paths, self._vhosts, self.host
        for line in lines:
            try:
                entry = loads(line)
                request = entry["request"]
                status = entry["status"]
                uri = request["uri"]
                ts = entry["ts"]
                if type(ts) is not float:
                    ts = float(ts) if isinstance(ts, int) else datetime.fromisoformat(ts).timestamp()
                if type(status) is not int:
                    status = int(status)
                if host is None:
                    raw = request.get("host") or ""
                    vhost = vhosts.get(raw)
                    if vhost is None:
                        if len(vhosts) >= _CACHE_SIZE:
                            vhosts.clear()
                        vhost = vhosts[raw] = _vhost(raw)
                else:
                    vhost = host
                path = paths.get(uri) or self.path(uri)
                method = request.get("method") or "-"
                duration = entry.get("duration")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                yield None  # not JSON, not an access entry, or fields of the wrong types
                continue
            yield (
                ts,
                vhost,
                method if type(method) is str else "-",
                path,
                status,
                duration if type(duration) is float else float(duration) if type(duration) is int else None,
            )


class CombinedParser(LineParser):
    """The combined format, with an optional ``$request_time`` (seconds) after the user agent."""

    def __init__(self, host: str) -> None:
        super().__init__(host)
        self._time_text = b""
        self._time = 0.0

    def rows(self, lines: Iterable[bytes]) -> Iterator[Row | None]:
        host = self.host or "(none)"
        for line in lines:
            match = _COMBINED.match(line)
            if match is None:
                yield None
                continue
            try:
                ts = self._timestamp(match.group(1))
            except (UnicodeDecodeError, ValueError):
                yield None
                continue
            method, _, rest = match.group(2).decode("utf-8", "replace").partition(" ")
            target = rest.rpartition(" HTTP/")[0] or rest
            duration = match.group(4)
            yield (
                ts,
                host,
                method or "-",
                self.path(target) if target.startswith("/") else OTHER_PATH,
                int(match.group(3)),
                float(duration) if duration is not None else None,
            )

    def _timestamp(self, text: bytes) -> float:
        """``28/Nov/2026:10:00:00 +0000`` as Unix seconds (consecutive lines mostly share it)."""
        if text != self._time_text:
            self._time = datetime.strptime(text.decode("ascii"), "%d/%b/%Y:%H:%M:%S %z").timestamp()
            self._time_text = text
        return self._time


def parse_caddy_line(line: bytes, host: str | None = None) -> AccessRecord | None:
    """One line of Caddy's JSON access log; None when it is not an access entry.

    ``host`` overrides the request's Host as the vhost.
    """
    row = next(CaddyParser(host).rows([line]))
    return AccessRecord(*row) if row is not None else None


def parse_combined_line(line: bytes, host: str) -> AccessRecord | None:
    """One line of the combined format (an optional ``$request_time`` after the user agent); None if it is not one."""
    row = next(CombinedParser(host).rows([line]))
    return AccessRecord(*row) if row is not None else None
