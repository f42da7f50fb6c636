"""Configuration: one YAML tree validated into strict, frozen pydantic models.

Everything has a default, so the agent runs with no file at all. Strings may use ``${VAR}`` or ``${VAR:-default}``;
any secret ``x`` may instead be given as ``x_file: /path`` (the file's content, trailing newline stripped).
Errors name the file, the line and the dotted key, and list the valid choices where there are any.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import zoneinfo
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar
from urllib.parse import urlsplit

import platformdirs
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ByteSize,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from crucible_monitor.configtypes import (
    Duration,
    PositiveDuration,
    StrictModel,
    WebUrl,
    format_duration,
    parse_duration,
)
from crucible_monitor.errors import ConfigError

__all__ = [
    "AccessLogFileConfig",
    "AccessLogsConfig",
    "ActionsConfig",
    "AnalysisConfig",
    "AgentConfig",
    "AlertsConfig",
    "Category",
    "CollectorsConfig",
    "Config",
    "Duration",
    "Located",
    "PositiveDuration",
    "StrictModel",
    "HttpCheckConfig",
    "LaravelAppConfig",
    "LaravelConfig",
    "LogsConfig",
    "McpConfig",
    "MysqlConfig",
    "NotificationsConfig",
    "PhpFpmConfig",
    "PhpFpmPoolConfig",
    "ServicesConfig",
    "StorageConfig",
    "SupervisorConfig",
    "SystemCollectorConfig",
    "SystemdConfig",
    "dotted_key",
    "format_duration",
    "load_config",
    "parse_config",
    "parse_duration",
    "read_yaml",
    "REDACTED",
    "redacted",
    "validate_config",
]

Percent = Annotated[float, Field(ge=0, le=100)]
Category = Literal["web", "database", "cache", "php", "queue", "other"]


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


def _check_name(value: object) -> str:
    text = str(value)
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", text):
        raise ValueError(f"invalid name {text!r}: use letters, digits and _ . : -")
    return text


ListenAddr = Annotated[str, BeforeValidator(lambda v: _check_listen_addr(str(v)))]


class AgentConfig(StrictModel):
    """The agent process: where it listens, where it keeps data, how often it collects."""

    listen_addr: ListenAddr = Field("127.0.0.1:9090", description="HOST:PORT of the HTTP API, /mcp and /metrics.")
    data_dir: Path = Field(default_factory=_default_data_dir, description="Parquet tiers, WAL, state.db, api_token.")
    api_token: SecretStr | None = Field(None, description="Bearer token; generated into <data_dir>/api_token if unset.")
    collect_interval: PositiveDuration = Field(timedelta(seconds=10), description="Default collector interval.")
    data_retention: PositiveDuration = Field(timedelta(days=30), description="How long any data is kept.")
    hostname: str = Field(default_factory=socket.gethostname, description="The name this host reports.")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

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


class SystemCollectorConfig(StrictModel):
    """CPU, memory, swap, disks, network, load, pressure; and the top processes."""

    enabled: bool = True
    interval: PositiveDuration | None = Field(None, description="Defaults to agent.collect_interval.")
    procfs: Path = Field(Path("/proc"), description="Where procfs is mounted (e.g. /host/proc in a container).")
    per_cpu: bool = Field(True, description="Also record each core, not only the total.")
    include_fstypes: list[str] = Field(default_factory=list, description="Pseudo filesystem types to keep anyway.")
    exclude_mountpoints: list[str] = Field(
        [
            "/var/lib/docker/*",
            "/var/lib/containers/storage/*",
            "/run/containerd/*",
            "/var/lib/kubelet/pods/*",
            "/snap/*",
        ],
        description="Mountpoints to skip (fnmatch patterns: * also matches /); container layers by default.",
    )
    exclude_interfaces: list[str] = Field(["lo"], description="Glob patterns of network interfaces to skip.")
    top_processes: int = Field(10, ge=0, le=100, description="Processes kept per snapshot, by CPU and by memory.")
    processes_interval: PositiveDuration = Field(timedelta(seconds=30), description="Top-processes snapshot period.")


class SystemdConfig(StrictModel):
    """systemd units, read with ``systemctl show``."""

    enabled: bool = Field(True, description="Skipped with one log line when systemd is not running.")
    discover: bool = Field(True, description="Also watch the web-stack units found on the host.")
    units: list[str] = Field(default_factory=list, description="Units to watch (.service may be left out).")


class SupervisorConfig(StrictModel):
    """supervisord programs, read through its XML-RPC API."""

    enabled: bool = Field(True, description="Skipped with one log line when the socket does not exist.")
    url: str = Field("unix:///var/run/supervisor.sock", description="unix:///path.sock or http://host:port.")
    username: str | None = None
    password: SecretStr | None = None
    programs: list[str] = Field(default_factory=list, description="Programs to watch; empty means all.")


class ServicesConfig(StrictModel):
    """Service states and restarts from systemd and supervisor."""

    enabled: bool = True
    interval: PositiveDuration | None = Field(None, description="Defaults to agent.collect_interval.")
    systemd: SystemdConfig = SystemdConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    categories: dict[str, Category] = Field(
        default_factory=dict, description="Service name (glob) to category, overriding the built-in guesses."
    )


class HttpCheckConfig(StrictModel):
    """One HTTP(S) endpoint check."""

    name: Annotated[str, BeforeValidator(_check_name)]
    url: WebUrl
    interval: PositiveDuration = timedelta(seconds=30)
    timeout: PositiveDuration = timedelta(seconds=10)
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expected_status: list[int] = Field([200], description="Status codes that count as up.")
    keyword: str | None = Field(None, description="Text the body must contain.")
    headers: dict[str, str] = Field(default_factory=dict)
    verify_tls: bool = True
    ca_file: Path | None = Field(None, description="CA bundle for a private or self-signed certificate.")
    retries: int = Field(2, ge=0, le=10, description="Retries after a failure, with exponential backoff.")
    retry_backoff: PositiveDuration = Field(timedelta(seconds=1), description="Wait before the first retry.")

    @model_validator(mode="before")
    @classmethod
    def _status_as_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("expected_status"), int):
            data = {**data, "expected_status": [data["expected_status"]]}
        return data


class MysqlConfig(StrictModel):
    """MySQL/MariaDB server metrics."""

    enabled: bool = False
    interval: PositiveDuration | None = Field(None, description="Defaults to agent.collect_interval.")
    host: str = "127.0.0.1"
    port: int = Field(3306, ge=1, le=65535)
    unix_socket: Path | None = Field(None, description="Connect through this socket instead of host and port.")
    user: str | None = Field(None, description="Defaults to the defaults_file's user, else crucible.")
    password: SecretStr | None = None
    defaults_file: Path | None = Field(
        None, description="An option file with a [client] section (e.g. /etc/mysql/debian.cnf) for what is unset here."
    )
    connect_timeout: PositiveDuration = timedelta(seconds=5)
    sizes_interval: PositiveDuration = Field(
        timedelta(minutes=5), description="How often database and table sizes are read (information_schema is slow)."
    )
    top_tables: int = Field(20, ge=0, le=1000, description="The largest tables reported one by one.")


_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"


class LaravelAppConfig(StrictModel):
    """One Laravel application."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$", description="The app label (letters, digits, _ . : -).")
    path: Path = Field(description="The app's root directory (where artisan is).")
    logs: list[str] = Field(
        ["storage/logs/laravel*.log"], description="Log globs, relative to path unless absolute (single and daily)."
    )
    timezone: str = Field("UTC", description="config('app.timezone'): the zone of log and failed_at times.")
    queue_driver: Literal["database", "redis", "none"] = "database"
    queues: list[str] = Field(["default"], description="Queues always reported (the only ones read on redis).")
    database_url: SecretStr | None = Field(
        None,
        description="mysql://user:pass@host:3306/db (?unix_socket=/run/mysqld/mysqld.sock) or sqlite:///abs/path, "
        "where jobs and failed_jobs live; percent-encode special characters of the password.",
    )
    jobs_table: str = Field("jobs", pattern=_IDENTIFIER)
    failed_jobs_table: str = Field("failed_jobs", pattern=_IDENTIFIER)
    redis_url: SecretStr | None = Field(
        None, description="redis://:pass@127.0.0.1:6379/0 or unix:///run/redis/redis.sock?db=0 (queues, Horizon)."
    )
    redis_prefix: str = Field("laravel_database_", description="database.redis.options.prefix.")
    horizon_prefix: str = Field("laravel_horizon:", description="horizon.prefix.")
    scheduler_heartbeat: Path | None = Field(
        None, description="A file a scheduled task touches every minute (relative to path unless absolute)."
    )

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"path {str(value)!r} must be absolute")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as UTC or Europe/Berlin") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and urlsplit(value.get_secret_value()).scheme not in ("mysql", "mariadb", "sqlite"):
            raise ValueError("database_url must start with mysql://, mariadb:// or sqlite:///")
        return value

    @model_validator(mode="after")
    def _driver_needs_url(self) -> Self:
        if self.queue_driver == "database" and self.database_url is None:
            raise ValueError("queue_driver database needs database_url (or set queue_driver: none)")
        if self.queue_driver == "redis" and self.redis_url is None:
            raise ValueError("queue_driver redis needs redis_url (or set queue_driver: none)")
        return self

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The app's time zone."""
        return zoneinfo.ZoneInfo(self.timezone)

    def log_patterns(self) -> list[str]:
        """The log globs as absolute patterns."""
        return [str(self.path / pattern) for pattern in self.logs]


