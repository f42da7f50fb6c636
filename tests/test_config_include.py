"""``include:``: config files composed from others (the shipped profiles), with errors naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from crucible_monitor.config import config_notes, load_config
from crucible_monitor.errors import ConfigError

PROFILES = Path(__file__).resolve().parent.parent / "configs" / "profiles"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_three_profiles_compose_into_their_union(tmp_path: Path) -> None:
    names = ", ".join(str(PROFILES / f"{p}.yaml") for p in ("web-server", "database", "laravel-app"))
    top = _write(
        tmp_path / "monitor.yaml",
        f"include: [{names}]\n"
        "collectors:\n"
        "  services:\n"
        "    systemd:\n"
        "      units: [caddy, php8.2-fpm, mariadb, supervisor]\n"  # a list is replaced, so the top file restates it
        "  mysql:\n"
        "    top_tables: 5\n",
    )
    config = load_config(top)
    collectors = config.collectors
    assert collectors.access_logs.enabled and collectors.php_fpm.pools[0].name == "www"  # web-server
    assert [c.name for c in collectors.http_checks] == ["homepage"]
    assert collectors.mysql.enabled and collectors.mysql.user == "crucible"  # database
    assert collectors.mysql.sizes_interval.total_seconds() == 300
    assert collectors.mysql.top_tables == 5  # the including file wins
    assert [a.name for a in collectors.laravel.apps] == ["shop"]  # laravel-app
    assert collectors.services.supervisor.url == "unix:///var/run/supervisor.sock"
    assert collectors.services.categories == {"laravel-worker*": "queue", "horizon*": "queue"}
    assert collectors.services.systemd.units == ["caddy", "php8.2-fpm", "mariadb", "supervisor"]


def test_later_files_win_and_mappings_merge_key_by_key(tmp_path: Path) -> None:
    _write(
        tmp_path / "a.yaml",
        "agent:\n  collect_interval: 10s\n  listen_addr: 127.0.0.1:9191\nlogs:\n  files: {a: a.log}\n",
    )
    _write(tmp_path / "b.yaml", "agent:\n  collect_interval: 20s\nlogs:\n  files: {b: b.log}\n")
    config = load_config(_write(tmp_path / "top.yaml", "include: [a.yaml, b.yaml]\n"))
    assert config.agent.collect_interval.total_seconds() == 20
    assert config.agent.listen_addr == "127.0.0.1:9191"
    assert config.logs.files == {"a": tmp_path / "a.log", "b": tmp_path / "b.log"}


def test_includes_nest_relative_to_the_including_file(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    _write(tmp_path / "conf.d" / "inner.yaml", "agent:\n  collect_interval: 45s\n")
    _write(tmp_path / "conf.d" / "outer.yaml", "include: inner.yaml\n")
    config = load_config(_write(tmp_path / "top.yaml", "include: [conf.d/outer.yaml]\n"))
    assert config.agent.collect_interval.total_seconds() == 45


def test_an_error_in_an_included_file_names_that_file_and_line(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.yaml", "# a profile\nagent:\n  collect_interval: 10s\n  colect_interval: 20s\n")
    top = _write(tmp_path / "top.yaml", "include: [bad.yaml]\nagent:\n  listen_addr: nowhere\n")
    with pytest.raises(ConfigError) as error:
        load_config(top)
    lines = str(error.value).splitlines()
    assert f"{bad}:4: agent.colect_interval: unknown key 'colect_interval'" in lines[0] + lines[1]
    assert any(line.startswith(f"{top}:3: agent.listen_addr: ") for line in lines)


def test_a_key_overridden_by_the_including_file_is_reported_there(tmp_path: Path) -> None:
    _write(tmp_path / "base.yaml", "agent:\n  collect_interval: 10s\n")
    top = _write(tmp_path / "top.yaml", "include: [base.yaml]\n\nagent:\n  collect_interval: forever\n")
    with pytest.raises(ConfigError, match=rf"^{top}:4: agent.collect_interval: "):
        load_config(top)


def test_reading_problems_of_an_included_file_name_it(tmp_path: Path) -> None:
    inc = _write(tmp_path / "inc.yaml", "agent:\n  data_dir: ${CRUCIBLE_TEST_SURELY_UNSET}\n")
    with pytest.raises(ConfigError, match=rf"{inc}:2: agent.data_dir: environment variable CRUCIBLE_TEST_SURELY"):
        load_config(_write(tmp_path / "top.yaml", "include: [inc.yaml]\n"))
    broken = _write(tmp_path / "broken.yaml", "agent: [\n")
    with pytest.raises(ConfigError, match=rf"^{broken}:\d+: invalid YAML"):
        load_config(_write(tmp_path / "top2.yaml", "include: [broken.yaml]\n"))


def test_a_cycle_is_refused_naming_the_chain(tmp_path: Path) -> None:
    a = _write(tmp_path / "a.yaml", "include: [b.yaml]\n")
    b = _write(tmp_path / "b.yaml", "agent: {}\ninclude: [a.yaml]\n")
    with pytest.raises(ConfigError) as error:
        load_config(a)
    assert str(error.value) == f"{b}:2: include[0]: include cycle: {a} -> {b} -> {a}"


def test_a_missing_or_malformed_include_names_the_including_line(tmp_path: Path) -> None:
    top = _write(tmp_path / "top.yaml", "agent: {}\ninclude: [missing.yaml]\n")
    with pytest.raises(ConfigError, match=rf"^{top}:2: include\[0\]: no such file {tmp_path / 'missing.yaml'}$"):
        load_config(top)
    _write(top, "include: {a: 1}\n")
    with pytest.raises(ConfigError, match=rf"^{top}:1: include: expected a list of files"):
        load_config(top)


def test_check_config_notes_name_the_included_file(tmp_path: Path) -> None:
    inc = _write(tmp_path / "inc.yaml", "notifications:\n  email:\n    smtp_server: smtp.example.com:587\n")
    notes = config_notes(_write(tmp_path / "top.yaml", "include: [inc.yaml]\n"))
    assert notes == [f"{inc}:3: notifications.email.smtp_server is read as smtp_host + smtp_port"]


def test_a_relative_heartbeat_is_under_the_apps_root_not_the_configs_folder(tmp_path: Path) -> None:
    app = tmp_path / "www" / "shop"
    (tmp_path / "etc").mkdir()
    top = _write(
        tmp_path / "etc" / "monitor.yaml",
        "collectors:\n  laravel:\n    apps:\n"
        f"      - {{name: shop, path: {app}, queue_driver: none, scheduler_heartbeat: storage/framework/hb}}\n",
    )
    config = load_config(top)
    assert config.collectors.laravel.apps[0].scheduler_heartbeat == app / "storage" / "framework" / "hb"
    assert config.collectors.laravel.apps[0].log_patterns() == [str(app / "storage/logs/laravel*.log")]
