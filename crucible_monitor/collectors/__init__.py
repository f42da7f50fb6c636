"""Collectors: one module per source, each with a declared metric catalogue, built from config here."""

from __future__ import annotations

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
    """A collector, how often it runs, and the settings it was built from (to tell when a config change matters)."""

    collector: Collector
    interval: timedelta
    settings: object


def build_collectors(config: Config) -> list[ScheduledCollector]:
    """The enabled collectors of ``config``, each with its interval.

    Raises:
        ValueError: two collectors would share a name.
    """
    default = config.agent.collect_interval
    settings = config.collectors
    built: list[ScheduledCollector] = []
    if settings.system.enabled:
        system = settings.system
        built.append(ScheduledCollector(SystemCollector(system), system.interval or default, system))
        if system.top_processes:
            built.append(ScheduledCollector(ProcessesCollector(system), system.processes_interval, system))
    if settings.services.enabled:
        services = settings.services
        built.append(ScheduledCollector(ServicesCollector(services), services.interval or default, services))
    built.extend(ScheduledCollector(HttpCheckCollector(check), check.interval, check) for check in settings.http_checks)
    names = [s.collector.name for s in built]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate collector names: {sorted(names)}")
    return built
