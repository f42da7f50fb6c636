"""``GET /api/v1/logs/stream`` on a real agent following a real file: the last lines first, then each line appended
to the file as its own server-sent event; an unknown source is a 404 before any stream; a token is needed."""

from __future__ import annotations

import queue
import threading
from pathlib import Path

import httpx
from agent_process import serve_agent

from crucible_monitor.server.stream import new_lines

TIMEOUT = 30.0


def test_a_followed_file_streams_its_last_lines_then_each_new_one(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("one\ntwo\nthree\n", encoding="utf-8")
    extra = f"collectors:\n  services:\n    enabled: false\nlogs:\n  files:\n    app: {log}\n"
    with serve_agent(tmp_path, extra) as agent:
        headers = {"Authorization": f"Bearer {agent.token()}"}
        url = f"{agent.base_url}/api/v1/logs/stream"
        assert httpx.get(url, params={"source": "app"}, timeout=10).status_code == 401
        missing = httpx.get(url, params={"source": "nope"}, headers=headers, timeout=10)
        assert missing.status_code == 404 and "app" in missing.json()["detail"]
        events: queue.Queue[str] = queue.Queue()

        def read() -> None:
            params = {"source": "app", "lines": "2"}
            with httpx.stream("GET", url, params=params, headers=headers, timeout=TIMEOUT) as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        events.put(line.removeprefix("data: "))
                        if line == "data: four":
                            return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert [events.get(timeout=TIMEOUT), events.get(timeout=TIMEOUT)] == ["two", "three"]
        with log.open("a", encoding="utf-8") as f:
            f.write("four\n")
        assert events.get(timeout=TIMEOUT) == "four"
        reader.join(TIMEOUT)


def test_new_lines_follow_the_overlap_or_are_all_new_after_a_rotation() -> None:
    assert new_lines(["a", "b", "c"], ["b", "c", "d", "e"]) == ["d", "e"]
    assert new_lines(["b", "c"], ["a", "b", "c", "d"]) == ["d"]  # a longer read holds older lines first
    assert new_lines(["a", "b"], ["a", "b"]) == []
    assert new_lines(["a", "b"], ["x", "y"]) == ["x", "y"]  # rotated: nothing in common
    assert new_lines([], ["x"]) == ["x"]
