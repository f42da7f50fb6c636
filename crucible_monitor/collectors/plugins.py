"""Collectors from installed packages: the ``crucible_monitor.collectors`` entry point group.

A package declares ``[project.entry-points."crucible_monitor.collectors"] name = "module:factory"``; the config
turns it on with ``collectors.plugins.<name>: {enabled: true, ...its settings}``. The factory is called as
``factory(settings, clock=clock)`` and returns a collector with the built-in contract (:class:`~.base.Collector`:
``name``, ``catalogue``, ``collect``, and failures raised as :class:`~crucible_monitor.errors.CollectorError`).
A plugin that is not installed, fails to import or to build is a collector that fails each run with that error:
a blind spot the status summary names (``collector:plugin:<name>``), while the agent goes on.
``examples/crucible-plugin-example/`` is a complete plugin package.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any

from crucible_monitor.collectors.base import Collection, Collector
from crucible_monitor.customconfig import PluginConfig
from crucible_monitor.errors import CollectorError
from crucible_monitor.models import MetricSpec

__all__ = ["ENTRY_POINT_GROUP", "BrokenPlugin", "load_plugin"]

ENTRY_POINT_GROUP = "crucible_monitor.collectors"

logger = logging.getLogger(__name__)


class BrokenPlugin:
    """Stands for a plugin that could not be loaded: each run fails with why."""

    catalogue: Sequence[MetricSpec] = ()

    def __init__(self, name: str, error: str) -> None:
        self.name = f"plugin:{name}"
        self.error = error

    async def collect(self) -> Collection:
        """Fail: the plugin is not there.

        Raises:
            CollectorError: always, with the reason it could not be loaded.
        """
        raise CollectorError(self.error)


def load_plugin(name: str, config: PluginConfig, *, clock: Callable[[], float]) -> Collector:
    """The collector of plugin ``name`` built with its settings, or a :class:`BrokenPlugin` saying why not."""
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        installed = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
        error = f"plugin {name} is not installed (installed: {', '.join(installed) or 'none'})"
        logger.warning("%s", error)
        return BrokenPlugin(name, error)
    try:
        factory: Callable[..., Any] = found[0].load()
        collector = factory(dict(config.settings()), clock=clock)
        _check_contract(collector)
    except Exception as exc:  # a plugin is third-party code: whatever it raises, the agent goes on
        error = f"plugin {name} ({found[0].value}) failed to load: {type(exc).__name__}: {exc}"
        logger.warning("%s", error)
        return BrokenPlugin(name, error)
    return collector  # type: ignore[no-any-return]


def _check_contract(collector: object) -> None:
    missing = [attr for attr in ("name", "catalogue", "collect") if not hasattr(collector, attr)]
    if missing:
        raise TypeError(f"the factory's result lacks {', '.join(missing)} (see collectors/base.py:Collector)")
    if not isinstance(collector.catalogue, Sequence | Mapping):  # type: ignore[attr-defined]
        raise TypeError("catalogue must be a sequence of MetricSpec")
