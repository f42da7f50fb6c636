"""The application drill-downs the agent offers: MySQL slow queries, a Laravel app's errors, top endpoints.

Each reads through its collector module, imported only when asked for (the drivers, PyMySQL, redis and orjson,
load with them), so that an agent without them stays small and the Monitor needs no collector module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from crucible_monitor.collectors.base import Collector
from crucible_monitor.config import Config
from crucible_monitor.errors import NotFoundError
from crucible_monitor.schemas import EndpointRanking, RecentErrors, SlowQueries, SlowQuerySource, TopEndpoints

__all__ = ["Applications"]


class Applications:
    """Queries over the configured applications, against the config and collectors the agent runs now."""

    def __init__(self, config: Callable[[], Config], collectors: Callable[[], Iterable[Collector]]) -> None:
        self._config = config
        self._collectors = collectors

    def slow_queries(self, since: float, *, limit: int = 10, source: SlowQuerySource = "auto") -> SlowQueries:
        """The statements that took the most time since ``since`` (blocks: run it in a thread).

        Raises:
            NotFoundError: MySQL is not monitored.
            CollectorError: the server cannot be reached.
        """
        from crucible_monitor.collectors import mysql  # the driver loads only when asked for

        config = self._config().collectors.mysql
        if not config.enabled:
            raise NotFoundError(
                "MySQL is not monitored: set collectors.mysql.enabled (see configs/profiles/database.yaml)"
            )
        return mysql.slow_queries(config, since, limit=limit, source=source)

    def recent_errors(self, app: str, since: float, *, limit: int = 50) -> RecentErrors:
        """A Laravel app's recent error log entries and failed jobs (blocks: run it in a thread).

        Raises:
            NotFoundError: no app has this name (the message lists them).
        """
        from crucible_monitor.collectors import laravel  # the drivers load only when asked for

        config = laravel.find_app(self._config().collectors.laravel, app)
        return laravel.recent_errors(config, since, limit=limit)

    def top_endpoints(self, host: str | None, by: EndpointRanking, *, since: float | None, limit: int) -> TopEndpoints:
        """The slowest or most failing endpoints per virtual host, from the access logs read so far.

        Raises:
            NotFoundError: no access logs are read, or an unknown host (the message lists them).
            QueryError: an unknown ranking.
        """
        from crucible_monitor.collectors.access_logs import AccessLogsCollector  # imported with its collector

        collector = next((c for c in self._collectors() if isinstance(c, AccessLogsCollector)), None)
        if collector is None:
            raise NotFoundError(
                "no access logs are read: add collectors.access_logs.files (see configs/profiles/web-server.yaml)"
            )
        return collector.top_endpoints(host, by, since=since, limit=limit)
