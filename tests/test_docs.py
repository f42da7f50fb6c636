"""The pages of docs/ hold to the code: every command and flag they show exists, every config key and metric they
name is real, every YAML fragment loads, every quoted error message still occurs in the source, every number the
tuning guide and the fleet page quote is in docs/benchmarks.md, the API reference is what the spec gives, its curl
examples run against a real agent, and the MCP page covers every tool, prompt and resource the server lists."""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml
from agent_process import ServedAgent, serve_agent
from docs_check import (
    PROJECT,
    catalogue,
    cli_invocations,
    code_blocks,
    config_key_problem,
    flag_problems,
    source_text,
    table_rows,
)
from mcp import Client

from crucible_monitor import docsgen
from crucible_monitor.agent import Agent
from crucible_monitor.alerts.config import AlertingConfig, parse_alerting
from crucible_monitor.alerts.importer import import_rules
from crucible_monitor.alerts.rules import Rule
from crucible_monitor.config import Config
from crucible_monitor.configfile import validate
from crucible_monitor.fleet import Fleet
from crucible_monitor.fleetconfig import FleetConfig
from crucible_monitor.monitor import Monitor
from crucible_monitor.server.mcp import build_mcp_server

DOCS = PROJECT / "docs"
PAGES = [
    "monitoring-setup.md",
    "monitoring-api.md",
    "mcp.md",
    "alerts.md",
    "troubleshooting.md",
    "tuning.md",
    "migrate-netdata.md",
    "migrate-glances.md",
    "migrate-node-exporter.md",
    "fleet.md",
]
MIGRATIONS = [p for p in PAGES if p.startswith("migrate-")]
METRIC_SUFFIXES = ("_total", "_bytes", "_ratio", "_seconds", "_celsius", "_watts", "_hertz", "_up")
RULE_KINDS = {typing.get_args(m.model_fields["kind"].annotation)[0] for m in typing.get_args(typing.get_args(Rule)[0])}


def _page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _spans(text: str) -> list[str]:
    """Inline code spans (not fenced blocks)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.findall(r"`([^`\n]+)`", text)


def test_every_page_is_linked_from_the_readme() -> None:
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    missing = [p for p in PAGES if f"(docs/{p})" not in readme]
    assert not missing, f"README.md's Documentation list lacks {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_every_command_and_flag_a_page_shows_exists(page: str) -> None:
    text = _page(page)
    problems = [
        f"crucible-monitor {' '.join(args)}: {problem}"
        for block in code_blocks(text, "bash", "sh", "console")
        for args in cli_invocations(block)
        for problem in flag_problems(args)
    ]
    problems += [
        f"`{span}`: {problem}"
        for span in _spans(text)
        if span.startswith("crucible-monitor ")
        for problem in flag_problems(span.split()[1:])
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_every_config_key_a_page_names_exists(page: str) -> None:
    sections = tuple(f"{name}." for name in Config.model_fields)
    keys = [
        s
        for s in _spans(_page(page))
        if s.startswith(sections) and re.fullmatch(r"[a-z_.\[\]0-9]+", s) and not re.search(r"\.(ya?ml|md|json)$", s)
    ]
    problems = [p for p in map(config_key_problem, keys) if p]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("page", PAGES)
def test_every_yaml_fragment_of_a_page_loads(page: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Main-config fragments validate as a Config, alerting fragments as an alerting file (with the ``${VAR}`` they
    read set); a block starting with ``# theirs`` is another tool's config, shown for comparison."""
    for block in code_blocks(_page(page), "yaml"):
        if block.startswith("# theirs"):
            continue
        for variable in re.findall(r"\$\{([A-Z_]+)\}", block):
            monkeypatch.setenv(variable, "from-the-environment")
        data = yaml.safe_load(block) or {}
        if set(data) <= set(AlertingConfig.model_fields):
            parse_alerting(block, f"{page} (alerting)").check_references()
        else:
            assert set(data) <= set(Config.model_fields), f"{page}: a yaml block that is neither config: {set(data)}"
            validate(Config, data, f"{page} (config)")


@pytest.mark.parametrize("page", [p for p in PAGES if p not in MIGRATIONS and p != "monitoring-api.md"])
def test_every_metric_a_page_names_is_in_a_catalogue(page: str) -> None:
    names = [s for s in _spans(_page(page)) if re.fullmatch(r"[a-z][a-z0-9_]*", s) and s.endswith(METRIC_SUFFIXES)]
    unknown = sorted({n for n in names if n not in catalogue()})
    assert not unknown, f"{page} names metrics no collector declares: {unknown}"


