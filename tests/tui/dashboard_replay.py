"""A recording of a real agent's answers to the dashboard, and its replay in place of RemoteMonitor.

The snapshot tests must draw the same screen every time, which a live agent cannot give (its values and times
move). :class:`Recorder` wraps a :class:`~crucible_monitor.remote.RemoteMonitor` and keeps each operation's answer
(or error) by call, with the log lines it streamed; :class:`Replay` answers the same calls from that file, each
validated back into its declared result type, and a followed log sends its recorded lines and then stays open.
Times (``start``, ``end``, ``since``) are left out of a call's key: the replayed dashboard runs with its clock
frozen at the recording's time, so its windows are the recorded ones.

Record again (a real supervisord and agent, the tui_scene):
``PYTHONPATH=. python tests/tui/dashboard_replay.py`` (writes :data:`RECORDING`).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from crucible_monitor import errors
from crucible_monitor.errors import CrucibleError, NotFoundError
from crucible_monitor.operation_table import OPERATIONS
from crucible_monitor.remote import RemoteMonitor

RECORDING = Path(__file__).parent / "recorded" / "dashboard.json"
HISTORY_POINTS = 8
"""30 s points of history the agent holds before the recording starts (four minutes)."""
_TIMES = frozenset({"start", "end", "since", "until"})


def call_key(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """``name`` and its arguments but the times, as one string."""
    arguments = {**dict(zip(OPERATIONS[name].arguments(), args, strict=False)), **kwargs}
    kept = {k: v for k, v in arguments.items() if k not in _TIMES and v is not None}
    return name + json.dumps(kept, sort_keys=True, default=str)


class Recorder:
    """A RemoteMonitor that keeps what the agent answered."""

    def __init__(self, remote: RemoteMonitor) -> None:
        self.remote = remote
        self.answers: dict[str, Any] = {}
        self.logs: dict[str, list[str]] = {}

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        operation = OPERATIONS[name]

        async def call(*args: Any, **kwargs: Any) -> Any:
            key = call_key(name, args, kwargs)
            try:
                result = await getattr(self.remote, name)(*args, **kwargs)
            except CrucibleError as exc:
                self.answers[key] = {"error": type(exc).__name__, "message": str(exc)}
                raise
            self.answers[key] = {"result": TypeAdapter(operation.result).dump_python(result, mode="json")}
            return result

        return call

    async def follow_logs(
        self, source: str, *, lines: int = 20, contains: str | None = None, on_open: Callable[[], object] | None = None
    ) -> AsyncIterator[str]:
        kept = self.logs.setdefault(source, [])
        kept.clear()
        async for line in self.remote.follow_logs(source, lines=lines, contains=contains, on_open=on_open):
            kept.append(line)
            yield line

    async def aclose(self) -> None:
        await self.remote.aclose()

    def save(self, path: Path, recorded_at: float) -> None:
        """Write the recording (sorted, so that a new one diffs well)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        body = {"recorded_at": recorded_at, "answers": self.answers, "logs": self.logs}
        path.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n", encoding="utf-8")


class Replay:
    """The recorded answers, served as RemoteMonitor serves the agent's; a call not recorded is a NotFoundError."""

    def __init__(self, path: Path = RECORDING) -> None:
        body = json.loads(path.read_text(encoding="utf-8"))
        self.recorded_at: float = body["recorded_at"]
        self.answers: dict[str, Any] = body["answers"]
        self.logs: dict[str, list[str]] = body["logs"]
        self.base_url = "http://recorded.agent"

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        operation = OPERATIONS.get(name)
        if operation is None:
            raise AttributeError(name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            key = call_key(name, args, kwargs)
            answer = self.answers.get(key)
            if answer is None:
                raise NotFoundError(f"not in the recording: {key}")
            if "error" in answer:
                raise getattr(errors, answer["error"], CrucibleError)(answer["message"])
            return TypeAdapter(operation.result).validate_python(answer["result"])

        return call

    async def follow_logs(
        self, source: str, *, lines: int = 20, contains: str | None = None, on_open: Callable[[], object] | None = None
    ) -> AsyncIterator[str]:
        if source not in self.logs:
            raise NotFoundError(f"no log {source!r} in the recording")
        if on_open is not None:
            on_open()
        for line in self.logs[source][-lines:]:
            yield line
        await asyncio.Event().wait()  # a stream stays open; nothing more comes

    async def aclose(self) -> None:
        return None


async def _record(path: Path) -> None:
    """Drive the dashboard over a real agent through the screens the snapshots show, recording every answer."""
    import tempfile

    from supervisor_fixture import wait_until
    from textual.widgets import DataTable
    from tui_scene import BROKEN, BROKEN_SAYS, WORKER, scene, wait_for

    from crucible_monitor.tui.app import build_app
    from crucible_monitor.tui.details import ServiceScreen
    from crucible_monitor.tui.history import HistoryScreen
    from crucible_monitor.tui.logtail import LogTail

    with tempfile.TemporaryDirectory() as tmp, scene(Path(tmp)) as ready:
        with ready.client() as c:  # a few minutes of history, so that the 1 h chart has a line to draw

            def points() -> int:
                params: dict[str, str | float] = {
                    "metric": "cpu_usage_ratio",
                    "labels": "cpu=total",
                    "start": time.time() - 3600,
                    "step": 30,
                }
                series: list[dict[str, Any]] = c.get("/api/v1/metrics/history", params=params).json()["series"]
                return len(series[0]["points"]) if series else 0

            wait_until(lambda: points() >= HISTORY_POINTS, 600, f"{HISTORY_POINTS} points of CPU history")
        recorder = Recorder(RemoteMonitor(ready.agent.base_url, ready.token))
        app = build_app(recorder, "http://recorded.agent", refresh=1.0, close=recorder.aclose)
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_for(pilot, lambda: app.ctx.conn.data is not None, "the first refresh")
            await wait_for(
                pilot,
                lambda: {WORKER, BROKEN} <= {str(k.value) for k in app.screen.query_one("#services", DataTable).rows},
                "both programs listed",
            )
            await pilot.press("h")
            await wait_for(pilot, lambda: isinstance(app.screen, HistoryScreen), "the history screen")
            history = app.screen
            assert isinstance(history, HistoryScreen)
            await wait_for(pilot, lambda: history.band is not None, "the band")
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, HistoryScreen), "back on the overview")
            services = app.screen.query_one("#services", DataTable)
            services.focus()
            services.move_cursor(row=services.get_row_index(BROKEN))
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, ServiceScreen), "the service screen")
            service = app.screen
            assert isinstance(service, ServiceScreen)
            await wait_for(pilot, lambda: any(BROKEN_SAYS in line for line in service.query_one(LogTail).lines), "log")
            await wait_for(pilot, lambda: service.detail is not None, "the service's details")
            recorded_at = time.time()
        recorder.save(path, recorded_at)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.path.insert(0, str(Path(__file__).parents[1]))
    asyncio.run(_record(RECORDING))
    print(f"recorded {RECORDING}")
