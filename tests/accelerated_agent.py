"""``crucible-monitor serve`` on an accelerated clock, for the reliability runs (a harness, not a product feature).

    python tests/accelerated_agent.py --config monitor.yaml --speed 60 --timeline timeline.json --phases phases

The agent is the real one, served as ``serve`` serves it; only its clock runs ``--speed`` times faster than real
time, and every job's interval is divided by the same factor, so a 10 s collection runs 6 times a real second at
60×, the hourly maintenance (compaction, rollups, retention) every real minute.

The timeline file keeps the accelerated clock continuous across kills: the first start writes its origin, each later
start reads it, and ``--skip`` moves it forward (time that passed while the agent was down, as after a real outage).

The phases file holds what the agent is doing now (``collect``, ``flush``, ``maintain``, comma-separated when several
run at once; empty when none), rewritten at the start and end of each of those jobs, so that a kill can be aimed at a
moment inside one of them.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from crucible_monitor import cli
from crucible_monitor.agent import Agent


class Timeline:
    """An accelerated clock whose origin is kept in a file: ``origin + (now - real_origin) * speed + skipped``."""

    def __init__(self, path: Path, speed: float, skip: float) -> None:
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
        else:
            now = time.time()
            saved = {"origin": now, "real_origin": now, "skipped": 0.0}
        saved["skipped"] += skip
        saved["speed"] = speed
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(saved), encoding="utf-8")
        os.replace(tmp, path)
        self.origin, self.real_origin, self.skipped, self.speed = (
            saved["origin"],
            saved["real_origin"],
            saved["skipped"],
            speed,
        )

    def __call__(self) -> float:
        return self.origin + (time.time() - self.real_origin) * self.speed + self.skipped


class Phases:
    """The jobs running now, written to a file at each start and end (one small write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.active: Counter[str] = Counter()
        path.write_text("", encoding="utf-8")

    def _write(self) -> None:
        self.path.write_text(",".join(sorted(n for n, k in self.active.items() if k > 0)), encoding="utf-8")

    def marked(self, name: str, job: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """``job``, noted as running under ``name`` while it runs."""

        @functools.wraps(job)
        async def run(*args: Any) -> Any:
            self.active[name] += 1
            self._write()
            try:
                return await job(*args)
            finally:
                self.active[name] -= 1
                self._write()

        return run


def make_agent(timeline: Timeline, phases: Phases) -> Callable[..., Agent]:
    """What ``cmd_serve`` calls to build the agent: on the timeline's clock, its jobs marked in the phases file."""

    def build(config: Any, *, config_path: Path | None = None) -> Agent:
        agent = Agent(config, config_path=config_path, clock=timeline, speed=timeline.speed)
        agent.run_collector = phases.marked("collect", agent.run_collector)  # type: ignore[method-assign]
        agent._flush = phases.marked("flush", agent._flush)  # type: ignore[method-assign]
        agent._maintain = phases.marked("maintain", agent._maintain)  # type: ignore[method-assign]
        return agent

    return build


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--timeline", type=Path, required=True)
    parser.add_argument("--phases", type=Path, required=True)
    parser.add_argument("--skip", type=float, default=0.0, help="accelerated seconds to move the clock forward")
    args = parser.parse_args(argv)
    timeline = Timeline(args.timeline, args.speed, args.skip)
    serve = cli.build_parser().parse_args(["serve", "--config", str(args.config)])
    return cli.cmd_serve(serve, make_agent(timeline, Phases(args.phases)))


if __name__ == "__main__":
    sys.exit(main())
