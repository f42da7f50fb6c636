"""``crucible-monitor dashboard --serve``: the dashboard in a browser, behind the agent's token.

A real ``dashboard --serve`` process in front of a real agent: without the token every route is a 401 (the page
and the websocket that drives the dashboard); ``/?token=`` sets the cookie once; over the websocket the served
dashboard draws the agent's headline; and Debian's headless Chromium loads the page, whose screenshot, read back
by Tesseract OCR, shows the headline's first words.
"""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from supervisor_fixture import free_port, wait_until
from tui_scene import BROKEN, Scene

from crucible_monitor.tui.web import COOKIE

pytestmark = pytest.mark.anyio
DEADLINE = 60.0


@pytest.fixture
def served(watched: Scene, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    argv = [sys.executable, "-m", "crucible_monitor.cli", "dashboard", "--serve", "--serve-listen"]
    argv += [f"127.0.0.1:{port}", "--url", watched.agent.base_url, "--token", watched.token]
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
        try:
            httpx.get(url, timeout=2)
        except httpx.TransportError:
            return False
        return True

    try:
        wait_until(answers, DEADLINE, "dashboard --serve to listen")
        yield url
    finally:
        process.terminate()
        process.wait(20)


def _headline_words(scene: Scene) -> str:
    """What the headline names of the scene itself (its counts may change with this machine's own state)."""
    with scene.client() as client:
        headline: str = client.get("/api/v1/status").json()["headline"]
    assert f"service:{BROKEN}" in headline, headline
    return f"service:{BROKEN}"


def test_without_the_token_the_page_is_refused_and_with_it_a_cookie_opens_it(served: str, watched: Scene) -> None:
    assert httpx.get(served).status_code == 401
    assert httpx.get(f"{served}/?token=wrong").status_code == 401
    assert httpx.get(f"{served}/static/js/textual.js").status_code == 401
    first = httpx.get(f"{served}/?token={watched.token}")
    assert first.status_code == 302 and first.headers["location"] == "/"
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert watched.token not in cookie
    page = httpx.get(served, cookies={COOKIE: first.cookies[COOKIE]})
    assert page.status_code == 200 and "/ws" in page.text


async def test_over_the_websocket_the_served_dashboard_draws_the_agents_headline(served: str, watched: Scene) -> None:
    words = _headline_words(watched)
    cookie = httpx.get(f"{served}/?token={watched.token}").cookies[COOKIE]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{served.replace('http', 'ws')}/ws")
        assert refused.value.status == 401
        drawn = ""
        async with session.ws_connect(
            f"{served.replace('http', 'ws')}/ws?width=160&height=48", headers={"Cookie": f"{COOKIE}={cookie}"}
        ) as ws:
            deadline = time.monotonic() + DEADLINE
            while words not in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", drawn).replace("\r\n", " "):
                assert time.monotonic() < deadline, f"no {words!r} on the served screen"
                message = await asyncio.wait_for(ws.receive(), DEADLINE)
                if message.type is aiohttp.WSMsgType.BINARY:
                    drawn += message.data.decode("utf-8", "replace")
                elif message.type is aiohttp.WSMsgType.TEXT:
                    drawn += message.data
                else:
                    pytest.fail(f"the websocket ended: {message.type}")


async def test_headless_chromium_shows_the_headline(served: str, watched: Scene, tmp_path: Path) -> None:
    words = _headline_words(watched)
    screenshot = tmp_path / "dashboard.png"
    seen = ""
    async with _chromium(tmp_path / "profile") as page:
        await page.call("Page.navigate", url=f"{served}/?token={watched.token}")
        deadline = time.monotonic() + DEADLINE
        while words.lower() not in seen.lower():
            assert time.monotonic() < deadline, f"no {words!r} in the OCR of the screenshot: {seen!r}"
            await asyncio.sleep(0.5)  # poll interval of a bounded wait: the page draws as the dashboard starts
            shot = await page.call("Page.captureScreenshot", format="png")
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            ocr = subprocess.run(["tesseract", str(screenshot), "-"], capture_output=True, text=True, check=True)
            seen = " ".join(ocr.stdout.split())
    log = (tmp_path / "serve.log").read_text(encoding="utf-8", errors="replace")
    assert watched.token not in log, "the token must not reach the log"


class _Page:
    """One Chromium tab driven over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: object) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self.ws.receive_json(), DEADLINE)
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result


@asynccontextmanager
async def _chromium(profile: Path) -> AsyncIterator[_Page]:
    """Debian's headless Chromium with the DevTools protocol on a free loopback port, and its first tab."""
    port = free_port()
    argv = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1600,1000",
        f"--remote-debugging-port={port}",
        "about:blank",
    ]
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={"HOME": str(profile), "PATH": "/usr/bin:/bin"}
    )
    try:
        targets: list[dict[str, Any]] = []

        def listening() -> bool:
            assert process.poll() is None, "chromium exited"
            try:
                targets[:] = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
            except httpx.TransportError:
                return False
            return any(t["type"] == "page" for t in targets)

        wait_until(listening, DEADLINE, "chromium's DevTools port")
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=0) as ws:
            yield _Page(ws)
    finally:
        process.terminate()
        process.wait(20)
