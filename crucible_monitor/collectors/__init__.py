"""Collectors: one module per source, each with a declared metric catalogue, built from config here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from crucible_monitor.collectors.base import Collection, Collector
from crucible_monitor.collectors.http_checks import HttpCheckCollector
from crucible_monitor.collectors.processes import ProcessesCollector
from crucible_monitor.collectors.services import ServicesCollector
from crucible_monitor.collectors.system import SystemCollector
from crucible_monitor.config import Config

__all__ = ["Collection", "Collector", "ScheduledCollector", "build_collectors"]


@dataclass(frozen=True, slots=True)
class ScheduledCollector:
    """A collector, how often it runs, the settings it was built from (to tell when a config change matters) and
    their config key (``collectors.mysql``)."""

    collector: Collector
    interval: timedelta
    settings: object
    key: str = ""


def build_collectors(config: Config, *, clock: Callable[[], float] = time.time) -> list[ScheduledCollector]:
    """The enabled collectors of ``config``, each with its interval, all reading the time from ``clock``.

    Raises:
        ValueError: two collectors would share a name.
    """
    default = config.agent.collect_interval
    settings = config.collectors
    built: list[ScheduledCollector] = []
    if settings.system.enabled:
        system = settings.system
        collector: Collector = SystemCollector(system, clock=clock)
        built.append(ScheduledCollector(collector, system.interval or default, system, "collectors.system"))
        if system.top_processes:
            collector = ProcessesCollector(system, clock=clock)
            built.append(ScheduledCollector(collector, system.processes_interval, system, "collectors.system"))
    if settings.services.enabled:
        services = settings.services
        collector = ServicesCollector(services, clock=clock)
        built.append(ScheduledCollector(collector, services.interval or default, services, "collectors.services"))
    built.extend(
        ScheduledCollector(
            HttpCheckCollector(check, clock=clock), check.interval, check, f"collectors.http_checks[{i}]"
        )
        for i, check in enumerate(settings.http_checks)
    )
    # The application and GPU collectors (and their drivers: PyMySQL, redis, orjson, pynvml) are imported only when
    # configured: an agent without them starts faster and stays smaller.
    if settings.mysql.enabled:
        from crucible_monitor.collectors.mysql import MysqlCollector

        mysql = settings.mysql
        collector = MysqlCollector(mysql, clock=clock)
        built.append(ScheduledCollector(collector, mysql.interval or default, mysql, "collectors.mysql"))
    tailing = config.agent.data_dir / "tailing"  # read positions of tailed logs
    access_logs = settings.access_logs
    if access_logs.enabled and access_logs.files:
        from crucible_monitor.collectors.access_logs import AccessLogsCollector

        collector = AccessLogsCollector(access_logs, state_dir=tailing, clock=clock)
        built.append(
            ScheduledCollector(collector, access_logs.interval or default, access_logs, "collectors.access_logs")
        )
    if settings.laravel.enabled and settings.laravel.apps:
        from crucible_monitor.collectors.laravel import LaravelCollector

        every = settings.laravel.interval or default
        built.extend(
            ScheduledCollector(
                LaravelCollector(app, state_dir=tailing, clock=clock, key=f"collectors.laravel.apps[{i}]"),
                every,
                app,
                f"collectors.laravel.apps[{i}]",
            )
            for i, app in enumerate(settings.laravel.apps)
        )
    php_fpm = settings.php_fpm
    if php_fpm.enabled and php_fpm.pools:
        from crucible_monitor.collectors.php_fpm import PhpFpmCollector

        collector = PhpFpmCollector(php_fpm, clock=clock)
        built.append(ScheduledCollector(collector, php_fpm.interval or default, php_fpm, "collectors.php_fpm"))
    if settings.gpu.enabled:
        from crucible_monitor.collectors.gpu import GpuCollector

        gpu = settings.gpu
        collector = GpuCollector(gpu, procfs=settings.system.procfs, clock=clock)
        built.append(ScheduledCollector(collector, gpu.interval or default, gpu, "collectors.gpu"))
    built += _custom(config, {spec.name for s in built for spec in s.collector.catalogue}, clock)
    names = [s.collector.name for s in built]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate collector names: {sorted(names)}")
    return built


def _custom(config: Config, taken: set[str], clock: Callable[[], float]) -> list[ScheduledCollector]:
    """The custom-metric collectors: text files, commands and plugins (their names may not take the built-ins')."""
    settings, default = config.collectors, config.agent.collect_interval
    built: list[ScheduledCollector] = []
    textfile = settings.textfile
    if textfile.enabled and textfile.directory is not None:
        from crucible_monitor.collectors.textfile import TextfileCollector

        collector: Collector = TextfileCollector(textfile, taken=taken, clock=clock)
        built.append(ScheduledCollector(collector, textfile.interval or default, textfile, "collectors.textfile"))
    if settings.commands:
        from crucible_monitor.collectors.command import CommandCollector

        built.extend(
            ScheduledCollector(
                CommandCollector(command, i, taken=taken, clock=clock),
                command.interval,
                command,
                f"collectors.commands[{i}]",
            )
            for i, command in enumerate(settings.commands)
        )
    if settings.plugins:
        from crucible_monitor.collectors.plugins import load_plugin

        built.extend(
            ScheduledCollector(
                load_plugin(name, plugin, clock=clock), plugin.interval or default, plugin, f"collectors.plugins.{name}"
            )
            for name, plugin in sorted(settings.plugins.items())
            if plugin.enabled
        )
    return built