def _ours(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


@pytest.mark.parametrize("page", MIGRATIONS)
def test_the_crucible_monitor_column_of_a_migration_table_names_real_things(page: str) -> None:
    """Each code span in a "crucible-monitor" column is a metric (with label matchers on its labels), a config key,
    a rule kind or field (``kind: threshold``, ``within: 24h``), a command, an API route or an MCP tool, prompt or
    resource."""
    tools = set().union(*_mcp_names().values())  # tools, prompts and resources
    checked, problems = 0, []
    for header, cells in table_rows(_page(page)):
        columns = [i for i, h in enumerate(header) if "crucible-monitor" in h]
        for i in columns:
            for span in _ours(cells[i] if i < len(cells) else ""):
                checked += 1
                problem = _name_problem(span, tools)
                if problem:
                    problems.append(f"{cells[0]}: {problem}")
    assert checked >= 15, f"{page}: only {checked} names of ours in its tables"
    assert not problems, "\n".join(problems)


RULE_FIELDS = {f for m in typing.get_args(typing.get_args(Rule)[0]) for f in (*m.model_fields, "for")}


def _name_problem(span: str, tools: set[str]) -> str | None:
    if span in tools:
        return None
    metric = re.fullmatch(r"([a-z][a-z0-9_]*)(?:\{(.*)\})?", span)
    if span.startswith("kind: "):
        return None if span[6:] in RULE_KINDS else f"{span}: no such rule kind"
    if re.fullmatch(r"(>|<|>=|<=|==|!=) -?[\d.]+", span):
        return None
    field = re.fullmatch(r"([a-z_]+): .+", span)
    if field:
        return None if field.group(1) in RULE_FIELDS else f"{span}: no rule has a field {field.group(1)}"
    if span.startswith("crucible-monitor "):
        problems = flag_problems(span.split()[1:])
        return "; ".join(problems) or None
    if span.startswith(("GET /", "POST /", "/")):
        return None if span.split()[-1].split("?")[0] in _routes() else f"{span}: no such route"
    if not metric and span.split(".")[0].split("[")[0] in AlertingConfig.model_fields:
        return config_key_problem(span, AlertingConfig)
    if not metric and "." in span and not span.startswith("crucible"):
        return config_key_problem(span)
    if metric:
        if metric.group(1) in AlertingConfig.model_fields and not metric.group(2):
            return None
        name, matchers = metric.group(1), metric.group(2)
        if name in tools:
            return None
        spec = catalogue().get(name)
        if spec is None:
            return f"{name}: not a metric of any catalogue (nor a tool)"
        for label in re.findall(r"([a-z_]+)\s*=", matchers or ""):
            if label not in spec.labels:
                return f"{span}: {name} has no label {label} (labels: {spec.labels})"
        return None
    return f"{span}: not a metric, key, rule kind, command, route or tool"


def _routes() -> set[str]:
    spec = _spec()
    return set(spec["paths"])


_SPEC: dict[str, Any] = {}


def _spec() -> dict[str, Any]:
    if not _SPEC:
        _SPEC.update(docsgen.api_spec())
    return _SPEC


def test_the_api_reference_is_what_the_spec_gives() -> None:
    assert docsgen.render(_spec()) == _page("monitoring-api.md"), "run: python -m crucible_monitor.docsgen"


AGENT_YAML = """collectors:
  services:
    supervisor:
      enabled: false
  access_logs:
    files:
      - {{path: {access}, format: caddy}}
logs:
  files:
    php8.2-fpm: {log}
"""
REFUSED = {"/api/v1/mysql/slow-queries": (404, "MySQL is not monitored")}
"""Examples that need what the test host lacks, and the answer that says so."""


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedAgent]:
    """A real agent with an access log and a log file named like the examples' (php8.2-fpm)."""
    tmp_path = tmp_path_factory.mktemp("docs")
    (tmp_path / "access.log").touch()
    (tmp_path / "fpm.log").write_text("NOTICE: fpm is running\n", encoding="utf-8")
    extra = AGENT_YAML.format(access=tmp_path / "access.log", log=tmp_path / "fpm.log")
    with serve_agent(tmp_path, extra) as served:
        yield served