class LaravelConfig(StrictModel):
    """Laravel applications on this host; one collector per app."""

    enabled: bool = True
    interval: PositiveDuration | None = Field(None, description="Defaults to agent.collect_interval.")
    apps: list[LaravelAppConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [app.name for app in self.apps]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"laravel app names must be unique; repeated: {', '.join(repeated)}")
        return self


class AccessLogFileConfig(StrictModel):
    """One access log (or a glob of them) and its format."""

    path: str = Field(description="Absolute path or glob, e.g. /var/log/caddy/access*.log.")
    format: Literal["caddy", "combined"] = Field("caddy", description="caddy (JSON) or nginx/Apache combined.")
    host: str | None = Field(
        None, description="The vhost label of every line; caddy defaults to each request's Host, combined needs it."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.path.startswith("/"):
            raise ValueError(f"path {self.path!r} must be absolute")
        if self.format == "combined" and not self.host:
            raise ValueError("the combined format does not record the host: set host (e.g. host: shop.example.com)")
        return self


class AccessLogsConfig(StrictModel):
    """Access logs of the web server; runs when ``files`` is not empty."""

    enabled: bool = True
    interval: PositiveDuration | None = Field(None, description="Defaults to agent.collect_interval.")
    files: list[AccessLogFileConfig] = Field(default_factory=list)
    window: PositiveDuration = Field(timedelta(hours=1), description="How long per-endpoint statistics are kept.")
    max_paths: int = Field(500, ge=10, le=100_000, description="Endpoints kept per vhost and minute; more: (other).")


_FPM_SCHEMES = ("http", "https", "unix", "tcp")


class PhpFpmPoolConfig(StrictModel):
    """One pool and where its status page is."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.:-]+$", description="The pool label (letters, digits, _ . : -).")
    status_url: str = Field(
        description="http(s)://host/status (through the web server), or the pool's FastCGI socket: "
        "unix:///run/php/php8.2-fpm.sock or tcp://127.0.0.1:9000."
    )
    status_path: str = Field("/status", description="The pool's pm.status_path (FastCGI sockets only).")
    timeout: PositiveDuration = timedelta(seconds=5)

    @field_validator("status_url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in _FPM_SCHEMES or not (parts.netloc or parts.path):
            raise ValueError(
                f"invalid status_url {value!r}: use http(s)://host/path, unix:///path.sock or tcp://host:port"
            )
        if parts.scheme == "tcp" and parts.port is None:
            raise ValueError(f"invalid status_url {value!r}: tcp:// needs a port, e.g. tcp://127.0.0.1:9000")
        return value


class PhpFpmConfig(StrictModel):
    """PHP-FPM pools; runs when ``pools`` is not empty."""

    enabled: bool = True
    interval: PositiveDuration | None = Field(None, description="Defaults to agent.collect_interval.")
    pools: list[PhpFpmPoolConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [pool.name for pool in self.pools]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"php_fpm pool names must be unique; repeated: {', '.join(repeated)}")
        return self


class CollectorsConfig(StrictModel):
    """Every collector's settings."""

    system: SystemCollectorConfig = SystemCollectorConfig()
    services: ServicesConfig = ServicesConfig()
    http_checks: list[HttpCheckConfig] = Field(default_factory=list)
    mysql: MysqlConfig = MysqlConfig()
    access_logs: AccessLogsConfig = AccessLogsConfig()
    laravel: LaravelConfig = LaravelConfig()
    php_fpm: PhpFpmConfig = PhpFpmConfig()

    @model_validator(mode="after")
    def _unique_check_names(self) -> Self:
        names = [c.name for c in self.http_checks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"http_checks names must be unique; repeated: {', '.join(duplicates)}")
        return self


class AlertsConfig(StrictModel):
    """Shorthand thresholds (each becomes an alert rule), and the alerting file with everything else."""

    rules_file: Path | None = Field(
        None, description="The alerting file: rules, receivers, routes, silences... (see configs/alerts.yaml)."
    )

    cpu_threshold: Percent | None = Field(90, description="CPU usage percent (all cores).")
    memory_threshold: Percent | None = Field(90, description="Memory used percent.")
    disk_threshold: Percent | None = Field(85, description="Disk used percent, any mount.")
    service_down: bool = Field(True, description="Alert when a watched service is not running.")
    response_time_threshold: PositiveDuration | None = Field(timedelta(seconds=2), description="HTTP check latency.")


class EmailConfig(StrictModel):
    """SMTP notifications."""

    enabled: bool = False
    smtp_host: str = "localhost"
    smtp_port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_addr: str = "crucible-monitor@localhost"
    to: list[str] = Field(default_factory=list)


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

    files: dict[str, Path] = Field(default_factory=dict, description="Name → path of a log file.")


class McpConfig(StrictModel):
    """The MCP endpoint at /mcp on the agent's HTTP server (always behind the API token)."""

    enabled: bool = True
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Extra Host headers accepted (DNS-rebinding protection), e.g. monitor.example.com:443.",
    )
    allowed_origins: list[str] = Field(default_factory=list, description="Extra Origin headers accepted.")


