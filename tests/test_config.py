"""Config: the shipped files load, every field is documented, bad input names file, line and key."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import BaseModel

from crucible_monitor.cli import main
from crucible_monitor.config import (
    Config,
    format_duration,
    iter_secrets,
    load_config,
    parse_config,
    parse_duration,
    patched,
    redacted,
    validate_config,
)
from crucible_monitor.errors import ConfigError

CONFIGS = Path(__file__).parent.parent / "configs"


def _field_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    paths = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        nested = [a for a in (annotation, *getattr(annotation, "__args__", ())) if isinstance(a, type)]
        sub = next((a for a in nested if issubclass(a, BaseModel)), None)
        paths.append(prefix + name)
        origin = getattr(annotation, "__origin__", None)
        if sub is not None and origin is dict:  # keyed by name (plugins): the fields of any entry
            paths.extend(_field_paths(sub, f"{prefix}{name}.*."))
        elif sub is not None and origin is not list:
            paths.extend(_field_paths(sub, f"{prefix}{name}."))
    return paths


def _has_path(data: object, path: str) -> bool:
    for part in path.split("."):
        if isinstance(data, list):
            data = data[0] if data else {}
        if part == "*" and isinstance(data, dict) and data:
            data = next(iter(data.values()))
            continue
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def test_shipped_example_config_loads_and_documents_every_field() -> None:
    import yaml

    text = (CONFIGS / "monitor.yaml").read_text(encoding="utf-8")
    config = parse_config(text, "monitor.yaml")
    raw = yaml.safe_load(text)
    missing = [p for p in _field_paths(Config) if not _has_path(raw, p)]
    assert missing == [], f"configs/monitor.yaml does not document: {missing}"
    assert config.collectors.http_checks[1].expected_status == [200]
    assert config.storage.max_disk == 2 * 1024**3
    assert config.agent.api_token is None  # ${CRUCIBLE_API_TOKEN:-} unset → no token → generated
    assert not config.fleet.active and config.fleet.hosts  # documented, but an install answers for itself only


# What each shipped profile is for, read back from the loaded config (a new profile adds its line here).
PROFILES: dict[str, tuple[Callable[[Config], object], object]] = {
    "database": (lambda c: (c.collectors.mysql.enabled, c.collectors.services.systemd.units), (True, ["mariadb"])),
    "gpu-server": (lambda c: (c.collectors.gpu.enabled, c.collectors.gpu.top_processes), (True, 10)),
    "laravel-app": (
        lambda c: [(a.name, a.queue_driver, a.queues) for a in c.collectors.laravel.apps],
        [("shop", "redis", ["default", "emails"])],
    ),
    "web-server": (
        lambda c: ([f.format for f in c.collectors.access_logs.files], [p.name for p in c.collectors.php_fpm.pools]),
        (["caddy"], ["www"]),
    ),
}


@pytest.mark.parametrize("profile", sorted((CONFIGS / "profiles").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_profiles_load_with_their_settings(profile: Path) -> None:
    read, expected = PROFILES[profile.stem]
    assert read(load_config(profile)) == expected
    assert read(Config()) != expected  # the profile, not the defaults, set them


def test_no_file_gives_safe_defaults() -> None:
    config = load_config(None)
    assert config.agent.listen_addr == "127.0.0.1:9090"
    assert config.agent.collect_interval == timedelta(seconds=10)
    assert config.agent.api_token is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("agent:\n  colect_interval: 10s\n", "x.yaml:2: agent.colect_interval: unknown key 'colect_interval'"),
        ("agent:\n  collect_interval: 10 parsecs\n", "x.yaml:2: agent.collect_interval: invalid duration"),
        ("agent:\n  listen_addr: localhost\n", "x.yaml:2: agent.listen_addr: invalid listen address"),
        ("agent:\n  listen_addr: example.com:80\n", "x.yaml:2: agent.listen_addr: invalid listen host"),
        ("alerts:\n  cpu_threshold: 120\n", "x.yaml:2: alerts.cpu_threshold: Input should be less than or equal"),
        (
            "collectors:\n  http_checks:\n    - name: a\n      url: ftp://x\n",
            "x.yaml:4: collectors.http_checks[0].url: invalid URL 'ftp://x'",
        ),
        (
            "collectors:\n  http_checks:\n    - name: a\n      url: http://x\n    - name: a\n      url: http://y\n",
            "collectors: http_checks names must be unique; repeated: a",
        ),
        ("collectors:\n  services:\n    categories: {x: nosql}\n", "x.yaml:3: collectors.services.categories.x"),
        (
            "collectors:\n  http_checks:\n    - name: a b\n      url: http://x\n",
            "x.yaml:3: collectors.http_checks[0].name: invalid name 'a b': use letters, digits and _ . : -",
        ),
        (
            "collectors:\n  laravel:\n    apps:\n      - {name: a, path: /a, queue_driver: none}\n"
            "      - {name: a, path: /b, queue_driver: none}\n",
            "collectors.laravel: laravel app names must be unique; repeated: a",
        ),
        (
            "collectors:\n  php_fpm:\n    pools:\n      - {name: w, status_url: 'tcp://x:1'}\n"
            "      - {name: w, status_url: 'tcp://x:1'}\n",
            "collectors.php_fpm: php_fpm pool names must be unique; repeated: w",
        ),
        ("notifications:\n  email:\n    security: ssl\n", "'starttls', 'tls' or 'none'"),
        ("agent: [1, 2]\n", "x.yaml:1: agent: expected a mapping"),
        ("agent:\n  hostname: a\n  hostname: b\n", "x.yaml:3: agent.hostname: duplicate key"),
        ("agent:\n  listen_addr: [1\n", "x.yaml:3: invalid YAML"),
        ("- a\n- b\n", "the top level must be a mapping"),
        ("storage:\n  max_disk: lots\n", "x.yaml:2: storage.max_disk"),
        ("agent:\n  hostname: ${CRUCIBLE_TEST_UNSET_VAR}\n", "x.yaml:2: agent.hostname: environment variable"),
        ("mysql: {}\n", "x.yaml:1: mysql: unknown key 'mysql' (valid keys: agent, storage, collectors"),
    ],
)
def test_bad_configs_name_file_line_and_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "x.yaml")
    assert expected in str(caught.value)


def test_every_error_in_a_file_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("agent:\n  bogus: 1\n  collect_interval: 1x\nalerts:\n  disk_threshold: -1\n", "x.yaml")
    lines = str(caught.value).splitlines()
    assert [line.split(":")[1] for line in lines] == ["2", "3", "5"]


def test_environment_variables_and_secret_files_fill_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "smtp"
    secret_file.write_text("s3cret-from-file\n", encoding="utf-8")
    monkeypatch.setenv("CRUCIBLE_TEST_TOKEN", "token-from-env")
    config = parse_config(
        f"agent:\n  api_token: ${{CRUCIBLE_TEST_TOKEN}}\nnotifications:\n  email:\n    password_file: {secret_file}\n",
        "x.yaml",
    )
    assert config.agent.api_token is not None
    assert config.agent.api_token.get_secret_value() == "token-from-env"
    assert config.notifications.email.password is not None
    assert config.notifications.email.password.get_secret_value() == "s3cret-from-file"
    shown = str(redacted(config))
    assert "token-from-env" not in shown and "s3cret-from-file" not in shown
    assert "s3cret-from-file" not in repr(config)


def test_a_secret_and_its_file_together_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give either password or password_file"):
        parse_config(f"collectors:\n  mysql:\n    password: a\n    password_file: {tmp_path}/x\n", "x.yaml")


def test_unreadable_secret_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"x.yaml:3: collectors.mysql.password_file: cannot read password_file .*missing"
    ):
        parse_config(f"collectors:\n  mysql:\n    password_file: {tmp_path}/missing\n", "x.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h30m", 5400), ("7d", 604800), ("2w", 1209600), ("250ms", 0.25), (45, 45)],
)
def test_durations_parse_and_print_back(text: str | int, seconds: float) -> None:
    value = parse_duration(text)
    assert value.total_seconds() == seconds
    assert parse_duration(format_duration(value)) == value


def test_check_config_exits_zero_on_the_shipped_file_and_non_zero_naming_the_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", str(CONFIGS / "monitor.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent:\n  listen_addr: 127.0.0.1:9090\n  colect_interval: 5s\n", encoding="utf-8")
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: agent.colect_interval: unknown key 'colect_interval'" in err
    assert "collect_interval" in err  # the valid keys are listed
    assert main(["check-config", str(tmp_path / "absent.yaml")]) == 2
    assert "cannot read config" in capsys.readouterr().err


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(ValueError):
        config.agent.__setattr__("listen_addr", "0.0.0.0:1")
    assert os.environ.get("CRUCIBLE_TEST_UNSET_VAR") is None


def test_relative_paths_in_a_file_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc" / "monitor.yaml"
    path.write_text("alerts:\n  rules_file: alerts.yaml\nlogs:\n  files:\n    app: ../log/app.log\n", encoding="utf-8")
    config = load_config(path)
    assert config.alerts.rules_file == tmp_path / "etc" / "alerts.yaml"
    assert config.logs.files["app"] == tmp_path / "etc" / ".." / "log" / "app.log"


def _config_with_secrets_in_lists() -> Config:
    return validate_config(
        {
            "collectors": {
                "http_checks": [
                    {
                        "name": "health",
                        "url": "https://monitor:url-secret-1@app.test/health",
                        "headers": {"Authorization": "Bearer header-secret-2"},
                    }
                ],
                "laravel": {
                    "apps": [
                        {
                            "name": "shop",
                            "path": "/srv/shop",
                            "queue_driver": "redis",
                            "redis_url": "redis://:redis-secret-3@127.0.0.1:6379/0",
                        }
                    ]
                },
            }
        },
        "test",
    )


def test_headers_and_passwords_in_urls_are_redacted_like_other_secrets() -> None:
    config = _config_with_secrets_in_lists()
    shown = json.dumps(redacted(config))
    for secret in ("url-secret-1", "header-secret-2", "redis-secret-3"):
        assert secret not in shown
    assert "https://monitor:**********@app.test/health" in shown
    assert {"url-secret-1", "Bearer header-secret-2", "redis://:redis-secret-3@127.0.0.1:6379/0"} <= set(
        iter_secrets(config)
    )  # what log redaction hides


def test_a_fetched_config_posted_back_changes_nothing_even_with_secrets_inside_lists() -> None:
    config = _config_with_secrets_in_lists()
    assert patched(config, redacted(config)) == config
    shown = redacted(config)
    shown["collectors"]["http_checks"][0]["interval"] = "45s"
    changed = patched(config, shown)
    [check] = changed.collectors.http_checks
    assert check.interval.total_seconds() == 45 and check.url == "https://monitor:url-secret-1@app.test/health"
    assert check.headers["Authorization"].get_secret_value() == "Bearer header-secret-2"