def test_every_curl_example_of_the_api_reference_runs_against_a_real_agent(agent: ServedAgent) -> None:
    """GETs without path parameters answer 200 (or, for MySQL, which the test host lacks, the 404 that says so);
    the rest answer what their example asks for (an id that does not exist is a 404, a restart off the allowlist
    a 403), never 401, 422 or 5xx."""
    commands = [line for block in code_blocks(_page("monitoring-api.md"), "bash") for line in block.splitlines()]
    curls = [c for c in commands if c.startswith("curl ")]
    assert len(curls) >= 30
    env = {**os.environ, "ADDR": f"127.0.0.1:{agent.port}", "TOKEN": agent.token()}
    problems = []
    for curl in curls:
        run = subprocess.run(
            ["bash", "-c", curl + " -w '\\n%{http_code}'"], env=env, capture_output=True, text=True, timeout=60
        )
        body, _, code = run.stdout.rpartition("\n")
        status = int(code or 0)
        path = curl.split("http://$ADDR")[1].split("?")[0].rstrip('"')
        plain_get = " -X " not in curl and "{" not in curl and not re.search(r"/(1|php8\.2-fpm|shop)(/|\"|\?)", curl)
        if path in REFUSED:
            expected, text = REFUSED[path]
            if status != expected or text not in body:
                problems.append(f"{status} (expected {expected} saying {text!r}): {curl}")
        elif (plain_get and status != 200) or status in (0, 401, 422) or status >= 500:
            problems.append(f"{status}: {curl}\n  {body[:200]}")
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def mcp_names() -> dict[str, set[str]]:
    return _mcp_names()


_NAMES: dict[str, set[str]] = {}


def _mcp_names() -> dict[str, set[str]]:
    if _NAMES:
        return _NAMES

    async def listing() -> None:
        with tempfile.TemporaryDirectory() as data_dir:
            config = Config.model_validate({"agent": {"data_dir": data_dir}})
            fleet = Fleet(FleetConfig.model_validate({"hosts": [{"name": "web-2", "url": "http://127.0.0.1:1"}]}))
            server = build_mcp_server(Monitor(Agent(config)), read_only=False, fleet=fleet)  # every tool listed
            async with Client(server) as client:
                _NAMES["tools"] = {t.name for t in (await client.list_tools()).tools}
                _NAMES["prompts"] = {p.name for p in (await client.list_prompts()).prompts}
                resources = {str(r.uri) for r in (await client.list_resources()).resources}
                templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
                _NAMES["resources"] = resources | templates

    anyio.run(listing)
    return _NAMES


@pytest.mark.parametrize("kind", ["tools", "prompts", "resources"])
def test_the_mcp_page_covers_every_tool_prompt_and_resource_the_server_lists(
    kind: str, mcp_names: dict[str, set[str]]
) -> None:
    text = _page("mcp.md")
    headings = set(re.findall(r"^#### `([^`(]+)", text, flags=re.MULTILINE))
    missing = sorted(n for n in mcp_names[kind] if n not in headings)
    assert not missing, f"docs/mcp.md has no '#### `name`' section for {missing}"
    assert len(mcp_names[kind]) >= 2


def test_the_mcp_page_documents_nothing_the_server_does_not_list(mcp_names: dict[str, set[str]]) -> None:
    listed = set().union(*mcp_names.values())
    headings = set(re.findall(r"^#### `([^`(]+)", _page("mcp.md"), flags=re.MULTILINE))
    assert headings - listed == set()


def test_every_message_the_troubleshooting_guide_quotes_occurs_in_the_code() -> None:
    """Each ``### `message` `` heading: its fixed parts (split at …) are in the package's source."""
    messages = re.findall(r"^### `([^`]+)`", _page("troubleshooting.md"), flags=re.MULTILINE)
    assert len(messages) >= 20
    missing = [
        m for m in messages if not all(part.strip() in source_text() for part in m.split("…") if len(part.strip()) >= 4)
    ]
    assert not missing, f"messages no longer in the code: {missing}"


@pytest.mark.parametrize(("page", "at_least"), [("tuning.md", 8), ("fleet.md", 5)])
def test_every_number_a_page_quotes_is_in_the_benchmarks(page: str, at_least: int) -> None:
    """The "Measured (docs/benchmarks.md)" column quotes benchmarks.md verbatim."""
    benchmarks = _page("benchmarks.md")
    quoted = [
        cells[i]
        for header, cells in table_rows(_page(page))
        for i, h in enumerate(header)
        if h.startswith("Measured") and i < len(cells) and cells[i]
    ]
    assert len(quoted) >= at_least
    missing = [q for q in quoted for part in q.split(" · ") if part.strip("` ") not in benchmarks]
    assert not missing, f"not in docs/benchmarks.md: {missing}"


def test_the_import_rules_page_examples_are_real_rule_files(tmp_path: Path) -> None:
    """The Prometheus rules the node_exporter guide shows convert as the guide says."""
    text = _page("migrate-node-exporter.md")
    blocks = [b for b in code_blocks(text, "yaml") if b.startswith("# theirs") and "groups:" in b]
    assert blocks
    for block in blocks:
        result = import_rules(block, "docs example")
        assert result.converted, result.skipped
        parse_alerting(result.yaml())
