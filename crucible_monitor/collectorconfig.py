"""The collectors' settings: one model per collector, gathered in :class:`CollectorsConfig` (``collectors:``).

Part of the config tree of :mod:`crucible_monitor.config`, which re-exports every name here.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator

from crucible_monitor.configtypes import Duration, PositiveDuration, StrictModel, WebUrl, check_unique, matching
from crucible_monitor.customconfig import CommandConfig, PluginConfig, TextfileConfig

__all__ = [
    "AccessLogFileConfig",
    "AccessLogsConfig",
    "Category",
    "CollectorsConfig",
    "CommandConfig",
    "GpuConfig",
    "HttpCheckConfig",
    "LaravelAppConfig",
    "LaravelConfig",
    "MysqlConfig",
    "PhpFpmConfig",
    "PhpFpmPoolConfig",
    "PluginConfig",
    "ServicesConfig",
    "SupervisorConfig",
    "SystemCollectorConfig",
    "SystemdConfig",
    "TextfileConfig",
    "SystemMetricFamily",
    "parse_go_dsn",
]

Category = Literal["web", "database", "cache", "php", "queue", "other"]
ItemName = Annotated[str, matching(r"[A-Za-z0-9_.:-]+", "invalid name {text!r}: use letters, digits and _ . : -")]


SystemMetricFamily = Literal["cpu", "memory", "disk", "network", "load", "pressure", "host"]
"""cpu: modes, context switches, interrupts, forks; memory: memory and swap; disk: filesystems and disk I/O;
network: interfaces; load: load averages and process counts; pressure: stall information; host: uptime and file
descriptors."""
_ALL_FAMILIES: list[SystemMetricFamily] = ["cpu", "memory", "disk", "network", "load", "pressure", "host"]


class SystemCollectorConfig(StrictModel):
    """CPU, memory, swap, disks, network, load, pressure; and the top processes."""

    enabled: bool = True
    interval: PositiveDuration | None = Field(None, description="Defaults to agent.collect_interval.")
    metrics: list[SystemMetricFamily] = Field(
        default_factory=lambda: list(_ALL_FAMILIES),
        min_length=1,
        description="The metric families to record: cpu, memory (and swap), disk (filesystems and I/O), network, "
        "load (and process counts), pressure, host (uptime, file descriptors).",
    )
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

    enabled: bool = Field(
        True,
        description="The default socket absent: not installed, one log line. Another url that does not answer: a "
        "blind spot.",
    )
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
    services: list[str] = Field(
        default_factory=list,
        description="Services to watch by name, whichever of systemd (as a unit) and supervisor (as a program) has "
        "them; added to systemd.units and supervisor.programs.",
    )
    categories: dict[str, Category] = Field(
        default_factory=dict, description="Service name (glob) to category, overriding the built-in guesses."
    )


class HttpCheckConfig(StrictModel):
    """One HTTP(S) endpoint check."""

    name: ItemName
    url: WebUrl
    interval: PositiveDuration = timedelta(seconds=30)
    timeout: PositiveDuration = timedelta(seconds=10)
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expected_status: list[int] = Field([200], description="Status codes that count as up.")
    keyword: str | None = Field(None, description="Text the body must contain.")
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Request headers; their values are secrets (shown redacted)."
    )
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


def parse_go_dsn(dsn: str) -> dict[str, Any]:
    """A Go MySQL DSN, ``user:pass@tcp(host:port)/db`` or ``user:pass@unix(/path.sock)/db``, as MysqlConfig keys.

    Parameters after ``?`` are the Go driver's (parseTime, charset...) and are ignored, but ``timeout``.

    Raises:
        ValueError: the text is not such a DSN.
    """
    form = "use user:password@tcp(host:port)/db or user:password@unix(/path.sock)/db"
    head, slash, tail = dsn.rpartition("/")
    if not slash:
        raise ValueError(f"invalid connection: no '/' before the database name: {form}")
    database, _, query = tail.partition("?")
    credentials, at, address = head.rpartition("@")
    keys: dict[str, Any] = {}
    if at:
        user, colon, password = credentials.partition(":")
        keys["user"] = user or None
        if colon:
            keys["password"] = password
    net, paren, rest = address.partition("(")
    if paren and not rest.endswith(")"):
        raise ValueError(f"invalid connection: unclosed '(' in the address: {form}")
    addr = rest.removesuffix(")")
    if net == "unix":
        if not addr:
            raise ValueError(f"invalid connection: unix() needs the socket's path: {form}")
        keys["unix_socket"] = addr
    elif net in ("tcp", ""):
        if addr:
            host, colon, port = addr.rpartition(":") if addr.rpartition(":")[2].isdigit() else (addr, "", "")
            keys["host"] = host.strip("[]")
            if colon:
                keys["port"] = int(port)
    else:
        raise ValueError(f"invalid connection: unknown network {net!r}: {form}")
    if database:
        keys["database"] = database
    for name, _, value in (p.partition("=") for p in query.split("&") if p):
        if name == "timeout":
            keys["connect_timeout"] = value
    return keys


_DSN_KEYS = ("host", "port", "unix_socket", "user", "password", "database", "connect_timeout")


class MysqlConfig(StrictModel):
    """MySQL/MariaDB server metrics."""

    config_aliases: ClassVar[Mapping[str, str]] = {
        "connection": "user, password, host and port (or unix_socket) and database",
    }

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
    database: str | None = Field(None, description="The schema to connect to (none is needed for server metrics).")
    connect_timeout: PositiveDuration = timedelta(seconds=5)
    sizes_interval: PositiveDuration = Field(
        timedelta(minutes=5), description="How often database and table sizes are read (information_schema is slow)."
    )
    top_tables: int = Field(20, ge=0, le=1000, description="The largest tables reported one by one.")
    slow_query_threshold: Duration = Field(
        timedelta(0),
        description="slow_queries lists only statements that ran this long or longer (0: the top ones by total time).",
    )

    @model_validator(mode="before")
    @classmethod
    def _connection(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("connection") is None:
            return data
        given = [key for key in _DSN_KEYS if key in data]
        if given:
            raise ValueError(f"give either connection or {', '.join(given)}, not both")
        data = dict(data)
        dsn = str(data.pop("connection"))
        return {**data, **parse_go_dsn(dsn)}


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
    cache_store: Literal["redis", "none"] = Field(
        "none", description="config('cache.default'): redis reads the cache's hits, misses and keys; none skips it."
    )
    cache_redis_db: int | None = Field(
        1, ge=0, le=15, description="REDIS_CACHE_DB, the cache connection's database (Laravel's 1); null: redis_url's."
    )
    cache_prefix: str | None = Field(
        None, description="cache.prefix, under redis_prefix; null: Laravel's default, the app name + '_cache_'."
    )
    session_driver: Literal["database", "redis", "none"] = Field(
        "none", description="config('session.driver'): active sessions from the sessions table or Redis keys."
    )
    sessions_table: str = Field("sessions", pattern=_IDENTIFIER)
    session_lifetime: PositiveDuration = Field(
        timedelta(minutes=120), description="session.lifetime: a database session is active this long after its use."
    )
    query_time: bool = Field(
        False,
        description="Statements and their time in the app's schema (MySQL performance_schema digests; the database "
        "user needs SELECT ON performance_schema.*).",
    )

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        if not value.is_absolute():
            raise ValueError(f"path {str(value)!r} must be absolute")
        return value

    @field_validator("scheduler_heartbeat")
    @classmethod
    def _heartbeat_under_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """A relative heartbeat is the app's file, not one next to the config (``~`` expanded)."""
        root = info.data.get("path")
        if value is None or value.expanduser().is_absolute() or not isinstance(root, Path):
            return value.expanduser() if value is not None else None
        return root / value

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
        if self.session_driver == "database" and self.database_url is None:
            raise ValueError("session_driver database needs database_url (or set session_driver: none)")
        for key, value in (("cache_store", self.cache_store), ("session_driver", self.session_driver)):
            if value == "redis" and self.redis_url is None:
                raise ValueError(f"{key} redis needs redis_url (or set {key}: none)")
        return self

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The app's time zone."""
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def cache_key_prefix(self) -> str:
        """The prefix of the cache's Redis keys: the connection's prefix, then the cache's."""
        default = re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_") + "_cache_"
        return self.redis_prefix + (default if self.cache_prefix is None else self.cache_prefix)

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
        check_unique((app.name for app in self.apps), "laravel app names")
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
        check_unique((pool.name for pool in self.pools), "php_fpm pool names")
        return self


