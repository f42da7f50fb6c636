"""Configuration: one YAML tree validated into strict, frozen pydantic models.

Everything has a default, so the agent runs with no file at all. Strings may use ``${VAR}`` or ``${VAR:-default}``;
any secret ``x`` may instead be given as ``x_file: /path`` (the file's content, trailing newline stripped).
Errors name the file, the line and the dotted key, and list the valid choices where there are any.

The collectors' models live in :mod:`crucible_monitor.collectorconfig`, the reading of files in
:mod:`crucible_monitor.configfile`; both are re-exported here.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit

import platformdirs
from pydantic import BaseModel, BeforeValidator, ByteSize, Field, PlainSerializer, SecretStr, model_validator

from crucible_monitor.anomalyconfig import AnalysisConfig, KeySeriesName
from crucible_monitor.collectorconfig import (
    AccessLogFileConfig,
    AccessLogsConfig,
    Category,
    CollectorsConfig,
    GpuConfig,
    HttpCheckConfig,
    LaravelAppConfig,
    LaravelConfig,
    MysqlConfig,
    PhpFpmConfig,
    PhpFpmPoolConfig,
    ServicesConfig,
    SupervisorConfig,
    SystemCollectorConfig,
    SystemdConfig,
)
from crucible_monitor.configfile import (
    Located,
    alias_notes,
    dotted_key,
    read_yaml,
    read_yaml_file,
    relative_to,
    validate,
)
from crucible_monitor.configtypes import (
    REDACTED,
    Duration,
    PositiveDuration,
    StrictModel,
    check_unique,
    format_duration,
    mask_url,
    parse_duration,
)
from crucible_monitor.customconfig import PushConfig
from crucible_monitor.errors import ConfigError
from crucible_monitor.fleetconfig import FleetConfig, FleetHostConfig
from crucible_monitor.liveconfig import check_live_patch

__all__ = [
    "patched",
    "KeySeriesName",
    "FleetConfig",
    "FleetHostConfig",
    "REDACTED",
    "AccessLogFileConfig",
    "AccessLogsConfig",
    "ActionsConfig",
    "AgentConfig",
    "AlertsConfig",
    "AnalysisConfig",
    "Category",
    "CollectorsConfig",
    "Config",
    "Duration",
    "GpuConfig",
    "HttpCheckConfig",
    "LaravelAppConfig",
    "LaravelConfig",
    "Located",
    "LogsConfig",
    "McpConfig",
    "MysqlConfig",
    "NotificationsConfig",
    "PhpFpmConfig",
    "PhpFpmPoolConfig",
    "PositiveDuration",
    "ServicesConfig",
    "StorageConfig",
    "StrictModel",
    "SupervisorConfig",
    "SystemCollectorConfig",
    "SystemdConfig",
    "Scope",
    "TokenConfig",
    "config_notes",
    "dotted_key",
    "format_duration",
    "iter_secrets",
    "load_config",
    "parse_config",
    "parse_duration",
    "read_yaml",
    "redacted",
    "validate_config",
    "with_listen_addr",
]

Percent = Annotated[float, Field(ge=0, le=100)]


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("crucible-monitor", appauthor=False))


def _check_listen_addr(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid listen address {value!r}: use HOST:PORT, e.g. 127.0.0.1:9090")
    host = host.strip("[]")
    if host not in ("localhost", ""):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"invalid listen host {host!r}: use an IP address such as 127.0.0.1 or ::1") from None
    return value


ListenAddr = Annotated[str, BeforeValidator(lambda v: _check_listen_addr(str(v)))]

Scope = Literal["read", "operate", "admin"]
"""What a token may do: ``read`` sees; ``operate`` also acknowledges, silences, restarts; ``admin`` also configures."""


class TokenConfig(StrictModel):
    """An API token with a name (recorded in the audit as "who") and a scope."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Recorded as who acted.")
    scope: Scope = Field("read", description="read, operate (acknowledge, silence, restart) or admin (config).")
    secret: SecretStr = Field(description="The bearer token (or secret_file: PATH), at least 16 characters.")

    @model_validator(mode="after")
    def _long_enough(self) -> TokenConfig:
        if len(self.secret.get_secret_value()) < 16:
            raise ValueError(f"token {self.name!r}: the secret must be at least 16 characters")
        return self