class AnalysisConfig(StrictModel):
    """The anomaly engine: host model refits, scoring, anomalies and capacity forecasts."""

    enabled: bool = True
    step: PositiveDuration = Field(timedelta(minutes=1), description="Bucket width the models see.")
    training_window: PositiveDuration = Field(timedelta(days=7), description="History each refit learns from.")
    refit_interval: PositiveDuration = Field(timedelta(hours=6), description="How often models are refitted.")
    score_interval: PositiveDuration = Field(timedelta(minutes=1), description="How often new buckets are scored.")
    min_training_buckets: int = Field(120, ge=30, description="Buckets of history needed before the first fit.")
    n_estimators: int = Field(100, ge=10, le=1000, description="Trees of the host model.")
    contamination: float = Field(0.001, gt=0, lt=0.5, description="Expected share of anomalous training buckets.")
    min_threshold: float = Field(0.65, gt=0.5, lt=1, description="Lowest anomaly threshold (0.5 is ordinary).")
    min_buckets: int = Field(2, ge=1, description="Buckets above the threshold (within anomaly_gap) to open one.")
    anomaly_gap: PositiveDuration = Field(timedelta(minutes=5), description="Quiet time that ends an anomaly.")
    forecast_history: PositiveDuration = Field(timedelta(days=14), description="History a forecast fits.")
    forecast_horizon: PositiveDuration = Field(timedelta(days=30), description="Default forecast horizon.")
    snapshot_retention: PositiveDuration = Field(timedelta(days=7), description="Process snapshots kept.")
    models_kept: int = Field(3, ge=1, description="Model files kept on disk (registry rows stay).")


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


