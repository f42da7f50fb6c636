"""Service managers as the agent drives them: systemd (``systemctl``, ``journalctl``) and supervisord (XML-RPC).

Used alike by the services collector (states), :mod:`~crucible_monitor.actions` (restarts) and
:mod:`~crucible_monitor.logs` (log tails). Nothing here goes through a shell; names are validated first.
"""

from __future__ import annotations

import subprocess
import xmlrpc.client

__all__ = ["describe_error"]


def describe_error(exc: BaseException) -> str:
    """A failed manager call in a few words: the HTTP status, the exit status and first stderr line, or the text."""
    if isinstance(exc, xmlrpc.client.ProtocolError):
        return f"HTTP {exc.errcode} {exc.errmsg}"
    if isinstance(exc, subprocess.CalledProcessError):
        stderr = exc.stderr.strip().splitlines() if isinstance(exc.stderr, str) else []
        return f"exit status {exc.returncode}" + (f": {stderr[0]}" if stderr else "")
    return str(exc) or type(exc).__name__
