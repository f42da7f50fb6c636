"""PHP-FPM pools, from each pool's status page (``pm.status_path``) in its JSON form.

A pool's status is read over HTTP(S), where the web server exposes it, or straight from the pool over FastCGI
(``unix:///run/php/php8.2-fpm.sock`` or ``tcp://127.0.0.1:9000``), which needs no web server configuration: the
status page is never public that way. Per pool (label ``pool``, the configured name): active and idle processes,
the listen queue, max children reached, slow requests, accepted connections. A pool that cannot be read is
``php_fpm_up 0`` and one ``COLLECTOR_ERROR`` event when it starts failing; the other pools are still read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from crucible_monitor.collectors.base import BlindSpot, Collection, Problems
from crucible_monitor.config import PhpFpmConfig, PhpFpmPoolConfig
from crucible_monitor.models import MetricKind, MetricSpec, Sample
from crucible_monitor.untrusted import mask_secrets

__all__ = ["CATALOGUE", "FastCgiError", "PhpFpmCollector", "PhpFpmConfig", "PhpFpmPoolConfig", "fastcgi_get"]

logger = logging.getLogger(__name__)

_G, _C = MetricKind.GAUGE, MetricKind.COUNTER
_POOL = ("pool",)
CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec("php_fpm_up", _G, "boolean", "1 when the pool's status page answered this cycle.", _POOL),
    MetricSpec("php_fpm_processes", _G, "processes", "Worker processes, active or idle.", ("pool", "state")),
    MetricSpec(
        "php_fpm_max_active_processes", _G, "processes", "Most processes active at once since FPM started.", _POOL
    ),
    MetricSpec("php_fpm_listen_queue", _G, "connections", "Requests waiting for a free worker.", _POOL),
    MetricSpec("php_fpm_max_listen_queue", _G, "connections", "Longest listen queue since FPM started.", _POOL),
    MetricSpec("php_fpm_listen_queue_length", _G, "connections", "Size of the socket's listen backlog.", _POOL),
    MetricSpec("php_fpm_accepted_connections_total", _C, "connections", "Requests accepted by the pool.", _POOL),
    MetricSpec(
        "php_fpm_max_children_reached_total",
        _C,
        "times",
        "Times the pool wanted another worker but was at pm.max_children.",
        _POOL,
    ),
    MetricSpec("php_fpm_slow_requests_total", _C, "requests", "Requests slower than request_slowlog_timeout.", _POOL),
    MetricSpec("php_fpm_uptime_seconds", _G, "seconds", "Seconds since FPM started.", _POOL),
)

_GAUGES = {
    "max active processes": "php_fpm_max_active_processes",
    "listen queue": "php_fpm_listen_queue",
    "max listen queue": "php_fpm_max_listen_queue",
    "listen queue len": "php_fpm_listen_queue_length",
    "accepted conn": "php_fpm_accepted_connections_total",
    "max children reached": "php_fpm_max_children_reached_total",
    "slow requests": "php_fpm_slow_requests_total",
    "start since": "php_fpm_uptime_seconds",
}
_SCHEMES = ("http", "https", "unix", "tcp")
_FCGI_VERSION = 1
_FCGI_BEGIN_REQUEST, _FCGI_END_REQUEST, _FCGI_PARAMS, _FCGI_STDIN, _FCGI_STDOUT, _FCGI_STDERR = 1, 3, 4, 5, 6, 7
_FCGI_RESPONDER = 1
_REQUEST_ID = 1
_HEADER = struct.Struct("!BBHHBx")
_MAX_ERROR_CHARS = 200


class FastCgiError(Exception):
    """The FastCGI exchange failed: refused, cut short, or not answered as a responder."""


def _record(kind: int, content: bytes) -> bytes:
    return _HEADER.pack(_FCGI_VERSION, kind, _REQUEST_ID, len(content), 0) + content


def _pair(name: str, value: str) -> bytes:
    encoded = [name.encode(), value.encode()]
    lengths = b"".join(bytes([len(x)]) if len(x) < 128 else struct.pack("!I", len(x) | 0x80000000) for x in encoded)
    return lengths + b"".join(encoded)


async def fastcgi_get(address: str, script: str, query: str, *, timeout: float) -> tuple[int, bytes]:
    """``GET script?query`` straight from a FastCGI server (``unix:///path`` or ``tcp://host:port``).

    Returns the status (from the ``Status:`` header; 200 when there is none) and the body.

    Raises:
        FastCgiError: the server cannot be reached or its answer is not a complete FastCGI response.
    """
    parts = urlsplit(address)
    params = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": script,
        "SCRIPT_FILENAME": script,
        "REQUEST_URI": f"{script}?{query}",
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    request = (
        _record(_FCGI_BEGIN_REQUEST, struct.pack("!HB5x", _FCGI_RESPONDER, 0))
        + _record(_FCGI_PARAMS, b"".join(_pair(k, v) for k, v in params.items()))
        + _record(_FCGI_PARAMS, b"")
        + _record(_FCGI_STDIN, b"")
    )
    try:
        async with asyncio.timeout(timeout):
            if parts.scheme == "unix":
                reader, writer = await asyncio.open_unix_connection(parts.path)
            else:
                reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            try:
                writer.write(request)
                await writer.drain()
                stdout = await _read_response(reader)
            finally:
                writer.close()
                await writer.wait_closed()
    except TimeoutError:
        raise FastCgiError(f"no answer within {timeout:g}s") from None
    except (OSError, asyncio.IncompleteReadError) as exc:
        raise FastCgiError(str(exc) or type(exc).__name__) from None
    head, _, body = stdout.partition(b"\r\n\r\n")
    status = 200
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"status":
            code = value.split()[0] if value.split() else b""
            if not code.isdigit():
                raise FastCgiError(f"invalid Status header {line[:_MAX_ERROR_CHARS]!r}")
            status = int(code)
    return status, body


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    stdout: list[bytes] = []
    while True:
        _, kind, _, length, padding = _HEADER.unpack(await reader.readexactly(_HEADER.size))
        content = await reader.readexactly(length + padding)
        if kind == _FCGI_STDOUT:
            stdout.append(content[:length])
        elif kind == _FCGI_STDERR:
            logger.debug("FastCGI stderr: %s", content[:length].decode("utf-8", "replace"))
        elif kind == _FCGI_END_REQUEST:
            return b"".join(stdout)


class PhpFpmCollector:
    """Reads every configured pool's status page."""

    name = "php_fpm"
    catalogue: Sequence[MetricSpec] = CATALOGUE

    def __init__(self, config: PhpFpmConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._problems = Problems(self.name, "php-fpm")

    async def aclose(self) -> None:
        """Close the HTTP client (a later :meth:`collect` opens a new one)."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def collect(self) -> Collection:
        """Read every pool at once."""
        results = await asyncio.gather(*(self._read(pool) for pool in self.config.pools))
        now = self._clock()
        samples: list[Sample] = []
        problems: list[str | BlindSpot] = []
        for index, (pool, result) in enumerate(zip(self.config.pools, results, strict=True)):
            labels = {"pool": pool.name}
            if isinstance(result, tuple):
                field, error = result
                key = f"collectors.php_fpm.pools[{index}].{field}"
                problems.append(BlindSpot(f"pool {pool.name}", key, f"pool {pool.name}: {error}"))
                samples.append(Sample("php_fpm_up", 0.0, labels))
                continue
            samples.append(Sample("php_fpm_up", 1.0, labels))
            samples += [
                Sample("php_fpm_processes", float(result[key]), {**labels, "state": state})
                for key, state in (("active processes", "active"), ("idle processes", "idle"))
                if key in result
            ]
            samples += [Sample(metric, float(result[key]), labels) for key, metric in _GAUGES.items() if key in result]
        return self._problems.collection(samples, problems, now)

    async def _read(self, pool: PhpFpmPoolConfig) -> dict[str, Any] | tuple[str, str]:
        """The pool's status fields, or the setting to look at (``status_url``, ``status_path``) and what went wrong."""
        timeout = pool.timeout.total_seconds()
        parts = urlsplit(pool.status_url)
        page = "status_url"
        try:
            if parts.scheme in ("unix", "tcp"):
                status, body = await fastcgi_get(pool.status_url, pool.status_path, "json", timeout=timeout)
                where, page = f"{pool.status_path} over FastCGI", "status_path"
            else:
                response = await self._http().get(pool.status_url, params={"json": ""}, timeout=timeout)
                status, body, where = response.status_code, response.content, mask_secrets(pool.status_url)
        except FastCgiError as exc:
            return page, f"cannot read the status page: {str(exc)[:_MAX_ERROR_CHARS]}"
        except httpx.HTTPError as exc:
            return page, f"cannot read the status page: {(str(exc) or type(exc).__name__)[:_MAX_ERROR_CHARS]}"
        if status != 200:
            return page, f"the status page at {where} answered {status} (is pm.status_path set to it?)"
        try:
            fields = json.loads(body)
        except ValueError:
            return page, f"the status page at {where} is not JSON"
        if not isinstance(fields, dict) or "active processes" not in fields:
            return page, f"the status page at {where} is not PHP-FPM's"
        return fields

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client