class GpuConfig(StrictModel):
    """NVIDIA GPUs through NVML (the driver's libnvidia-ml); a host without the driver or a GPU: one log line."""

    enabled: bool = Field(
        False, description="true on a host with NVIDIA GPUs; without NVML or a GPU it records gpu_devices 0."
    )
    interval: PositiveDuration | None = Field(None, description="Defaults to agent.collect_interval.")
    top_processes: int = Field(
        10, ge=0, le=100, description="Processes per GPU kept by memory (the rest as (other)); 0: none."
    )


class CollectorsConfig(StrictModel):
    """Every collector's settings."""

    system: SystemCollectorConfig = SystemCollectorConfig()
    services: ServicesConfig = ServicesConfig()
    http_checks: list[HttpCheckConfig] = Field(default_factory=list)
    mysql: MysqlConfig = MysqlConfig()
    access_logs: AccessLogsConfig = AccessLogsConfig()
    laravel: LaravelConfig = LaravelConfig()
    php_fpm: PhpFpmConfig = PhpFpmConfig()
    gpu: GpuConfig = GpuConfig()
    textfile: TextfileConfig = TextfileConfig()
    commands: list[CommandConfig] = Field(default_factory=list)
    plugins: dict[str, PluginConfig] = Field(
        default_factory=dict, description="Collectors of installed packages by entry point name, with their settings."
    )

    @model_validator(mode="after")
    def _unique_check_names(self) -> Self:
        check_unique((c.name for c in self.http_checks), "http_checks names")
        check_unique((c.name for c in self.commands), "commands names")
        return self
