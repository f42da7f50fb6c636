"""Custom metrics: Prometheus text files, allowlisted commands and a plugin package, each real (files on disk,
processes run, the example package installed by pip), and their series flowing where built-in ones do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from helpers import assert_contract, values
from supervisor_fixture import wait_until

from crucible_monitor.agent import Agent
from crucible_monitor.collectors.command import CommandCollector
from crucible_monitor.collectors.plugins import BrokenPlugin, load_plugin
from crucible_monitor.collectors.textfile import TextfileCollector
from crucible_monitor.config import Config
from crucible_monitor.customconfig import CommandConfig, PluginConfig, TextfileConfig
from crucible_monitor.errors import CollectorError
from crucible_monitor.models import MetricKind
from crucible_monitor.monitor import Monitor
from crucible_monitor.server.app import build_app

pytestmark = pytest.mark.anyio

EXAMPLE = Path(__file__).parents[2] / "examples" / "crucible-plugin-example"
GOOD = """# HELP backup_age_seconds Seconds since the last good backup.
# TYPE backup_age_seconds gauge
backup_age_seconds{target="db"} 3600
# TYPE backups_total counter
backups_total{target="db"} 42
"""
BAD = "# TYPE ok gauge\nok 1\nthis is not a metric\n"


def test_text_files_become_series_and_a_bad_file_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "backup.prom").write_text(GOOD, encoding="utf-8")
    (tmp_path / "broken.prom").write_text(BAD, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("ignored 1\n", encoding="utf-8")
    collector = TextfileCollector(TextfileConfig(directory=tmp_path), taken={"cpu_usage_ratio"})
    collection = collector._collect()
    assert_contract(collector, collection)
    assert values(collection.samples, "backup_age_seconds") == {(("target", "db"),): 3600}
    assert values(collection.samples, "backups_total") == {(("target", "db"),): 42}
    assert values(collection.samples, "textfile_mtime_seconds") == {
        (("file", "backup.prom"),): (tmp_path / "backup.prom").stat().st_mtime
    }
    (spot,) = collection.blind
    assert spot.key == "collectors.textfile.directory" and spot.target == str(tmp_path / "broken.prom")
    assert "broken.prom: line 3" in spot.error and "this is not a metric" in spot.error
    kinds = {spec.name: (spec.kind, spec.unit) for spec in collector.catalogue}
    assert kinds["backups_total"] == (MetricKind.COUNTER, "count")
    assert kinds["backup_age_seconds"] == (MetricKind.GAUGE, "seconds")


def test_a_text_file_may_not_take_a_built_in_name(tmp_path: Path) -> None:
    (tmp_path / "sneaky.prom").write_text("# TYPE x gauge\nx 1\ncpu_usage_ratio 0.01\n", encoding="utf-8")
    collection = TextfileCollector(TextfileConfig(directory=tmp_path), taken={"cpu_usage_ratio"})._collect()
    assert "cpu_usage_ratio" not in {s.metric for s in collection.samples}
    (spot,) = collection.blind
    assert "line 3" in spot.error and "agent's own metrics" in spot.error


async def test_a_command_s_output_becomes_series_in_either_format() -> None:
    prometheus = CommandConfig(name="depth", argv=["/bin/sh", "-c", "echo 'queue_depth{queue=\"emails\"} 7'"])
    json_command = CommandConfig(name="js", argv=["/bin/echo", '{"jobs_waiting": 3}'], format="json")
    first, second = CommandCollector(prometheus, 0), CommandCollector(json_command, 1)
    one, two = await first.collect(), await second.collect()
    assert_contract(first, one)
    assert values(one.samples, "queue_depth") == {(("queue", "emails"),): 7}
    assert values(two.samples, "jobs_waiting") == {(): 3}
    assert values(one.samples, "command_runs_total")[(("command", "depth"), ("result", "ok"))] == 1
    assert one.blind == [] and "queue_depth" in {spec.name for spec in first.catalogue}


async def test_a_failing_command_is_counted_and_a_blind_spot() -> None:
    collector = CommandCollector(CommandConfig(name="broken", argv=["/bin/sh", "-c", "echo oops >&2; exit 4"]), 2)
    collection = await collector.collect()
    (spot,) = collection.blind
    assert spot.key == "collectors.commands[2]" and spot.error == "/bin/sh exited with status 4: oops"
    assert values(collection.samples, "command_runs_total")[(("command", "broken"), ("result", "failed"))] == 1
    garbled = CommandCollector(CommandConfig(name="garbled", argv=["/bin/echo", "{not json"], format="json"), 0)
    (spot,) = (await garbled.collect()).blind
    assert "its output is not json metrics" in spot.error


async def test_a_hung_command_is_killed_with_its_children_at_the_timeout(tmp_path: Path) -> None:
    child = tmp_path / "child.pid"
    script = f"/bin/sleep 600 & echo $! > {child}; wait"
    config = CommandConfig.model_validate({"name": "hung", "argv": ["/bin/sh", "-c", script], "timeout": "1s"})
    collector = CommandCollector(config, 0)
    collection = await collector.collect()
    (spot,) = collection.blind
    assert spot.error == "/bin/sh did not finish within 1 s: killed"
    assert values(collection.samples, "command_runs_total")[(("command", "hung"), ("result", "timeout"))] == 1
    pid = int(child.read_text())
    wait_until(lambda: not _alive(pid), 10, "the command's child to be killed too")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().rpartition(")")[2].split()[0] != "Z"


def test_a_command_must_be_an_absolute_program() -> None:
    with pytest.raises(ValueError, match="must be an absolute path, not 'sh' \\(no PATH lookup, no shell\\)"):
        CommandConfig(name="x", argv=["sh", "-c", "true"])


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example plugin package, installed by pip into a directory put on sys.path."""
    target = tmp_path_factory.mktemp("plugins")
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(EXAMPLE)],
        check=True,
        cwd=build,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    sys.path.insert(0, str(target))
    try:
        yield target
    finally:
        sys.path.remove(str(target))