# ---------------------------------------------------------------------------------------------------------------
# Loading: YAML nodes keep their line numbers so every error can name file, line and key.

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
Path_ = tuple[str | int, ...]


class Located:
    """Plain Python data built from YAML nodes, with the line of every key."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[Path_, int] = {}
        self.errors: list[str] = []
        self._loader = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._loader.construct_object(key_node)
                if key == "<<":
                    self.errors.append(
                        f"{self.source}:{key_node.start_mark.line + 1}: YAML merge keys are not supported"
                    )
                    continue
                if key in result:
                    where = f"{self.source}:{key_node.start_mark.line + 1}"
                    self.errors.append(f"{where}: {dotted_key((*path, key))}: duplicate key")
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self._loader.construct_object(node)
        if isinstance(value, str):
            return self._expand_env(value, path, node.start_mark.line + 1)
        return value

    def _expand_env(self, text: str, path: Path_, line: int) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            self.errors.append(f"{self.source}:{line}: {dotted_key(path)}: environment variable {name} is not set")
            return ""

        return _ENV_REF.sub(replace, text)

    def line_of(self, loc: Path_) -> int | None:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None


def dotted_key(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _model_at(loc: Path_) -> type[BaseModel] | None:
    """The model class a config path points into, to list valid keys."""
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = _unwrap_model(model.model_fields[part].annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _unwrap_model(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()):
        found = _unwrap_model(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation


def _describe(error: ErrorDetails) -> tuple[Path_, str]:
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
    if error["type"] == "extra_forbidden":
        parent = _model_at(loc[:-1])
        valid = ", ".join(parent.model_fields) if parent else ""
        return loc, f"unknown key {loc[-1]!r}" + (f" (valid keys: {valid})" if valid else "")
    message = error["msg"].removeprefix("Value error, ")
    secret_file = re.match(r"(?:cannot read|give either \w+ or) (\w+_file)", message)
    if secret_file:  # point at the *_file key, not at its section
        loc = (*loc, secret_file.group(1))
    if error["type"] == "literal_error":
        message = f"invalid value {error.get('input')!r}: {message.lower()}"
    elif error["type"] in ("model_type", "model_attributes_type", "dict_type"):
        message = f"expected a mapping of keys, got {type(error.get('input')).__name__}"
    return loc, message


def read_yaml(text: str, source: str, *, sections: str) -> tuple[dict[str, Any], Located]:
    """YAML text as plain data (``${VAR}`` expanded) with the line of every key, for precise error messages.

    Raises:
        ConfigError: invalid YAML, or a top level that is not a mapping (``sections`` names what belongs there).
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}{line}: invalid YAML: {exc.problem}") from None
    located = Located(source)
    data = (located.build(node, ()) if node is not None else None) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the top level must be a mapping of sections ({sections}, ...)")
    return data, located


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
    problems: list[tuple[int, str]] = []
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc, message = _describe(error)
            where = located.line_of(loc) if located else None
            problems.append((where or 0, f"{source}{f':{where}' if where else ''}: {dotted_key(loc)}: {message}"))
    messages = (located.errors if located else []) + [text for _, text in sorted(problems, key=lambda p: p[0])]
    if messages:
        raise ConfigError("\n".join(messages))
    return config


