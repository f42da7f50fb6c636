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
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Self, TypeVar

import platformdirs
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from crucible_monitor.errors import ConfigError

__all__ = [
    "ActionsConfig",
    "AnalysisConfig",
    "AgentConfig",
    "AlertsConfig",
    "Category",
    "CollectorsConfig",
    "Config",
    "Duration",
    "HttpCheckConfig",
    "LogsConfig",
    "McpConfig",
    "NotificationsConfig",
    "ServicesConfig",
    "StorageConfig",
    "SupervisorConfig",
    "SystemCollectorConfig",
    "SystemdConfig",
    "format_duration",
    "load_config",
    "parse_config",
    "parse_duration",
    "REDACTED",
    "redacted",
    "validate_config",
]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object) -> timedelta:
    """Parse ``30s``, ``5m``, ``1h30m``, ``7d``, ``2w``, ``250ms`` (or a number of seconds) into a timedelta.

    Raises:
        ValueError: the text is not a duration.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h or 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        parts = list(_DURATION_PART.finditer(text))
        if not text or "".join(p.group(0) for p in parts) != text:
            raise ValueError(f"invalid duration {value!r}: use e.g. 30s, 5m, 1h, 7d (units: ms, s, m, h, d, w)")
        seconds = sum(float(p.group(1)) * _DURATION_UNITS[p.group(2)] for p in parts)
    else:
        raise ValueError("expected a duration such as 30s, 5m, 1h or 7d")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest text :func:`parse_duration` reads back as ``value`` (``90s`` → ``1m30s``)."""
    total_ms = round(value.total_seconds() * 1000)
    if total_ms == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400000), ("h", 3600000), ("m", 60000), ("s", 1000), ("ms", 1)):
        count, total_ms = divmod(total_ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
PositiveDuration = Annotated[Duration, Field(gt=timedelta(0))]
Percent = Annotated[float, Field(ge=0, le=100)]
Category = Literal["web", "database", "cache", "php", "queue", "other"]


class _Model(BaseModel):
    """Strict and frozen: unknown keys are errors, loaded config never changes under a running agent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        """Turn ``x_file: PATH`` into ``x: <content of PATH>`` for every secret field ``x``."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        secrets = {name for name, f in cls.model_fields.items() if "SecretStr" in repr(f.annotation)}
        for name in secrets:
            if data.get(name) == "":
                data[name] = None  # `password: ${UNSET:-}` means no password
        for key in [k for k in data if isinstance(k, str) and k.endswith("_file")]:
            target = key.removesuffix("_file")
            if target not in secrets:
                continue
            if data.get(target) is not None:
                raise ValueError(f"give either {target} or {key}, not both")
            path = Path(str(data.pop(key))).expanduser()
            try:
                data[target] = path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ValueError(f"cannot read {key} {path}: {exc.strerror}") from None
        return data


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


def _check_url(value: object) -> str:
    text = str(value)
    if not re.match(r"https?://[^/\s]+", text):
        raise ValueError(f"invalid URL {text!r}: it must start with http:// or https:// and name a host")
    return text


ListenAddr = Annotated[str, BeforeValidator(lambda v: _check_listen_addr(str(v)))]


class AgentConfig(_Model):
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


class StorageConfig(_Model):
    """The Parquet tiers: raw samples, 1-minute and 1-hour rollups."""

    raw_retention: PositiveDuration = Field(timedelta(days=7), description="Raw samples (capped by data_retention).")
    minute_retention: PositiveDuration = Field(timedelta(days=30), description="1-minute rollups (capped likewise).")
    max_disk: ByteSize = Field(ByteSize(2 * 1024**3), description="Oldest days are deleted beyond this size.")
    flush_interval: PositiveDuration = Field(timedelta(minutes=10), description="How often the WAL becomes Parquet.")
    fsync: bool = Field(True, description="fsync the WAL after every batch (survives power loss, not only crashes).")
    worker_process: bool = Field(
        True, description="Write Parquet in a short-lived worker process, so the agent does not keep its memory."
    )


class SystemCollectorConfig(_Model):
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


class SystemdConfig(_Model):
    """systemd units, read with ``systemctl show``."""

    enabled: bool = Field(True, description="Skipped with one log line when systemd is not running.")
    discover: bool = Field(True, description="Also watch the web-stack units found on the host.")
    units: list[str] = Field(default_factory=list, description="Units to watch (.service may be left out).")


class SupervisorConfig(_Model):
    """supervisord programs, read through its XML-RPC API."""

    enabled: bool = Field(True, description="Skipped with one log line when the socket does not exist.")
    url: str = Field("unix:///var/run/supervisor.sock", description="unix:///path.sock or http://host:port.")
    username: str | None = None
    password: SecretStr | None = None
    programs: list[str] = Field(default_factory=list, description="Programs to watch; empty means all.")


class ServicesConfig(_Model):
    """Service states and restarts from systemd and supervisor."""

    enabled: bool = True
    interval: PositiveDuration | None = Field(None, description="Defaults to agent.collect_interval.")
    systemd: SystemdConfig = SystemdConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    categories: dict[str, Category] = Field(
        default_factory=dict, description="Service name (glob) to category, overriding the built-in guesses."
    )


class HttpCheckConfig(_Model):
    """One HTTP(S) endpoint check."""

    name: Annotated[str, BeforeValidator(_check_name)]
    url: Annotated[str, BeforeValidator(_check_url)]
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


class MysqlConfig(_Model):
    """MySQL/MariaDB server metrics."""

    enabled: bool = False
    interval: PositiveDuration | None = None
    host: str = "127.0.0.1"
    port: int = Field(3306, ge=1, le=65535)
    unix_socket: Path | None = None
    user: str = "crucible"
    password: SecretStr | None = None


class CollectorsConfig(_Model):
    """Every collector's settings."""

    system: SystemCollectorConfig = SystemCollectorConfig()
    services: ServicesConfig = ServicesConfig()
    http_checks: list[HttpCheckConfig] = Field(default_factory=list)
    mysql: MysqlConfig = MysqlConfig()

    @model_validator(mode="after")
    def _unique_check_names(self) -> Self:
        names = [c.name for c in self.http_checks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"http_checks names must be unique; repeated: {', '.join(duplicates)}")
        return self


class AlertsConfig(_Model):
    """Shorthand thresholds (each becomes an alert rule), and the alerting file with everything else."""

    rules_file: Path | None = Field(
        None, description="The alerting file: rules, receivers, routes, silences... (see configs/alerts.yaml)."
    )

    cpu_threshold: Percent | None = Field(90, description="CPU usage percent (all cores).")
    memory_threshold: Percent | None = Field(90, description="Memory used percent.")
    disk_threshold: Percent | None = Field(85, description="Disk used percent, any mount.")
    service_down: bool = Field(True, description="Alert when a watched service is not running.")
    response_time_threshold: PositiveDuration | None = Field(timedelta(seconds=2), description="HTTP check latency.")


class EmailConfig(_Model):
    """SMTP notifications."""

    enabled: bool = False
    smtp_host: str = "localhost"
    smtp_port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_addr: str = "crucible-monitor@localhost"
    to: list[str] = Field(default_factory=list)


class WebhookConfig(_Model):
    """Generic JSON webhook, signed with HMAC-SHA256 when a secret is set."""

    enabled: bool = False
    url: str | None = None
    secret: SecretStr | None = None


class SlackConfig(_Model):
    """Slack incoming webhook."""

    enabled: bool = False
    webhook_url: SecretStr | None = None


class NotificationsConfig(_Model):
    """Where alerts are sent."""

    email: EmailConfig = EmailConfig()
    webhook: WebhookConfig = WebhookConfig()
    slack: SlackConfig = SlackConfig()


class ActionsConfig(_Model):
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


class LogsConfig(_Model):
    """Log files that tail_logs may read, by name (services' own logs need no entry)."""

    files: dict[str, Path] = Field(default_factory=dict, description="Name → path of a log file.")


class McpConfig(_Model):
    """The MCP endpoint at /mcp on the agent's HTTP server (always behind the API token)."""

    enabled: bool = True
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Extra Host headers accepted (DNS-rebinding protection), e.g. monitor.example.com:443.",
    )
    allowed_origins: list[str] = Field(default_factory=list, description="Extra Origin headers accepted.")


class AnalysisConfig(_Model):
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


class Config(_Model):
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


class _Located:
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
                    self.errors.append(f"{where}: {_dotted((*path, key))}: duplicate key")
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
            self.errors.append(f"{self.source}:{line}: {_dotted(path)}: environment variable {name} is not set")
            return ""

        return _ENV_REF.sub(replace, text)

    def line_of(self, loc: Path_) -> int | None:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None


def _dotted(path: Path_) -> str:
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


def parse_config(text: str, source: str = "<config>") -> Config:
    """Validate YAML text into a :class:`Config`.

    Raises:
        ConfigError: YAML syntax, unknown keys, bad values or unset variables, each with file, line and key.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}{line}: invalid YAML: {exc.problem}") from None
    located = _Located(source)
    data = located.build(node, ()) if node is not None else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the top level must be a mapping of sections (agent, collectors, ...)")
    return validate_config(data, source, located)


def validate_config(data: dict[str, Any], source: str, located: _Located | None = None) -> Config:
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
            problems.append((where or 0, f"{source}{f':{where}' if where else ''}: {_dotted(loc)}: {message}"))
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
