"""HTTP(S) endpoint checks: up or down, latency, status code, keyword, and the TLS certificate's expiry.

One :class:`HttpCheckCollector` per configured check; the agent schedules each at its own ``check.interval``. A
check is retried with exponential backoff before it counts as failed, and every failure is classified
(:data:`~crucible_monitor.schemas.FailureKind`) from the exception chain, not from message text. Events are
recorded on transitions only: ``CHECK_FAILED`` when a check starts failing, ``CHECK_RECOVERED`` when it comes back.

Request headers may carry tokens, so they never reach logs, errors or events.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import httpx
from cryptography import x509
from cryptography.x509.oid import NameOID

from crucible_monitor.collectors.base import Collection
from crucible_monitor.config import HttpCheckConfig
from crucible_monitor.configtypes import mask_url
from crucible_monitor.errors import CollectorError
from crucible_monitor.models import Event, EventKind, MetricKind, MetricSpec, Sample, Severity
from crucible_monitor.schemas import CheckResult, FailureKind

__all__ = ["CATALOGUE", "MAX_BODY_BYTES", "HttpCheckCollector"]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
"""At most this much of the body is searched for the keyword."""

_MAX_ERROR_CHARS = 200

_LABELS = ("check",)
CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec("http_check_up", MetricKind.GAUGE, "boolean", "1 when the check passed, 0 when it failed.", _LABELS),
    MetricSpec(
        "http_check_duration_seconds",
        MetricKind.GAUGE,
        "seconds",
        "Time of the last attempt from request to complete response; only when a response came.",
        _LABELS,
    ),
    MetricSpec(
        "http_check_status_code",
        MetricKind.GAUGE,
        "code",
        "HTTP status of the last response (after redirects).",
        _LABELS,
    ),
    MetricSpec(
        "http_check_attempts", MetricKind.GAUGE, "attempts", "Attempts the last check took (1 + retries).", _LABELS
    ),
    MetricSpec(
        "http_check_cert_expiry_seconds",
        MetricKind.GAUGE,
        "seconds",
        "Seconds until the server certificate's notAfter (negative once expired); https only.",
        _LABELS,
    ),
    MetricSpec(
        "http_check_failures_total", MetricKind.COUNTER, "checks", "Failed checks since the agent started.", _LABELS
    ),
)


@dataclass(frozen=True)
class _Cert:
    expires_at: float
    issuer: str
    subject: str


@dataclass(frozen=True)
class _Attempt:
    failure: FailureKind | None
    error: str | None = None
    status_code: int | None = None
    duration_seconds: float | None = None
    cert: _Cert | None = None


class HttpCheckCollector:
    """Runs one configured HTTP(S) check per :meth:`collect`; keeps the last result in ``result``."""

    catalogue: Sequence[MetricSpec] = CATALOGUE

    def __init__(
        self,
        check: HttpCheckConfig,
        *,
        clock: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.check = check
        self.name = f"http_check:{check.name}"
        self.result: CheckResult | None = None
        self._clock = clock
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._failures_total = 0

    async def aclose(self) -> None:
        """Close the HTTP client (a later :meth:`collect` opens a new one)."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def collect(self) -> Collection:
        """Run the check, retrying failures, and report samples and any state-change event.

        Raises:
            CollectorError: the check cannot run at all (its ``ca_file`` cannot be loaded).
        """
        client = self._get_client()
        attempts = 0
        while True:
            attempts += 1
            attempt = await self._attempt(client)
            if attempt.failure is None or attempts > self.check.retries:
                break
            delay = self.check.retry_backoff.total_seconds() * 2 ** (attempts - 1)
            logger.debug(
                "check %s attempt %d failed (%s), retrying in %.3gs", self.check.name, attempts, attempt.failure, delay
            )
            await asyncio.sleep(delay)
        return self._record(attempt, attempts)

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                verify=self._ssl_context(),
                timeout=self.check.timeout.total_seconds(),
                follow_redirects=True,
                # A fresh connection per check: measures the handshake and reads the certificate every time.
                limits=httpx.Limits(max_keepalive_connections=0),
            )
        return self._client

    def _ssl_context(self) -> ssl.SSLContext | Literal[False]:
        if not self.check.verify_tls:
            return False
        cafile = str(self.check.ca_file) if self.check.ca_file is not None else None
        try:
            return ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise CollectorError(f"http check {self.check.name}: cannot load ca_file {cafile}: {exc}") from exc

    async def _attempt(self, client: httpx.AsyncClient) -> _Attempt:
        timeout = self.check.timeout.total_seconds()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout):
                return await self._request(client, started)
        except (httpx.TimeoutException, TimeoutError):
            return _Attempt("timeout", f"no complete response within {timeout:g}s")
        except httpx.TooManyRedirects:
            return _Attempt("status", "too many redirects")
        except httpx.HTTPError as exc:
            return _Attempt(_classify(exc), _describe(exc))

    async def _request(self, client: httpx.AsyncClient, started: float) -> _Attempt:
        check = self.check
        async with client.stream(
            check.method, check.url, headers={k: v.get_secret_value() for k, v in check.headers.items()}
        ) as response:
            cert = _peer_certificate(response)
            code = response.status_code
            if code not in check.expected_status:
                expected = ", ".join(map(str, check.expected_status))
                return _Attempt("status", f"status {code}, expected {expected}", code, _since(started), cert)
            if check.keyword is None:
                return _Attempt(None, None, code, _since(started), cert)
            body = await _read_bounded(response)
            text = _decode(body, response.encoding)
            if check.keyword not in text:
                error = f"keyword not found in the first {len(body)} bytes"
                return _Attempt("keyword", error, code, _since(started), cert)
            return _Attempt(None, None, code, _since(started), cert)

    def _record(self, attempt: _Attempt, attempts: int) -> Collection:
        now = self._clock()
        previous = self.result
        ok = attempt.failure is None
        if not ok:
            self._failures_total += 1
        consecutive = 0 if ok else (previous.consecutive_failures if previous else 0) + 1
        cert = attempt.cert
        expiry = cert.expires_at - now if cert else None
        result = CheckResult(
            name=self.check.name,
            url=mask_url(self.check.url),
            ok=ok,
            status_code=attempt.status_code,
            duration_seconds=attempt.duration_seconds,
            failure=attempt.failure,
            error=attempt.error,
            attempts=attempts,
            checked_at=now,
            consecutive_failures=consecutive,
            tls_expires_at=cert.expires_at if cert else None,
            tls_days_left=expiry / 86400 if expiry is not None else None,
            tls_issuer=cert.issuer if cert else None,
            tls_subject=cert.subject if cert else None,
        )
        self.result = result
        labels = {"check": self.check.name}
        samples = [
            Sample("http_check_up", 1.0 if ok else 0.0, labels, now),
            Sample("http_check_attempts", float(attempts), labels, now),
            Sample("http_check_failures_total", float(self._failures_total), labels, now),
        ]
        if attempt.status_code is not None:
            samples.append(Sample("http_check_status_code", float(attempt.status_code), labels, now))
        if attempt.duration_seconds is not None:
            samples.append(Sample("http_check_duration_seconds", round(attempt.duration_seconds, 6), labels, now))
        if expiry is not None:
            samples.append(Sample("http_check_cert_expiry_seconds", round(expiry), labels, now))
        return Collection(samples=samples, events=self._events(previous, result))

    def _events(self, previous: CheckResult | None, result: CheckResult) -> list[Event]:
        name = self.check.name
        if not result.ok and (previous is None or previous.ok):
            logger.warning("http check %s failed: %s (%s)", name, result.failure, result.error)
            data = {"failure": result.failure, "status_code": result.status_code, "error": result.error}
            message = f"HTTP check {name} failed: {result.failure} ({result.error})"
            return [Event(EventKind.CHECK_FAILED, name, message, Severity.WARNING, data, result.checked_at)]
        if result.ok and previous is not None and not previous.ok:
            logger.info("http check %s recovered after %d failed checks", name, previous.consecutive_failures)
            data = {"status_code": result.status_code, "failed_checks": previous.consecutive_failures}
            message = f"HTTP check {name} recovered (status {result.status_code})"
            return [Event(EventKind.CHECK_RECOVERED, name, message, Severity.INFO, data, result.checked_at)]
        return []


