"""``python -m crucible_monitor.docsgen``: write ``docs/monitoring-api.md`` from the agent's own OpenAPI spec.

The spec is the one ``GET /api/v1/openapi.json`` serves, taken from an agent that is built but not started (no
collector runs, nothing listens). Each route gets its description, a parameter table, its request and response
models' fields, and a curl example. ``--check`` exits 1 when the page differs from what the spec gives (the
test suite runs the same comparison), so the page cannot drift from the routes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from crucible_monitor.errors import HTTP_STATUS

__all__ = ["PAGE", "api_spec", "main", "render"]

PAGE = Path(__file__).parents[1] / "docs" / "monitoring-api.md"
_TOKEN = "docs-token"
_EXAMPLES: Mapping[str, Any] = {
    "name": "php8.2-fpm",
    "alert_id": "1",
    "silence_id": "1",
    "anomaly_id": "1",
    "resource": "filesystem:/",
    "app": "shop",
    "metric": "cpu_usage_ratio",
    "source": "php8.2-fpm",
    "since": "1h",
    "start": "2h",
    "end": "1h",
    "by": "alice",
    "reason": "php-fpm pool socket gone, site answers 502",
    "confirm": True,
    "dry_run": True,
}
_BODY_EXAMPLES: Mapping[str, Any] = {
    "/api/v1/config": {"alerts": {"cpu_threshold": 85}},
    "/api/v1/alerts/{alert_id}/acknowledge": {"by": "alice", "note": "on it", "expires": "2h"},
    "/api/v1/silences": {
        "matchers": ["alertname=DiskSpaceLow", "mountpoint=/var"],
        "duration": "2h",
        "reason": "moving /var to a bigger disk",
        "author": "alice",
    },
}


async def _fetch_spec() -> dict[str, Any]:
    from crucible_monitor.agent import Agent  # deferred: the agent's dependencies load only to write the page
    from crucible_monitor.config import Config
    from crucible_monitor.server.app import build_app

    with tempfile.TemporaryDirectory() as data_dir:
        config = Config.model_validate({"agent": {"data_dir": data_dir, "hostname": "docs"}})
        app = build_app(Agent(config), _TOKEN, manage_agent=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://docs") as client:
            answer = await client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {_TOKEN}"})
            answer.raise_for_status()
            spec: dict[str, Any] = answer.json()
            return spec


def api_spec() -> dict[str, Any]:
    """The OpenAPI spec the agent serves."""
    return asyncio.run(_fetch_spec())


def _type(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        kinds = [_type(s) for s in schema["anyOf"] if s.get("type") != "null"]
        return " \\| ".join(kinds) + (" or null" if len(kinds) < len(schema["anyOf"]) else "")
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    kind = str(schema.get("format") or schema.get("type") or "object")
    bounds = [f"{k} {schema[k]}" for k in ("minimum", "maximum") if k in schema]
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _fields(schema: Mapping[str, Any]) -> list[str]:
    props: Mapping[str, Any] = schema.get("properties", {})
    if not props:
        return []
    required = set(schema.get("required", []))
    lines = ["| Field | Type | Required | Description |", "|---|---|---|---|"]
    for name, prop in props.items():
        described = prop.get("description") or (prop.get("anyOf") or [{}])[0].get("description", "")
        lines.append(f"| `{name}` | {_type(prop)} | {'yes' if name in required else 'no'} | {_cell(described)} |")
    return lines


def _example_body(path: str, schema: Mapping[str, Any]) -> Any:
    if path in _BODY_EXAMPLES:
        return _BODY_EXAMPLES[path]
    props: Mapping[str, Any] = schema.get("properties", {})
    return {k: _EXAMPLES[k] for k in props if k in _EXAMPLES}


def _shell_quoted(text: str) -> str:
    """``text`` as one bash word (``$'...'``, newlines as ``\\n``)."""
    return "$'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def _raw_curls(method: str, path: str, op: Mapping[str, Any], content: Mapping[str, Any]) -> list[str]:
    """One curl per media type of a raw body, sending its example."""
    curls = []
    for media, spec in content.items():
        example = spec.get("example", "")
        data = example if isinstance(example, str) else json.dumps(example, separators=(",", ":"))
        curl = _curl(method, path, op, None).rpartition(" ")
        curls.append(f"{curl[0]} -H 'Content-Type: {media}' --data-binary {_shell_quoted(data)} {curl[2]}")
    return curls


def _curl(method: str, path: str, op: Mapping[str, Any], body: Any) -> str:
    url = path
    for param in op.get("parameters", []):
        if param["in"] == "path":
            url = url.replace("{" + param["name"] + "}", str(_EXAMPLES.get(param["name"], "x")))
    query = [
        f"{p['name']}={_EXAMPLES.get(p['name'], 'x')}"
        for p in op.get("parameters", [])
        if p["in"] == "query" and (p.get("required") or p["name"] in ("since",))
    ]
    if query:
        url += "?" + "&".join(query)
    parts = ["curl -s"]
    if method != "get":
        parts.append(f"-X {method.upper()}")
    if op.get("security"):
        parts.append('-H "Authorization: Bearer $TOKEN"')
    if body is not None:
        parts.append("-H 'Content-Type: application/json'")
        parts.append(f"-d '{json.dumps(body, separators=(',', ':'))}'")
    parts.append(f'"http://$ADDR{url}"')
    return " ".join(parts)


def _schema_of(content: Mapping[str, Any], schemas: Mapping[str, Any]) -> tuple[str | None, Mapping[str, Any]]:
    schema = content.get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return name, schemas.get(name, {})
    return None, schema


def _operation(method: str, path: str, op: Mapping[str, Any], schemas: Mapping[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", ""]
    description = op.get("description") or op.get("summary", "")
    lines += [_cell(description.replace("``", "`")), ""]
    if not op.get("security"):
        lines += ["No token needed.", ""]
    params = op.get("parameters", [])
    if params:
        lines += ["| Parameter | In | Type | Required | Default | Description |", "|---|---|---|---|---|---|"]
        for p in params:
            schema = p.get("schema", {})
            default = f"`{schema['default']}`" if "default" in schema else ""
            text = p.get("description") or schema.get("description", "")
            lines.append(
                f"| `{p['name']}` | {p['in']} | {_type(schema)} | {'yes' if p.get('required') else 'no'} | {default} "
                f"| {_cell(text)} |"
            )
        lines.append("")
    body = None
    content = op.get("requestBody", {}).get("content", {})
    raw = "text/plain" in content  # a body the agent reads itself: each media type, described
    if raw:
        lines += ["Request body, one of:", ""]
        for media, spec in content.items():
            described = spec["schema"].get("description")
            lines.append(f"- `{media}`: {_type(spec['schema'])}" + (f": {_cell(described)}" if described else ""))
        lines.append("")
    elif "requestBody" in op:
        name, schema = _schema_of(op["requestBody"].get("content", {}), schemas)
        body = _example_body(path, schema)
        title = f"`{name}`" if name else _cell(schema.get("description", "a JSON object"))
        lines += [f"Request body: {title}", ""]
        if name:
            lines += [*_fields(schema), ""]
    for status, response in sorted(op.get("responses", {}).items()):
        if status == "422":
            continue
        name, schema = _schema_of(response.get("content", {}), schemas)
        kind = f"`{name}`" if name else next(iter(response.get("content", {})), "no body")
        lines += [f"Response {status}: {kind}", ""]
        if name:
            lines += [*_fields(schema), ""]
    curls = _raw_curls(method, path, op, content) if raw else [_curl(method, path, op, body)]
    lines += ["```bash", *curls, "```", ""]
    return lines


def render(spec: Mapping[str, Any]) -> str:
    """The page for ``spec``."""
    schemas: Mapping[str, Any] = spec.get("components", {}).get("schemas", {})
    by_tag: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((method, path, op))
    lines = [
        "# HTTP API reference",
        "",
        "<!-- Generated from the agent's OpenAPI spec by `python -m crucible_monitor.docsgen`; do not edit. -->",
        "",
        f"{spec['info']['title']} {spec['info'].get('version', '')}: {spec['info'].get('description', '')}",
        "",
        "Every example assumes the agent's address and token in the shell (the spec itself is",
        "`GET /api/v1/openapi.json`, with the token):",
        "",
        "```bash",
        "ADDR=127.0.0.1:9090",
        "TOKEN=$(crucible-monitor token)",
        "```",
        "",
        'Errors come back as JSON (`{"detail": ...}`): 401 without a valid token, 422 for a parameter out of its',
        "range (naming it), and for the agent's own errors the status of `crucible_monitor.errors.HTTP_STATUS`:",
        "",
        "| Status | Error | Meaning |",
        "|---|---|---|",
        *(f"| {code} | `{kind.__name__}` | {_cell(kind.__doc__ or '')} |" for kind, code in HTTP_STATUS.items()),
        "",
        "Routes by tag: " + ", ".join(f"[{tag}](#{tag})" for tag in by_tag),
        "",
    ]
    for tag, operations in by_tag.items():
        lines += [f"## {tag}", ""]
        for method, path, op in operations:
            lines += _operation(method, path, op, schemas)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the page, or with ``--check`` say whether it is up to date."""
    parser = argparse.ArgumentParser(prog="python -m crucible_monitor.docsgen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/monitoring-api.md is out of date")
    args = parser.parse_args(argv)
    page = render(api_spec())
    if args.check:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        if current != page:
            sys.stderr.write(f"{PAGE} is out of date: run python -m crucible_monitor.docsgen\n")
            return 1
        return 0
    PAGE.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
