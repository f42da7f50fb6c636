"""supervisord through its XML-RPC API: the client, restarts, and the main-log follower that counts spawns.

The URL is ``unix:///path.sock`` or ``http://host:port``. The password goes into an ``Authorization`` header only:
never into a URL, a log line, an event or a ``repr``.
"""

from __future__ import annotations

import base64
import http.client
import logging
import os
import re
import socket
import xmlrpc.client
from collections import Counter
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import urlsplit
from xml.parsers.expat import ExpatError

from crucible_monitor.config import SupervisorConfig
from crucible_monitor.errors import CollectorError, NotFoundError
from crucible_monitor.managers import describe_error

__all__ = [
    "SUPERVISOR_ERRORS",
    "MainLog",
    "SupervisorClient",
    "full_name",
    "supervisor_restart",
    "validate_program_name",
]

logger = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9:_.@-]+")
_SUPERVISOR_TIMEOUT = 10.0
_FAULT_BAD_NAME = 10
_FAULT_NO_FILE = 20
_FAULT_NOT_RUNNING = 70
_SPAWNED = re.compile(r" spawned: '(.+)' with pid \d+$", re.MULTILINE)
_MAX_LOG_PROBE = 2**48
# What a call to supervisord can raise: unreachable, HTTP error, a Fault, or a reply that is not XML.
SUPERVISOR_ERRORS = (OSError, http.client.HTTPException, xmlrpc.client.Error, ExpatError)


def validate_program_name(program: str) -> str:
    """A supervisor program name (``name`` or ``group:name``), checked.

    Raises:
        ValueError: the name has characters outside ``A-Za-z0-9:_.@-`` or starts with ``-``.
    """
    if not _NAME.fullmatch(program) or program.startswith("-"):
        raise ValueError(f"invalid program name {program!r}: use letters, digits and : _ . @ - (not first -)")
    return program


class _UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a unix socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Transport(xmlrpc.client.Transport):
    """XML-RPC over a unix socket or plain HTTP, with a timeout and extra headers (basic auth)."""

    def __init__(self, socket_path: str | None, timeout: float, headers: list[tuple[str, str]]) -> None:
        super().__init__(headers=headers)
        self._socket_path = socket_path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._connection[1] is not None and host == self._connection[0]:
            return self._connection[1]
        chost, self._extra_headers, _ = self.get_host_info(host)
        connection = (
            _UnixHTTPConnection(self._socket_path, self._timeout)
            if self._socket_path is not None
            else http.client.HTTPConnection(chost, timeout=self._timeout)
        )
        self._connection = host, connection
        return connection


class SupervisorClient:
    """supervisord's XML-RPC API (``unix:///path.sock`` or ``http://host:port``); close it, or use ``with``.

    Methods raise what ``xmlrpc.client`` raises: ``xmlrpc.client.Fault`` when supervisord refuses,
    ``xmlrpc.client.ProtocolError`` on an HTTP error (401 for bad credentials), ``OSError`` when it cannot be reached.
    The constructor raises ``ValueError`` for a URL that is neither ``unix://`` nor ``http://``.
    """

    def __init__(self, config: SupervisorConfig, *, timeout: float = _SUPERVISOR_TIMEOUT) -> None:
        self.url = config.url
        headers: list[tuple[str, str]] = []
        if config.username is not None and config.password is not None:
            token = f"{config.username}:{config.password.get_secret_value()}".encode()
            headers.append(("Authorization", f"Basic {base64.b64encode(token).decode('ascii')}"))
        self.socket_path: str | None = None
        if config.url.startswith("unix://"):
            self.socket_path = config.url.removeprefix("unix://")
            endpoint = "http://localhost/RPC2"
        elif config.url.startswith("http://"):
            parts = urlsplit(config.url)
            endpoint = f"http://{parts.netloc}{parts.path.rstrip('/') or '/RPC2'}"
        else:
            raise ValueError(f"unsupported supervisor URL {config.url!r}: use unix:///path.sock or http://host:port")
        transport = _Transport(self.socket_path, timeout, headers)
        self._proxy = xmlrpc.client.ServerProxy(endpoint, transport=transport)

    def __repr__(self) -> str:
        return f"SupervisorClient({self.url!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (a later call opens a new one)."""
        self._proxy("close")()

    def socket_exists(self) -> bool:
        """False when the URL is a unix socket that does not exist (supervisord not running); True for HTTP."""
        return self.socket_path is None or os.path.exists(self.socket_path)

    def all_process_info(self) -> list[dict[str, Any]]:
        """``supervisor.getAllProcessInfo()``."""
        return cast(list[dict[str, Any]], self._proxy.supervisor.getAllProcessInfo())

    def all_config_info(self) -> list[dict[str, Any]]:
        """``supervisor.getAllConfigInfo()``: each program's configuration, its command included."""
        return cast(list[dict[str, Any]], self._proxy.supervisor.getAllConfigInfo())

    def read_log(self, offset: int, length: int) -> str:
        """``supervisor.readLog(offset, length)``: the main log from ``offset`` (``length`` 0: to its end)."""
        return cast(str, self._proxy.supervisor.readLog(offset, length))

    def tail(self, name: str, length: int) -> tuple[str, str]:
        """The last ``length`` bytes of a program's stdout and stderr logs (empty where it has none)."""
        out = cast(list[Any], self._proxy.supervisor.tailProcessStdoutLog(name, 0, length))[0]
        err = cast(list[Any], self._proxy.supervisor.tailProcessStderrLog(name, 0, length))[0]
        return str(out), str(err)

    def stop(self, name: str) -> None:
        """Stop a program and wait until it has stopped."""
        self._proxy.supervisor.stopProcess(name, True)

    def start(self, name: str) -> None:
        """Start a program and wait until it is running."""
        self._proxy.supervisor.startProcess(name, True)


