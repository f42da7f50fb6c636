"""RemoteMonitor: the Monitor's read operations over a running agent's HTTP API (for the CLI, TUI and stdio MCP)."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from pydantic import TypeAdapter

from crucible_monitor.agent import read_api_token
from crucible_monitor.config import Config
from crucible_monitor.errors import ConfigError, CrucibleError, NotFoundError, QueryError
from crucible_monitor.schemas import (
    CheckResult,
    CollectorStatus,
    EventView,
    Health,
    MetricHistory,
    MetricInfo,
    ServiceStatus,
    SystemSnapshot,
)

__all__ = ["AgentUnavailable", "RemoteMonitor"]

_T = TypeVar("_T")


class AgentUnavailable(CrucibleError):
    """No agent answers at the configured address."""


class RemoteMonitor:
    """A client of one agent's ``/api/v1``; use as a context manager."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    @classmethod
    def from_config(cls, config: Config) -> RemoteMonitor:
        """Connect to the agent that ``config`` describes, with its token."""
        host = config.agent.host
        host = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
        url_host = f"[{host}]" if ":" in host else host
        return cls(f"http://{url_host}:{config.agent.port}", read_api_token(config))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _get(self, path: str, kind: type[_T] | Any, **params: Any) -> Any:
        try:
            response = self._http.get(path, params={k: v for k, v in params.items() if v is not None})
        except httpx.TransportError as exc:
            raise AgentUnavailable(f"no agent answers at {self.base_url} ({type(exc).__name__})") from exc
        _raise_for(response)
        return TypeAdapter(kind).validate_python(response.json())

    def health(self) -> Health:
        """``GET /api/v1/health``."""
        result: Health = self._get("/api/v1/health", Health)
        return result

    def collectors(self) -> list[CollectorStatus]:
        """``GET /api/v1/collectors``."""
        result: list[CollectorStatus] = self._get("/api/v1/collectors", list[CollectorStatus])
        return result

    def system_status(self) -> SystemSnapshot:
        """``GET /api/v1/metrics/system``."""
        result: SystemSnapshot = self._get("/api/v1/metrics/system", SystemSnapshot)
        return result

    def services(self) -> list[ServiceStatus]:
        """``GET /api/v1/metrics/services``."""
        result: list[ServiceStatus] = self._get("/api/v1/metrics/services", list[ServiceStatus])
        return result

    def http_checks(self) -> list[CheckResult]:
        """``GET /api/v1/metrics/http``."""
        result: list[CheckResult] = self._get("/api/v1/metrics/http", list[CheckResult])
        return result

    def list_metrics(self) -> list[MetricInfo]:
        """``GET /api/v1/metrics/catalogue``."""
        result: list[MetricInfo] = self._get("/api/v1/metrics/catalogue", list[MetricInfo])
        return result

    def history(
        self,
        metric: str,
        *,
        start: str | None = None,
        end: str | None = None,
        step: str | None = None,
        agg: str | None = None,
        labels: str | None = None,
    ) -> MetricHistory:
        """``GET /api/v1/metrics/history``; times and steps in the API's text forms (``1h``, ISO 8601...)."""
        result: MetricHistory = self._get(
            "/api/v1/metrics/history",
            MetricHistory,
            metric=metric,
            start=start,
            end=end,
            step=step,
            agg=agg,
            labels=labels,
        )
        return result

    def events(self, *, since: str | None = None, limit: int = 100) -> list[EventView]:
        """``GET /api/v1/events``."""
        result: list[EventView] = self._get("/api/v1/events", list[EventView], since=since, limit=limit)
        return result


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail = str(response.json().get("detail", response.text))
    except ValueError:
        detail = response.text
    match response.status_code:
        case 400:
            raise QueryError(detail)
        case 401:
            raise CrucibleError(
                f"the agent refused the token ({detail}); check agent.api_token or <data_dir>/api_token"
            )
        case 404:
            raise NotFoundError(detail)
        case 422:
            raise ConfigError(detail)
        case _:
            raise CrucibleError(f"the agent answered {response.status_code}: {detail}")