class AgentConfig(StrictModel):
    """The agent process: where it listens, where it keeps data, how often it collects."""

    listen_addr: ListenAddr = Field("127.0.0.1:9090", description="HOST:PORT of the HTTP API, /mcp and /metrics.")
    data_dir: Path = Field(default_factory=_default_data_dir, description="Parquet tiers, WAL, state.db, api_token.")
    api_token: SecretStr | None = Field(None, description="Bearer token; generated into <data_dir>/api_token if unset.")
    tokens: list[TokenConfig] = Field([], description="More tokens, each scoped (the api_token is admin).")
    collect_interval: PositiveDuration = Field(timedelta(seconds=10), description="Default collector interval.")
    data_retention: PositiveDuration = Field(timedelta(days=30), description="How long any data is kept.")
    hostname: str = Field(default_factory=socket.gethostname, description="The name this host reports.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _unique_tokens(self) -> AgentConfig:
        check_unique(("default", *(t.name for t in self.tokens)), "token names (default is the api_token's)")
        return self

    @property
    def host(self) -> str:
        """The host part of ``listen_addr`` without brackets."""
        return self.listen_addr.rpartition(":")[0].strip("[]") or "127.0.0.1"

    @property
    def port(self) -> int:
        """The port part of ``listen_addr``."""
        return int(self.listen_addr.rpartition(":")[2])


class StorageConfig(StrictModel):
    """The Parquet tiers: raw samples, 1-minute and 1-hour rollups."""

    raw_retention: PositiveDuration = Field(timedelta(days=7), description="Raw samples (capped by data_retention).")
    minute_retention: PositiveDuration = Field(timedelta(days=30), description="1-minute rollups (capped likewise).")
    max_disk: ByteSize = Field(ByteSize(2 * 1024**3), description="Oldest days are deleted beyond this size.")
    flush_interval: PositiveDuration = Field(timedelta(minutes=10), description="How often the WAL becomes Parquet.")
    fsync: bool = Field(True, description="fsync the WAL after every batch (survives power loss, not only crashes).")
    worker_process: bool = Field(
        True, description="Write Parquet in a short-lived worker process, so the agent does not keep its memory."
    )


def _service_down_for(value: object) -> timedelta | None:
    if value is True:
        return timedelta(minutes=1)
    if value is False or value is None:
        return None
    if isinstance(value, str) and value.strip().lower() == "immediate":
        return timedelta(0)
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(
            f"invalid service_down {value!r}: use a duration (e.g. 1m), immediate, true or false"
        ) from None


ServiceDownFor = Annotated[
    timedelta | None,
    BeforeValidator(_service_down_for),
    PlainSerializer(lambda v: None if v is None else format_duration(v), return_type=str | None, when_used="json"),
]
"""How long a service must be down before the shorthand rule fires; None: no rule."""


class AlertsConfig(StrictModel):
    """Shorthand thresholds (each becomes an alert rule), and the alerting file with everything else."""

    rules_file: Path | None = Field(
        None, description="The alerting file: rules, receivers, routes, silences... (see configs/alerts.yaml)."
    )

    cpu_threshold: Percent | None = Field(90, description="CPU usage percent (all cores).")
    memory_threshold: Percent | None = Field(90, description="Memory used percent.")
    disk_threshold: Percent | None = Field(85, description="Disk used percent, any mount.")
    service_down: ServiceDownFor = Field(
        timedelta(minutes=1),
        description="Alert when a watched service is not running for this long: a duration, immediate (0s), true "
        "(1m) or false (no rule).",
    )
    response_time_threshold: PositiveDuration | None = Field(timedelta(seconds=2), description="HTTP check latency.")


class EmailConfig(StrictModel):
    """SMTP notifications."""

    config_aliases: ClassVar[Mapping[str, str]] = {"smtp_server": "smtp_host + smtp_port", "from": "from_addr"}

    enabled: bool = False
    smtp_host: str = "localhost"
    smtp_port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_addr: str = "crucible-monitor@localhost"
    to: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: Any) -> Any:
        """``smtp_server: host:port`` and ``from:`` (the roadmap's spelling) as smtp_host, smtp_port and from_addr."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "from" in data:
            if "from_addr" in data:
                raise ValueError("give either from or from_addr, not both")
            data["from_addr"] = data.pop("from")
        if "smtp_server" in data:
            given = [key for key in ("smtp_host", "smtp_port") if key in data]
            if given:
                raise ValueError(f"give either smtp_server or {' and '.join(given)}, not both")
            server = str(data.pop("smtp_server"))
            host, colon, port = server.rpartition(":")
            if not colon or not host or not port.isdigit():
                raise ValueError(f"invalid smtp_server {server!r}: use HOST:PORT, e.g. smtp.gmail.com:587")
            data["smtp_host"], data["smtp_port"] = host.strip("[]"), int(port)
        return data


class WebhookConfig(StrictModel):
    """Generic JSON webhook, signed with HMAC-SHA256 when a secret is set."""

    enabled: bool = False
    url: str | None = None
    secret: SecretStr | None = None


class SlackConfig(StrictModel):
    """Slack incoming webhook."""

    enabled: bool = False
    webhook_url: SecretStr | None = None


class NotificationsConfig(StrictModel):
    """Where alerts are sent."""

    email: EmailConfig = EmailConfig()
    webhook: WebhookConfig = WebhookConfig()
    slack: SlackConfig = SlackConfig()


class ActionsConfig(StrictModel):
    """What the agent may change on the host (restarts), and the guard rails around it."""

    read_only: bool = Field(False, description="Refuse every action; MCP lists no destructive tool.")
    restart_allowlist: list[str] = Field(
        default_factory=list, description="Services that may be restarted, by exact name (unit or program)."
    )
    restart_budget: int = Field(3, ge=1, le=50, description="Restarts per service within restart_window.")
    restart_window: PositiveDuration = Field(timedelta(hours=1), description="The window of the budget.")
    restart_backoff: PositiveDuration = Field(
        timedelta(minutes=1), description="Wait after a restart before the next one; doubles with each restart."
    )
    privilege: Literal["direct", "sudo"] = Field(
        "direct",
        description="direct: systemctl asks systemd, allowed by a polkit rule; sudo: sudo -n systemctl, allowed by "
        "exact sudoers lines (see README).",
    )


class LogsConfig(StrictModel):
    """Log files that tail_logs may read, by name (services' own logs need no entry)."""

    files: dict[str, Path] = Field(
        default_factory=dict, description="Name → path of a log file, or a glob (its newest file is read)."
    )


class McpConfig(StrictModel):
    """The MCP endpoint at /mcp on the agent's HTTP server (always behind the API token)."""

    enabled: bool = True
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Extra Host headers accepted (DNS-rebinding protection), e.g. monitor.example.com:443.",
    )
    allowed_origins: list[str] = Field(default_factory=list, description="Extra Origin headers accepted.")


