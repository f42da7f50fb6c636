"""What tests/test_docs.py checks the pages of docs/ against: the CLI's parser, the config models, the metric
catalogues and the package's source, read from the code itself."""

from __future__ import annotations

import argparse
import re
import types
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from crucible_monitor.cli import build_parser
from crucible_monitor.collectors import (
    access_logs,
    agent,
    command,
    gpu,
    http_checks,
    laravel,
    mysql,
    php_fpm,
    processes,
    push,
    services,
    system,
    textfile,
)
from crucible_monitor.config import Config
from crucible_monitor.models import MetricSpec

__all__ = [
    "PENDING_FLAGS",
    "PENDING_KEYS",
    "PROJECT",
    "catalogue",
    "cli_invocations",
    "code_blocks",
    "config_key_problem",
    "flag_problems",
    "source_text",
    "table_rows",
]

PROJECT = Path(__file__).parents[1]

PENDING_KEYS: frozenset[str] = frozenset()
"""Keys a page may describe before they exist (none now: every key named is checked)."""
PENDING_FLAGS: dict[str, frozenset[str]] = {}
"""Likewise for flags (none now)."""


@cache
def catalogue() -> dict[str, MetricSpec]:
    """Every built-in metric, by name."""
    modules = (
        access_logs,
        agent,
        command,
        gpu,
        http_checks,
        laravel,
        mysql,
        php_fpm,
        processes,
        push,
        services,
        system,
    )
    return {spec.name: spec for module in (*modules, textfile) for spec in module.CATALOGUE}


def code_blocks(text: str, *languages: str) -> list[str]:
    """The fenced blocks of ``text`` in one of ``languages``."""
    pattern = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
    return [m.group(2) for m in pattern.finditer(text) if m.group(1) in languages]


def cli_invocations(block: str) -> Iterator[list[str]]:
    """The arguments after each ``crucible-monitor`` in a shell block (continuations joined, comments cut)."""
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"(^|\s)#.*", "", line)
        command_position = r"(?:^|\$\(|&&\s*|\|\s*|;\s*|sudo(?:\s+-u\s+\S+)?\s+|\S*/)"
        for found in re.finditer(command_position + r"crucible-monitor((?:[ \t]+[^\s|;&)>#\"']+)*)", line):
            yield found.group(1).split()


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def flag_problems(args: list[str]) -> list[str]:
    """What is wrong with ``crucible-monitor ARGS``: an unknown command or flag."""
    if not args or args[0] in ("--help", "--version", "-h"):
        return []
    commands = _subparsers()
    if args[0] not in commands:
        return [f"unknown command {args[0]!r} (valid: {', '.join(sorted(commands))})"]
    parser = commands[args[0]]
    nested = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    if nested is not None and len(args) > 1 and args[1] in nested.choices:  # token create NAME --scope ...
        parser = nested.choices[args[1]]
    options = {o for a in parser._actions for o in a.option_strings}
    pending = PENDING_FLAGS.get(args[0], frozenset())
    return [
        f"{args[0]}: unknown flag {flag}"
        for flag in (a.split("=")[0] for a in args[1:] if a.startswith("-") and not re.match(r"-\d", a))
        if flag not in options and flag not in pending
    ]


def _unwrap(annotation: Any) -> list[Any]:
    """The types a field may hold (unions and Annotated undone, None dropped)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg) if t is not type(None)]
    return [annotation]


def _walk(annotation: Any, parts: list[str]) -> bool:
    if not parts:
        return True
    for kind in _unwrap(annotation):
        origin = typing.get_origin(kind)
        if origin is list:
            head = re.sub(r"\[\d*\]$", "", parts[0])
            if head == "" and _walk(typing.get_args(kind)[0], parts[1:]):
                return True
        elif origin is dict:
            if _walk(typing.get_args(kind)[1], parts[1:]):
                return True
        elif isinstance(kind, type) and issubclass(kind, BaseModel):
            fields = {f.alias or n: f for n, f in kind.model_fields.items()} | dict(kind.model_fields)
            if parts[0] in fields and _walk(fields[parts[0]].annotation, parts[1:]):
                return True
    return False


def config_key_problem(key: str, root: type[BaseModel] = Config) -> str | None:
    """None when ``key`` (``agent.collect_interval``, ``collectors.http_checks[].timeout``) is a key of ``root``
    (the main config; the alerting file's model for its keys)."""
    if key in PENDING_KEYS or any(key.startswith(p + ".") for p in PENDING_KEYS):
        return None
    parts: list[str] = []
    for part in key.split("."):
        head, bracket, rest = part.partition("[")
        parts.append(head)
        if bracket:
            parts.append("[" + rest)
    if _walk(root, parts):
        return None
    return f"{key} is not a key of {root.__name__}"


@cache
def source_text() -> str:
    """All of the package's source, for finding quoted messages; adjacent string literals joined."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((PROJECT / "crucible_monitor").rglob("*.py")))
    return re.sub(r"\"\s*\n\s*f?\"", "", text)


def table_rows(text: str) -> Iterator[tuple[list[str], list[str]]]:
    """Each row of each markdown table of ``text``, with its table's header."""
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if header is None:
            header = cells
        elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
            yield header, cells
