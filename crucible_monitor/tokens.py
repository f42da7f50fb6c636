"""The agent's API tokens, each with a name and a scope.

Three sources, one registry: the default token (``agent.api_token``, else ``<data_dir>/api_token``, generated on
first start), which is ``admin``; ``agent.tokens`` in the config; and ``<data_dir>/tokens.json`` (mode 0600), which
``crucible-monitor token create|list|revoke`` edits and the running agent rereads when it changes. The file keeps
only each secret's SHA-256 (the secrets are 256-bit random, so a plain hash is enough): it shows no secret.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import SecretStr, ValidationError

from crucible_monitor.config import Config, Scope, TokenConfig
from crucible_monitor.errors import ConfigError, NotFoundError

__all__ = [
    "DEFAULT_TOKEN_NAME",
    "SCOPES",
    "Principal",
    "StoredToken",
    "TokenRegistry",
    "allows",
    "create_token",
    "ensure_api_token",
    "list_tokens",
    "new_secret",
    "read_api_token",
    "revoke_token",
]

logger = logging.getLogger(__name__)

SCOPES: tuple[Scope, ...] = get_args(Scope)
"""The scopes from least to most: each includes the ones before it."""
DEFAULT_TOKEN_NAME = "default"
_FILE = "tokens.json"


def allows(held: Scope, needed: Scope) -> bool:
    """Whether a token of scope ``held`` may do what needs ``needed``."""
    return SCOPES.index(held) >= SCOPES.index(needed)


@dataclass(frozen=True)
class Principal:
    """Who a request's token says it is: the token's name and scope."""

    name: str
    scope: Scope

    def implied(self) -> list[str]:
        """Every scope this one includes (``operate`` → read, operate)."""
        return list(SCOPES[: SCOPES.index(self.scope) + 1])


@dataclass(frozen=True)
class StoredToken:
    """A token of ``tokens.json`` as ``token list`` shows it: no secret."""

    name: str
    scope: Scope
    created: float
    source: str = _FILE


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenRegistry:
    """Every token the agent accepts, looked up in constant time per token; ``tokens.json`` reread on change."""

    def __init__(self, config: Config, default: str) -> None:
        self._fixed: list[tuple[str, Principal]] = [(_digest(default), Principal(DEFAULT_TOKEN_NAME, "admin"))]
        self._fixed += [(_digest(t.secret.get_secret_value()), Principal(t.name, t.scope)) for t in config.agent.tokens]
        self._path = config.agent.data_dir / _FILE
        self._stamp: tuple[int, int, int] | None = None
        self._stored: list[tuple[str, Principal]] = []

    def verify(self, presented: str) -> Principal | None:
        """The principal of the token ``presented``, or None when no token matches."""
        digest = _digest(presented)
        found: Principal | None = None
        for known, principal in [*self._fixed, *self._file_tokens()]:
            if secrets.compare_digest(known, digest) and found is None:
                found = principal  # no early exit: every token is compared
        return found

    def _file_tokens(self) -> list[tuple[str, Principal]]:
        try:
            st = os.stat(self._path)
        except OSError:
            self._stamp, self._stored = None, []
            return []
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                entries = _read(self._path)
            except ConfigError:
                logger.warning("%s is unreadable or invalid: its tokens are not accepted", self._path)
                entries = []
            self._stored = [(e["sha256"], Principal(e["name"], e["scope"])) for e in entries]
            self._stamp = stamp
        return self._stored


# -- the tokens file ----------------------------------------------------------------------------------------------


def _read(path: Path) -> list[dict[str, Any]]:
    """The entries of ``tokens.json`` ([] when it does not exist).

    Raises:
        ConfigError: the file is unreadable or not what ``token create`` writes.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    entries = data.get("tokens") if isinstance(data, dict) else None
    keys = {"name", "scope", "sha256", "created"}
    if not isinstance(entries, list) or not all(isinstance(e, dict) and keys <= set(e) for e in entries):
        raise ConfigError(f"{path} is not a tokens file (expected {{'tokens': [{', '.join(sorted(keys))}...]}})")
    return [e for e in entries if e["scope"] in SCOPES]