def load_config(path: Path | None) -> Config:
    """Load ``path``, or the built-in defaults when ``path`` is None.

    Relative paths in the file (``rules_file: alerts.yaml``, ``ca_file``, log files...) are relative to the file.

    Raises:
        ConfigError: the file cannot be read or is invalid.
    """
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    return _relative_to(parse_config(text, str(path)), path.resolve().parent)


_M = TypeVar("_M", bound=BaseModel)


def _relative_to(model: _M, base: Path) -> _M:
    """``model`` with every relative path made relative to ``base`` (and ``~`` expanded)."""

    def fix(value: Any) -> Any:
        if isinstance(value, Path):
            expanded = value.expanduser()
            return expanded if expanded.is_absolute() else base / expanded
        if isinstance(value, BaseModel):
            return _relative_to(value, base)
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    changes = {name: fix(getattr(model, name)) for name in type(model).model_fields}
    return model.model_copy(update={k: v for k, v in changes.items() if v is not getattr(model, k)})


REDACTED = "**********"
"""What every secret looks like in output (pydantic's SecretStr rendering)."""


def redacted(config: Config) -> dict[str, Any]:
    """The config as JSON-ready data with every secret replaced by :data:`REDACTED`."""
    return config.model_dump(mode="json")


def iter_secrets(config: BaseModel) -> Iterator[str]:
    """Every secret value in the tree (to keep them out of logs and output)."""
    for name in type(config).model_fields:
        value = getattr(config, name)
        if isinstance(value, SecretStr):
            yield value.get_secret_value()
        elif isinstance(value, BaseModel):
            yield from iter_secrets(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, BaseModel):
                    yield from iter_secrets(item)
