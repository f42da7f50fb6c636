"""The dashboard when the agent goes away: a clear "unreachable, retrying" state that keeps the last data and says
how old it is, and that clears by itself when an agent answers again at the same address."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

import pytest
from agent_process import serve_agent, serve_command
from supervisor_fixture import free_port
from tui_scene import rendered, wait_for

from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.tui.app import build_app
from crucible_monitor.tui.widgets import Banner

pytestmark = pytest.mark.anyio


async def test_no_agent_at_the_address_says_so_and_keeps_retrying(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    remote = RemoteMonitor(url, "some-token")
    app = build_app(remote, url, refresh=0.3, close=remote.aclose)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.ctx.conn.failures >= 2, "two failed refreshes")
        assert f"agent unreachable at {url}, retrying" in rendered(app.screen.query_one("#headline"))
        banner = app.screen.query_one(Banner)
        assert banner.has_class("-unreachable") and "no data yet" in rendered(banner)


async def test_an_agent_that_goes_away_is_marked_unreachable_then_reconnected(tmp_path: Path) -> None:
    with serve_agent(tmp_path) as agent:
        remote = RemoteMonitor(agent.base_url, agent.token())
        app = build_app(remote, agent.base_url, refresh=0.3, close=remote.aclose)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: app.ctx.conn.data is not None, "the first refresh")
            banner = app.screen.query_one(Banner)
            assert not banner.has_class("-shown")
            headline = rendered(app.screen.query_one("#headline"))
            agent.process.kill()
            agent.process.wait()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(agent.process.pid, signal.SIGKILL)
            await wait_for(pilot, lambda: banner.has_class("-unreachable"), "the unreachable banner")
            text = rendered(banner)
            assert f"agent unreachable at {agent.base_url}, retrying" in text and "showing data from" in text
            assert rendered(app.screen.query_one("#headline")) == headline, "the last data stays on screen"
            again = subprocess.Popen(
                serve_command("--config", str(agent.config)),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                await wait_for(pilot, lambda: app.ctx.conn.error is None, "the reconnection", timeout=60)
                await wait_for(pilot, lambda: not banner.has_class("-shown"), "the banner gone")
            finally:
                again.kill()
                again.wait()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(again.pid, signal.SIGKILL)


async def test_an_agent_that_stops_answering_is_shown_stale_with_the_age_of_the_data(tmp_path: Path) -> None:
    """SIGSTOP freezes the agent with its socket open: requests hang (no error yet) while the data ages."""
    with serve_agent(tmp_path) as agent:
        remote = RemoteMonitor(agent.base_url, agent.token(), timeout=60.0)
        app = build_app(remote, agent.base_url, refresh=0.5, close=remote.aclose)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: app.ctx.conn.data is not None, "the first refresh")
            banner = app.screen.query_one(Banner)
            os.kill(agent.process.pid, signal.SIGSTOP)
            try:
                await wait_for(
                    pilot, lambda: rendered(banner).startswith("stale: last answer"), "the stale banner", timeout=40
                )
                assert banner.has_class("-stale") and " s ago" in rendered(banner)
                assert app.ctx.conn.error is None, "no error yet: the request is still waiting"
            finally:
                os.kill(agent.process.pid, signal.SIGCONT)
            await wait_for(pilot, lambda: not banner.has_class("-shown"), "fresh again")


async def test_an_agent_in_read_only_mode_hides_the_actions(tmp_path: Path) -> None:
    with serve_agent(tmp_path, "actions:\n  read_only: true\n") as agent:
        remote = RemoteMonitor(agent.base_url, agent.token())
        app = build_app(remote, agent.base_url, refresh=0.5, close=remote.aclose)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: app.ctx.conn.data is not None, "the first refresh")
            assert app.ctx.read_only, "learnt from the agent's config"
            assert [app.screen.check_action(a, ()) for a in ("acknowledge", "silence", "restart")] == [False] * 3
            assert app.screen.check_action("processes", ()) is True


async def test_a_wrong_token_is_shown_as_refused_not_as_unreachable(tmp_path: Path) -> None:
    with serve_agent(tmp_path) as agent:
        remote = RemoteMonitor(agent.base_url, "not-the-token")
        app = build_app(remote, agent.base_url, refresh=0.3, close=remote.aclose)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: app.ctx.conn.failures >= 1, "the first refused refresh")
            banner = rendered(app.screen.query_one(Banner))
            assert "refused the token" in banner and "unreachable" not in banner, banner
            assert app.ctx.conn.data is None