@contextlib.contextmanager
def _locked(config: Config) -> Iterator[Path]:
    """The tokens file's path, with ``tokens.lock`` held so that two edits do not lose one."""
    data_dir = config.agent.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "tokens.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield data_dir / _FILE
    finally:
        os.close(fd)


def _write(path: Path, entries: list[dict[str, Any]]) -> None:
    """Replace ``tokens.json`` atomically (mode 0600, owned like the data directory when root writes it)."""
    tmp = path.with_name(f".{_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"tokens": entries}, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    if os.geteuid() == 0:  # the agent runs as the data directory's owner and must read it
        owner = path.parent.stat()
        os.chown(tmp, owner.st_uid, owner.st_gid)
    os.replace(tmp, path)


def create_token(config: Config, name: str, scope: Scope) -> str:
    """Create token ``name`` with ``scope`` in ``tokens.json``; returns its secret (shown once, never stored).

    Raises:
        ConfigError: the name is invalid or already taken (in the file or the config).
    """
    try:
        TokenConfig(name=name, scope=scope, secret=SecretStr("x" * 16))  # the same rules as agent.tokens
    except ValidationError:
        raise ConfigError(
            f"invalid token name {name!r} or scope {scope!r}: a name is 1-64 letters, digits, '.', '_' or '-' "
            f"(starting with a letter or digit); scopes: {', '.join(SCOPES)}"
        ) from None
    taken = {DEFAULT_TOKEN_NAME, *(t.name for t in config.agent.tokens)}
    secret = new_secret()
    with _locked(config) as path:
        entries = _read(path)
        if name in taken | {e["name"] for e in entries}:
            raise ConfigError(f"a token named {name!r} exists; revoke it first or choose another name")
        entries.append({"name": name, "scope": scope, "sha256": _digest(secret), "created": time.time()})
        _write(path, entries)
    return secret


def list_tokens(config: Config) -> list[StoredToken]:
    """Every token the agent accepts, without secrets: the default, the config's, the file's."""
    found = [StoredToken(DEFAULT_TOKEN_NAME, "admin", 0.0, "agent.api_token or <data_dir>/api_token")]
    found += [StoredToken(t.name, t.scope, 0.0, "agent.tokens") for t in config.agent.tokens]
    found += [StoredToken(e["name"], e["scope"], e["created"]) for e in _read(config.agent.data_dir / _FILE)]
    return found


def revoke_token(config: Config, name: str) -> None:
    """Remove token ``name`` from ``tokens.json``: the agent refuses it from its next request on.

    Raises:
        NotFoundError: no such token in the file (tokens of the config are removed by editing it).
    """
    with _locked(config) as path:
        entries = _read(path)
        kept = [e for e in entries if e["name"] != name]
        if len(kept) == len(entries):
            where = "it is in the config file: remove it there" if name in {t.name for t in config.agent.tokens} else ""
            names = ", ".join(e["name"] for e in entries) or "none"
            raise NotFoundError(where or f"no token {name!r} in {path}; tokens there: {names}")
        _write(path, kept)


# -- the default token --------------------------------------------------------------------------------------------


def read_api_token(config: Config) -> str | None:
    """The API token a client should send: from config, else from ``<data_dir>/api_token`` if it exists."""
    if config.agent.api_token is not None:
        return config.agent.api_token.get_secret_value()
    try:
        return (config.agent.data_dir / "api_token").read_text(encoding="utf-8").strip()
    except OSError:
        return None


def new_secret() -> str:
    """A new token secret: 256 random bits, URL-safe, never starting with ``-`` (``--token -abc`` would read as an
    option to the command line it is pasted into)."""
    secret = secrets.token_urlsafe(32)
    return secret if secret[0] != "-" else "t" + secret[1:]


def ensure_api_token(config: Config) -> str:
    """The API token: from config, else ``<data_dir>/api_token``, generated (mode 0600) on first start."""
    existing = read_api_token(config)
    if existing:
        return existing
    path = config.agent.data_dir / "api_token"
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_secret()
    tmp = path.with_name(f".api_token.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)  # atomic and never replaces: a concurrent first start keeps one token
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    finally:
        tmp.unlink()
    logger.info("generated an API token in %s (mode 0600)", path)
    return token
