"""The live log tail: a real agent follows a real file and each line appended to it appears in the widget, as data
(markup and control characters shown, not interpreted); a stream that ends or is refused is followed again after a
backoff (a real loopback server whose streams end); the service drill-down follows its program's log."""

from __future__ import annotations

from pathlib import Path

import pytest
from loopback_servers import Reply, serve_http
from textual.app import App, ComposeResult
from tui_scene import FOLLOWED, Scene, wait_for

from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.tui.logtail import BACKOFF_MAX, BACKOFF_START, LogTail, as_data, next_backoff

pytestmark = pytest.mark.anyio

STREAM = "/api/v1/logs/stream"


class TailApp(App[None]):
    """One log tail over a client, nothing else."""

    def __init__(self, remote: RemoteMonitor, source: str) -> None:
        super().__init__()
        self.remote, self.source = remote, source

    def compose(self) -> ComposeResult:
        yield LogTail(self.source, lines=50, id="log")

    def on_mount(self) -> None:
        assert self.query_one(LogTail).follow(self.remote)

    async def on_unmount(self) -> None:
        await self.remote.aclose()


def _append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.writelines(f"{line}\n" for line in lines)


async def test_lines_appended_to_a_followed_file_appear_as_data(watched: Scene) -> None:
    app = TailApp(RemoteMonitor(watched.agent.base_url, watched.token), FOLLOWED)
    async with app.run_test(size=(120, 30)) as pilot:
        log = app.query_one(LogTail)
        await wait_for(pilot, lambda: log.state == "following" and "started" in log.lines, "the file's last lines")
        _append(watched.log_file, "first new line", "second \x1b[31mred\x1b[0m [bold]not markup[/bold]\x07")
        await wait_for(pilot, lambda: "first new line" in log.lines, "the appended line")
        shown = r"second \x1b[31mred\x1b[0m [bold]not markup[/bold]\x07"
        await wait_for(pilot, lambda: shown in log.lines, "the line with control characters, escaped")
        assert log.lines.index("first new line") < log.lines.index(shown)
        assert not any("\x1b" in line or "\x07" in line for line in log.lines)
        assert log.connections == 1, "one stream, no reconnection"


async def test_a_stream_that_is_refused_then_ends_is_followed_again() -> None:
    with serve_http() as server:
        sse = {"Content-Type": "text/event-stream"}
        server.script(
            STREAM,
            [
                Reply(503, b'{"detail": "busy"}'),
                Reply(200, b"data: hello\n\n: keep-alive\n\ndata: a\ndata: b\n\n", sse),
            ],
        )
        app = TailApp(RemoteMonitor(server.url(""), "token"), FOLLOWED)
        async with app.run_test(size=(120, 30)) as pilot:
            log = app.query_one(LogTail)
            await wait_for(pilot, lambda: any("log unavailable" in line for line in log.lines), "the refusal shown")
            await wait_for(pilot, lambda: log.connections >= 2, "a second stream after the first ended")
            # a stream starts over with the log's last lines; an event of two data fields is one line
            await wait_for(pilot, lambda: log.lines[:2] == ["hello", r"a\x0ab"], "each stream's lines, once")
            assert server.count(STREAM) >= 3
            assert server.requests_to(STREAM)[0].headers.get("Authorization") == "Bearer token"


def test_log_lines_are_escaped_and_the_backoff_doubles_to_its_cap() -> None:
    assert as_data("a\tb\x00c\x9bd") == "a\tb\\x00c\\x9bd"
    assert as_data("[red]x[/red]") == "[red]x[/red]"
    waits = [BACKOFF_START]
    for _ in range(10):
        waits.append(next_backoff(waits[-1]))
    assert waits[:3] == [0.5, 1.0, 2.0] and waits[-1] == BACKOFF_MAX
