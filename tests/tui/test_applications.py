"""The overview's application numbers from a real agent: an access log the test keeps writing (requests/s and 5xx
per vhost) and a Laravel app's SQLite queue (ready and failed jobs), shown as the agent's operations report them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from agent_process import serve_agent
from test_cli_status_apps import _laravel_app
from tui_scene import rendered, wait_for

from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.tui.app import build_app

pytestmark = pytest.mark.anyio


def _row(text: str, key: str) -> list[str] | None:
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 2 and cells[1] == key:
            return cells[1:]
    return None


async def test_the_overview_shows_requests_5xx_per_vhost_and_laravel_jobs(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("", encoding="utf-8")
    database = _laravel_app(tmp_path / "shop")
    extra = (
        "collectors:\n  services:\n    supervisor:\n      enabled: false\n"
        f"  access_logs:\n    enabled: true\n    interval: 1s\n    files:\n      - path: {log}\n"
        "        format: combined\n        host: shop.test\n"
        f"  laravel:\n    enabled: true\n    interval: 1s\n    apps:\n      - name: shop\n"
        f"        path: {tmp_path / 'shop'}\n        queue_driver: database\n"
        f"        database_url: sqlite:///{database}\n"
    )
    (tmp_path / "agent").mkdir()
    with serve_agent(tmp_path / "agent", extra) as agent:
        remote = RemoteMonitor(agent.base_url, agent.token())
        app = build_app(remote, agent.base_url, refresh=0.5, close=remote.aclose)
        async with app.run_test(size=(160, 60)) as pilot:

            def shown() -> bool:
                stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
                with log.open("a", encoding="utf-8") as out:  # requests keep arriving while we wait
                    for status in (200, 200, 503):
                        out.write(f'10.0.0.1 - - [{stamp}] "GET /orders HTTP/1.1" {status} 512 "-" "test"\n')
                text = rendered(app.screen.query_one("#apps"))
                vhost = _row(text, "shop.test")
                return "Laravel" in text and vhost is not None and vhost[2] not in ("-", "0")

            await wait_for(pilot, shown, "the vhost's 5xx rate and the Laravel section", timeout=60)
            text = rendered(app.screen.query_one("#apps"))
    vhost, jobs = _row(text, "shop.test"), _row(text, "shop")
    assert vhost is not None and jobs is not None
    assert float(vhost[1]) > float(vhost[2]) > 0, "requests/s above 5xx/s, both measured"
    assert jobs[1:3] == ["2", "1"], "two ready jobs and one failed"
