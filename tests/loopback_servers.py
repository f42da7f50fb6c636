"""Real HTTP and HTTPS servers on 127.0.0.1 with scripted replies, for tests of anything that speaks HTTP.

    with serve_http() as server:
        server.script("/health", Reply(200, b"ok"))
        server.script("/flaky", fail_then_succeed(2))
        gate = threading.Event()
        server.script("/slow", Reply(200, gate=gate))   # answers once the test sets the gate
        server.script("/hang", Reply(hang=True))        # never answers; released when the server stops
        ... server.url("/health") ...
        server.requests_to("/flaky")                    # what the server received, in order
        server.wait_for_requests("/slow", 1)            # block until a request arrived (bounded)

The server runs in a background thread and answers each connection in its own thread (HTTP/1.0, one request per
connection). Stopping it releases every gate and hang, then joins all handler threads, so nothing outlives the test.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "LoopbackServer",
    "RecordedRequest",
    "Reply",
    "TlsFiles",
    "fail_then_succeed",
    "make_tls_files",
    "refused_port",
    "serve_http",
    "serve_https",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """One scripted response. ``gate``: wait until the test sets it; ``hang``: never answer (until the server stops)."""

    status: int = 200
    body: bytes = b"ok"
    headers: Mapping[str, str] = field(default_factory=dict)
    gate: threading.Event | None = None
    hang: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it, and when (``time.time()`` once its body was read)."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    received_at: float = field(default_factory=time.time)


def fail_then_succeed(failures: int, *, fail_status: int = 503, body: bytes = b"ok") -> list[Reply]:
    """A script whose first ``failures`` requests get ``fail_status`` and every later one 200 with ``body``."""
    return [Reply(fail_status, b"unavailable")] * failures + [Reply(200, body)]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _ScriptedServer
    timeout = 10  # a client that connects and says nothing must not keep a handler thread alive for ever

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        request = RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
        reply = self.server.loopback.next_reply(path, request)
        if reply.hang:
            self.server.loopback.stopping.wait()
            return
        if reply.gate is not None:
            reply.gate.wait()
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client left before the reply to %s", path)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)


class _ScriptedServer(http.server.ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads
    loopback: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # TLS handshakes a client aborts (an untrusted certificate) end up here; they are expected in tests.
        logger.debug("loopback server: error handling a request from %s", client_address, exc_info=True)


class LoopbackServer:
    """A scripted server on 127.0.0.1; build it with :func:`serve_http` or :func:`serve_https`."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.stopping = threading.Event()
        self._lock = threading.Condition()
        self._scripts: dict[str, list[Reply]] = {}
        self._requests: dict[str, list[RecordedRequest]] = {}
        self._httpd = _ScriptedServer(("127.0.0.1", 0), _Handler)
        self._httpd.loopback = self
        if tls is not None:
            # The handshake happens in the handler thread on first read, so one bad client cannot block accept().
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True, do_handshake_on_connect=False)
        self.scheme = "https" if tls is not None else "http"
        self.port: int = self._httpd.server_address[1]
        # A short poll interval keeps stop() quick: shutdown() waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), name=f"loopback-{self.port}", daemon=True
        )

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server."""
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def script(self, path: str, replies: Reply | Sequence[Reply]) -> None:
        """Answer requests to ``path`` with ``replies`` in order; the last one repeats. Unscripted paths get 404."""
        with self._lock:
            self._scripts[path] = [replies] if isinstance(replies, Reply) else list(replies)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The requests received for ``path`` so far (query strings ignored), oldest first."""
        with self._lock:
            return list(self._requests.get(path, []))

    def count(self, path: str) -> int:
        """How many requests ``path`` has received."""
        return len(self.requests_to(path))

    def wait_for_requests(self, path: str, count: int, timeout: float = 5.0) -> bool:
        """Block until ``path`` has received ``count`` requests (False if ``timeout`` passes first).

        From async tests: ``await anyio.to_thread.run_sync(server.wait_for_requests, path, 1)``.
        """
        with self._lock:
            return self._lock.wait_for(lambda: len(self._requests.get(path, ())) >= count, timeout)

    def next_reply(self, path: str, request: RecordedRequest) -> Reply:
        """Record ``request`` and pick its scripted reply (called by the handler threads)."""
        with self._lock:
            seen = self._requests.setdefault(path, [])
            seen.append(request)
            self._lock.notify_all()
            script = self._scripts.get(path) or [Reply(404, b"not scripted")]
            return script[min(len(seen), len(script)) - 1]

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Release every waiting handler, stop serving and join all threads."""
        self.stopping.set()
        with self._lock:
            for replies in self._scripts.values():
                for reply in replies:
                    if reply.gate is not None:
                        reply.gate.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()


@contextmanager
def serve_http() -> Iterator[LoopbackServer]:
    """A started plain-HTTP loopback server, stopped on exit."""
    server = LoopbackServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def serve_https(tls: TlsFiles) -> Iterator[LoopbackServer]:
    """A started HTTPS loopback server presenting the certificate in ``tls``, stopped on exit."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.cert_file, tls.key_file)
    server = LoopbackServer(context)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class TlsFiles:
    """A test CA and a server certificate for 127.0.0.1 and localhost that it signed, as PEM files."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    not_valid_after: dt.datetime
    issuer_cn: str
    subject_cn: str


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_tls_files(
    directory: Path,
    *,
    valid_for: dt.timedelta = dt.timedelta(days=10),
    issuer_cn: str = "Crucible Test CA",
    subject_cn: str = "localhost",
) -> TlsFiles:
    """Generate a CA and a server certificate expiring ``valid_for`` from now; write them under ``directory``.

    A negative ``valid_for`` gives an already expired certificate.
    """
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(issuer_cn))
        .issuer_name(_name(issuer_cn))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    not_valid_after = now + valid_for
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(subject_cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(now, not_valid_after) - dt.timedelta(days=1))
        .not_valid_after(not_valid_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
        not_valid_after=not_valid_after,
        issuer_cn=issuer_cn,
        subject_cn=subject_cn,
    )
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


def refused_port() -> int:
    """A loopback port nothing listens on: bind one, note it, close it (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