async def test_the_example_plugin_collects_like_a_built_in(installed_example: Path) -> None:
    collector = load_plugin("example", PluginConfig(), clock=time.time)
    assert not isinstance(collector, BrokenPlugin), getattr(collector, "error", "")
    collection = await collector.collect()
    assert_contract(collector, collection, complete=True)
    with open("/proc/sys/fs/file-nr", encoding="ascii") as f:
        assert values(collection.samples, "example_file_handles")[()] > 0 < int(f.read().split()[0])


async def test_a_plugin_that_is_missing_or_fails_is_a_blind_spot_and_the_agent_goes_on(
    installed_example: Path, tmp_path: Path
) -> None:
    config = Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "hostname": "plugins-1", "api_token": "plugin-token-0123"},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {
                "system": {"enabled": False},
                "services": {"enabled": False},
                "plugins": {"missing": {}, "example": {"colour": "blue"}},
            },
        }
    )
    agent = Agent(config)
    await agent.start(schedule=False)
    try:
        for name in ("plugin:missing", "plugin:example"):
            await agent.run_collector(name)
        summary = await Monitor(agent).status_summary()
    finally:
        await agent.stop()
    found = {f.subject: f for f in summary.findings}
    assert "plugin missing is not installed (installed: example" in str(found["collector:plugin:missing"].detail)
    assert "unknown settings ['colour']; valid: procfs" in str(found["collector:plugin:example"].detail)
    with pytest.raises(CollectorError, match="not installed"):
        await BrokenPlugin("missing", "plugin missing is not installed").collect()


async def test_custom_series_reach_history_alert_rules_and_prometheus(tmp_path: Path) -> None:
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    (textfiles / "backup.prom").write_text(GOOD, encoding="utf-8")
    rules = tmp_path / "alerts.yaml"
    rules.write_text(
        "rules:\n  - name: BackupStale\n    kind: threshold\n    metric: backup_age_seconds\n"
        "    op: '>'\n    value: 1800\n    for: 0s\n",
        encoding="utf-8",
    )
    config = Config.model_validate(
        {
            "agent": {"data_dir": str(tmp_path / "data"), "hostname": "custom-1", "api_token": "custom-token-0123"},
            "storage": {"fsync": False, "worker_process": False},
            "collectors": {
                "system": {"enabled": False},
                "services": {"enabled": False},
                "textfile": {"directory": str(textfiles)},
            },
            "alerts": {"rules_file": str(rules)},
        }
    )
    agent = Agent(config)
    await agent.start(schedule=False)
    try:
        await agent.run_collector("textfile")
        monitor = Monitor(agent)
        now = agent.clock()
        history = await monitor.history("backup_age_seconds", start=now - 60, end=now + 1)
        await agent.evaluate_alerts()
        alerts = await monitor.list_alerts(state="firing")
        app = build_app(agent, "custom-token-0123", manage_agent=False)
        headers = {"Authorization": "Bearer custom-token-0123"}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://agent") as client:
            exposition = (await client.get("/metrics", headers=headers)).text
    finally:
        await agent.stop()
    assert [p[1] for s in history.series for p in s.points] == [3600]
    assert [a.name for a in alerts] == ["BackupStale"]
    lines = exposition.splitlines()
    assert any(line.startswith('crucible_backup_age_seconds{target="db"} 3600.0') for line in lines), exposition
    assert "# TYPE crucible_backups_total counter" in lines
