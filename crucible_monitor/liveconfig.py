"""What a config change over the API may touch: nothing that could widen the caller's own privileges.

``POST /api/v1/config`` merges a patch onto the config in force. Whoever holds a token could otherwise point the
agent at files (``logs.files: /etc/shadow``, ``*_file`` secrets, ``alerts.rules_file``), at destinations that would
receive secrets or data (hosts, ports, URLs, recipients, new HTTP checks or pools), at its own guard rails
(``actions.*``) or at its tokens. Those change only in the file. The check runs on the patch, before validation,
because validating reads ``*_file`` secrets.

What can change live: thresholds and levels (``alerts.*``, except ``rules_file``), intervals, timeouts and other
settings of the configured collectors, analysis and storage tuning, ``agent.collect_interval`` and
``agent.log_level``, and whether a configured notification channel is ``enabled``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from crucible_monitor.errors import ConfigError

__all__ = ["check_live_patch", "changed_paths"]

_FILE_ONLY_SECTIONS = frozenset({"actions", "logs", "mcp", "agent", "notifications", "fleet"})
_LIVE_IN_FILE_ONLY_SECTIONS = ("agent.collect_interval", "agent.log_level")
_FILE_ONLY_PREFIXES = ("collectors.plugins.", "analysis.source", "analysis.prometheus")
"""Plugins run third-party code with settings of their own meaning: none of it changes live."""
_DESTINATION_KEYS = frozenset(
    {
        "url",
        "urls",
        "dsn",
        "host",
        "hosts",
        "port",
        "socket",
        "path",
        "paths",
        "file",
        "files",
        "headers",
        "username",
        "user",
        "password",
        "token",
        "to",
        "recipients",
        "from_addr",
        "procfs",
        "tokens",
        "directory",
        "argv",
        "commands",
    }
)
_DESTINATION_SUFFIXES = ("_file", "_url", "_path", "_dir", "_host", "_port", "_socket", "_token", "_password")


def changed_paths(base: Mapping[str, Any], patch: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, bool]]:
    """The dotted path of each leaf ``patch`` changes in ``base`` (both JSON-like), and whether it is a list of
    items (mappings: HTTP checks, pools, apps, log files) that gains or loses one: that counts as one change."""
    for key, value in patch.items():
        path = f"{prefix}{key}"
        current = base.get(key) if isinstance(base, Mapping) else None
        if isinstance(value, Mapping):
            yield from changed_paths(current if isinstance(current, Mapping) else {}, value, f"{path}.")
        elif isinstance(value, list) and isinstance(current, list) and len(value) == len(current):
            for index, (new, old) in enumerate(zip(value, current, strict=True)):
                if isinstance(new, Mapping) and isinstance(old, Mapping):
                    yield from changed_paths(old, new, f"{path}[{index}].")
                elif new != old:
                    yield path, False
                    break
        elif value != current:
            items = [*(value if isinstance(value, list) else []), *(current if isinstance(current, list) else [])]
            yield path, any(isinstance(item, Mapping) for item in items)


def check_live_patch(base: Mapping[str, Any], patch: Mapping[str, Any]) -> None:
    """Refuse a patch that changes what only the config file may change.

    Raises:
        ConfigError: the patch touches files, destinations, actions, tokens or agent settings; it names them.
    """
    refused = sorted({path for path, items in changed_paths(base, patch) if items or not _live(path)})
    if refused:
        raise ConfigError(
            f"{', '.join(refused)} cannot change over the API (files, destinations, actions, tokens and the "
            "agent's own settings change only in the config file; edit it and restart)"
        )


def _live(path: str) -> bool:
    if path.startswith(_FILE_ONLY_PREFIXES):
        return False
    if path.partition(".")[0].partition("[")[0] in _FILE_ONLY_SECTIONS:
        return path in _LIVE_IN_FILE_ONLY_SECTIONS or (path.startswith("notifications.") and path.endswith(".enabled"))
    leaf = path.rpartition(".")[2]
    return leaf not in _DESTINATION_KEYS and not leaf.endswith(_DESTINATION_SUFFIXES)