def supervisor_restart(config: SupervisorConfig, program: str) -> None:
    """Restart a supervisor program (``name`` or ``group:name``): stop it if it runs, then start it.

    Raises:
        ValueError: the program name or the supervisor URL is invalid.
        NotFoundError: supervisord has no such program.
        CollectorError: supervisord cannot be reached or refuses (e.g. the program fails to start).
    """
    name = validate_program_name(program)
    try:
        with SupervisorClient(config) as client:
            try:
                client.stop(name)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode != _FAULT_NOT_RUNNING:
                    raise
            client.start(name)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode == _FAULT_BAD_NAME:
            raise NotFoundError(f"supervisord has no program {name!r}") from None
        raise CollectorError(f"supervisord refused to restart {name!r}: {fault.faultString}") from None
    except SUPERVISOR_ERRORS as exc:
        raise CollectorError(f"cannot reach supervisord at {config.url}: {describe_error(exc)}") from None


def full_name(info: dict[str, Any]) -> str:
    """A process's ``group:name`` (just ``name`` when the group has its name), as restarts and configs spell it."""
    name, group = str(info["name"]), str(info["group"])
    return name if name == group else f"{group}:{name}"


class MainLog:
    """Follows supervisord's main log through ``readLog`` and counts ``spawned:`` lines per process name."""

    def __init__(self) -> None:
        self.usable = True
        self.offset: int | None = None
        self.tail = ""  # the last line read, to notice a rotated or truncated log

    def spawns(self, client: SupervisorClient) -> dict[str, int] | None:
        """Spawns per process name since the last call; None when unknown (first call, log rotated or unreadable).

        Raises:
            OSError: supervisord cannot be reached.
        """
        if not self.usable:
            return None
        try:
            if self.offset is None:
                self._sync(client)
                return None
            start = self.offset - len(self.tail.encode())
            text = client.read_log(start, 0)
            if not text.startswith(self.tail):
                logger.info("supervisord's main log was rotated or truncated; resynchronising")
                self._sync(client)
                return None
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == _FAULT_NO_FILE:
                logger.info("supervisord's main log is not a readable file; counting restarts from start times")
                self.usable = False
            self.offset = None
            return None
        except (xmlrpc.client.ProtocolError, http.client.HTTPException, ExpatError):
            self.offset = None  # e.g. a read that began inside a multi-byte character (HTTP 500)
            return None
        new = text[len(self.tail) :]
        complete = new[: new.rfind("\n") + 1]
        if complete:
            self.offset += len(complete.encode())
            self.tail = complete[complete.rfind("\n", 0, -1) + 1 :]
        return dict(Counter(match.group(1) for match in _SPAWNED.finditer(complete)))

    def _sync(self, client: SupervisorClient) -> None:
        """Find the end of the log (readLog has no size call: search for the first offset with nothing to read)."""
        low, high = 0, 1
        while high < _MAX_LOG_PROBE and self._has_data(client, high):
            low, high = high, high * 2
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if self._has_data(client, middle) else (low, middle)
        size = high if self._has_data(client, low) else low
        self.tail = ""
        if size:
            try:
                self.tail = client.read_log(size - 1, 1)
            except (xmlrpc.client.ProtocolError, ExpatError):
                self.tail = ""
        self.offset = size

    @staticmethod
    def _has_data(client: SupervisorClient, offset: int) -> bool:
        try:
            return client.read_log(offset, 1) != ""
        except ExpatError:  # a control character, which XML cannot carry: there is data
            return True
        except xmlrpc.client.ProtocolError as exc:
            if exc.errcode == 500:  # the byte there is part of a multi-byte character: there is data
                return True
            raise
