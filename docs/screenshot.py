"""Save the dashboard's overview as an SVG (Textual's own screenshot) from a running agent.

python docs/screenshot.py http://127.0.0.1:8765 "$(crucible-monitor token)" docs/dashboard-overview.svg
"""

from __future__ import annotations

import asyncio
import sys
import time

from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.tui.app import build_app


async def main(url: str, token: str, out: str, width: int = 120, height: int = 36) -> None:
    remote = RemoteMonitor(url, token)
    app = build_app(remote, url, refresh=1.0, close=remote.aclose)
    async with app.run_test(size=(width, height)) as pilot:
        deadline = time.monotonic() + 30
        while (app.ctx.conn.data is None or len(app.ctx.trends.values("cpu")) < 10) and time.monotonic() < deadline:
            await pilot.pause(0.2)
        await pilot.pause(0.5)
        app.save_screenshot(out)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