class Config(StrictModel):
    """The whole configuration tree."""

    agent: AgentConfig = Field(default_factory=AgentConfig)
    storage: StorageConfig = StorageConfig()
    collectors: CollectorsConfig = CollectorsConfig()
    alerts: AlertsConfig = AlertsConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    actions: ActionsConfig = ActionsConfig()
    logs: LogsConfig = LogsConfig()
    mcp: McpConfig = McpConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    fleet: FleetConfig = FleetConfig()
    push: PushConfig = PushConfig()


def parse_config(text: str, source: str = "<config>") -> Config:
    """Validate YAML text into a :class:`Config`.

    Raises:
        ConfigError: YAML syntax, unknown keys, bad values or unset variables, each with file, line and key.
    """
    data, located = read_yaml(text, source, sections="agent, collectors")
    return validate_config(data, source, located)


def validate_config(data: dict[str, Any], source: str, located: Located | None = None) -> Config:
    """Validate plain data (from YAML or an API request) into a :class:`Config`.

    Raises:
        ConfigError: one line per problem: source, line when known, dotted key, message.
    """
    return validate(Config, data, source, located)


def load_config(path: Path | None) -> Config:
    """Load ``path``, or the built-in defaults when ``path`` is None.

    Files named by its ``include:`` are merged in first (see :func:`read_yaml_file`). Relative paths in the config
    (``rules_file: alerts.yaml``, ``ca_file``, log files...) are relative to ``path``'s folder, also those that come
    from an included file; a Laravel app's ``logs`` and ``scheduler_heartbeat`` are relative to its ``path``.

    Raises:
        ConfigError: a file cannot be read or is invalid.
    """
    if path is None:
        return Config()
    data, located = read_yaml_file(path, "config", sections="agent, collectors")
    return relative_to(validate_config(data, str(path), located), path.resolve().parent)