def _since(started: float) -> float:
    return time.perf_counter() - started


async def _read_bounded(response: httpx.Response) -> bytes:
    """At most :data:`MAX_BODY_BYTES` of the (decoded) body."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= MAX_BODY_BYTES:
            break
    return b"".join(chunks)[:MAX_BODY_BYTES]


def _decode(body: bytes, encoding: str | None) -> str:
    try:
        return body.decode(encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def _peer_certificate(response: httpx.Response) -> _Cert | None:
    """The certificate the server presented on this response's connection (read with verification on or off)."""
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        logger.debug("unparseable peer certificate from %s", response.url.host)
        return None
    return _Cert(cert.not_valid_after_utc.timestamp(), _common_name(cert.issuer), _common_name(cert.subject))


def _common_name(name: x509.Name) -> str:
    """The CN of ``name``, or its full RFC 4514 form when it has none."""
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _classify(exc: httpx.HTTPError) -> FailureKind:
    """The failure class of a transport error, from the exceptions that caused it."""
    chain = _chain(exc)
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return "tls"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return "dns"
    if any(isinstance(e, TimeoutError) for e in chain):
        return "timeout"
    # Refused, unreachable, reset, or a server that closed the connection without a valid response.
    return "connect"


def _describe(exc: httpx.HTTPError) -> str:
    """A short error text from the root cause; httpx messages never contain request headers."""
    root = _chain(exc)[-1]
    text = str(root) or type(root).__name__
    return text[:_MAX_ERROR_CHARS]