def with_listen_addr(config: Config, listen_addr: str, flag: str = "--listen") -> Config:
    """``config`` listening on (or, for a client, reaching the agent at) ``listen_addr`` instead.

    Raises:
        ConfigError: ``listen_addr`` is not HOST:PORT (the message names ``flag``).
    """
    try:
        _check_listen_addr(listen_addr)
    except ValueError as exc:
        raise ConfigError(f"{flag}: {exc}") from None
    return config.model_copy(update={"agent": config.agent.model_copy(update={"listen_addr": listen_addr})})


def config_notes(path: Path) -> list[str]:
    """What check-config says about a valid file: each alias key with the canonical keys it is read as.

    Raises:
        ConfigError: the file cannot be read or is not YAML.
    """
    data, located = read_yaml_file(path, "config", sections="agent, collectors")
    return alias_notes(Config, data, located)


def redacted(config: Config) -> dict[str, Any]:
    """The config as JSON-ready data with every secret (``SecretStr`` fields, HTTP check headers, passwords in
    URLs) replaced by :data:`REDACTED`."""
    shown: dict[str, Any] = _mask_urls(config.model_dump(mode="json"))
    return shown


def _mask_urls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask_urls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_urls(v) for v in value]
    return mask_url(value) if isinstance(value, str) and "://" in value else value


def patched(current: Config, patch: Mapping[str, Any]) -> Config:
    """``patch`` (a partial config tree) merged onto ``current`` and validated.

    What the patch says that :func:`redacted` already shows (a redacted secret, a masked URL, any unchanged value,
    also inside lists) keeps the current value, so a fetched config can be edited and posted back.

    Raises:
        ConfigError: the result is invalid, or changes what only the file may (see :mod:`~crucible_monitor.liveconfig`).
    """
    shown = redacted(current)
    changes = _changes(shown, patch)
    if changes is _SAME:
        return current
    check_live_patch(shown, changes)  # before validating, which reads *_file secrets
    return validate_config(_merge(current.model_dump(mode="python"), changes), "request")


_SAME: Any = object()


def _changes(shown: Any, patch: Any) -> Any:
    """``patch`` less what equals ``shown`` (:data:`_SAME` when nothing differs); lists of the same length go item by
    item (an unchanged item becomes ``{}``)."""
    if isinstance(patch, Mapping):
        base = shown if isinstance(shown, Mapping) else {}
        kept = {k: c for k, v in patch.items() if (c := _changes(base.get(k, _SAME), v)) is not _SAME}
        return kept or (_SAME if isinstance(shown, Mapping) else {})
    if isinstance(patch, list) and isinstance(shown, list) and len(patch) == len(shown):
        items = [_changes(old, new) for old, new in zip(shown, patch, strict=True)]
        if all(item is _SAME for item in items):
            return _SAME
        return [{} if item is _SAME else item for item in items]
    return _SAME if patch == shown else patch


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(patch, Mapping) and isinstance(base, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in patch.items()}}
    if isinstance(patch, list) and isinstance(base, list) and len(patch) == len(base):
        return [_merge(old, new) for old, new in zip(base, patch, strict=True)]
    return patch


def iter_secrets(value: object) -> Iterator[str]:
    """Every secret in a config tree, to keep them out of logs and output: ``SecretStr`` values (and, for URLs, their
    passwords as written and decoded), and the passwords of plain URLs (an HTTP check's ``https://user:pass@host``)."""
    if isinstance(value, SecretStr | str):
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(value, SecretStr):
            yield text
        if "://" in text:
            with contextlib.suppress(ValueError):  # not a URL urlsplit accepts: no password to take from it
                if password := urlsplit(text).password:
                    yield password
                    yield unquote(password)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from iter_secrets(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_secrets(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from iter_secrets(item)
