"""Reading config files: YAML with the file and line of every key, ``include:`` of other files, ``${VAR}`` expansion,
``*_file`` secrets, paths relative to the file, and pydantic errors rendered as ``file:line: dotted.key: message``.

The main config (:mod:`crucible_monitor.config`) and the alerting file (:mod:`crucible_monitor.alerts.config`) are both
read through here; this module knows neither's models, only pydantic's and YAML's.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from crucible_monitor.errors import ConfigError

__all__ = [
    "CONFIG_ENV",
    "SEARCH_PATH",
    "SEARCH_PATH_ENV",
    "KeyPath",
    "Located",
    "alias_notes",
    "discover",
    "dotted_key",
    "read_secret_files",
    "read_text",
    "read_yaml",
    "read_yaml_file",
    "relative_to",
    "validate",
]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_FILE_PROBLEM = re.compile(r"(?:cannot read|give either \w+ or) (\w+_file)")  # what read_secret_files says
_M = TypeVar("_M", bound=BaseModel)

KeyPath = tuple[str | int, ...]
"""Where a value sits in the tree: keys and list indices from the top."""


CONFIG_ENV = "CRUCIBLE_MONITOR_CONFIG"
"""The environment variable naming the config file when ``--config`` is not given."""
SEARCH_PATH: tuple[Path, ...] = (Path("/etc/crucible-monitor/monitor.yaml"), Path("/etc/crucible/monitor.yaml"))
"""Where a config is looked for after ``--config`` and :data:`CONFIG_ENV` (the first that exists wins)."""
SEARCH_PATH_ENV = "CRUCIBLE_MONITOR_SEARCH_PATH"
"""Replaces :data:`SEARCH_PATH` (files separated by ``:``; empty: search nowhere), for tests and packagers."""


def discover(explicit: str | None, environ: Mapping[str, str] | None = None) -> tuple[Path | None, str]:
    """The config file to read and why: ``--config``, else :data:`CONFIG_ENV`, else the first file of the search
    path that exists; ``(None, "built-in defaults")`` when there is none.

    A file named by ``--config`` or the environment need not exist here: reading it then says it cannot.
    """
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit), "--config"
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]), CONFIG_ENV
    search = SEARCH_PATH
    if SEARCH_PATH_ENV in env:
        search = tuple(Path(p) for p in env[SEARCH_PATH_ENV].split(os.pathsep) if p)
    for path in search:
        if path.is_file():
            return path, "the search path"
    return None, "built-in defaults"


class Located:
    """Plain Python data built from YAML nodes, with the line of every key (and its file, where keys were merged in
    from included files)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines: dict[KeyPath, int] = {}
        self.files: dict[KeyPath, str] = {}  # keys from another file than ``source``
        self.errors: list[str] = []
        self._loader = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        """The data of ``node`` (at ``path``), recording lines, and errors for what cannot be used."""
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._loader.construct_object(key_node)
                if key == "<<":
                    self.errors.append(
                        f"{self.source}:{key_node.start_mark.line + 1}: YAML merge keys are not supported"
                    )
                    continue
                if key in result:
                    where = f"{self.source}:{key_node.start_mark.line + 1}"
                    self.errors.append(f"{where}: {dotted_key((*path, key))}: duplicate key")
                self.lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = self._loader.construct_object(node)
        if isinstance(value, str):
            return self._expand_env(value, path, node.start_mark.line + 1)
        return value

    def _expand_env(self, text: str, path: KeyPath, line: int) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            self.errors.append(f"{self.source}:{line}: {dotted_key(path)}: environment variable {name} is not set")
            return ""

        return _ENV_REF.sub(replace, text)

    def line_of(self, loc: KeyPath) -> int | None:
        """The line of ``loc``, or of the nearest key above it."""
        return self.where(loc)[1]

    def where(self, loc: KeyPath) -> tuple[str, int | None]:
        """The file and line of ``loc``, or of the nearest key above it."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.files.get(loc[:end], self.source), self.lines[loc[:end]]
        return self.source, None

    def merge(self, data: dict[Any, Any], over: dict[Any, Any], other: Located, path: KeyPath = ()) -> None:
        """Merge ``over`` (read by ``other``) into ``data`` in place: mappings key by key, anything else (lists
        too) replaced; the lines and files of what ``over`` brings come along."""
        self.errors += other.errors if not path else []
        for key, value in over.items():
            where = (*path, key)
            self._take(other, where, below=False)
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                self.merge(data[key], value, other, where)
                continue
            for old in [p for p in self.lines if p[: len(where)] == where and len(p) > len(where)]:
                del self.lines[old]
                self.files.pop(old, None)
            self._take(other, where, below=True)
            data[key] = value

    def _take(self, other: Located, where: KeyPath, *, below: bool) -> None:
        taken = [p for p in other.lines if p[: len(where)] == where and (below or len(p) == len(where))]
        for p in taken:
            self.lines[p] = other.lines[p]
            source = other.files.get(p, other.source)
            if source == self.source:
                self.files.pop(p, None)
            else:
                self.files[p] = source


def dotted_key(path: KeyPath) -> str:
    """``("rules", 0, "value")`` → ``rules[0].value``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def read_text(path: Path, what: str) -> str:
    """The content of a config file.

    Raises:
        ConfigError: it cannot be read (``{path}: cannot read {what}: ...``).
    """
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None


def read_yaml(text: str, source: str, *, sections: str) -> tuple[dict[str, Any], Located]:
    """YAML text as plain data (``${VAR}`` expanded) with the line of every key, for precise error messages.

    Raises:
        ConfigError: invalid YAML, or a top level that is not a mapping (``sections`` names what belongs there).
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}{line}: invalid YAML: {exc.problem}") from None
    located = Located(source)
    data = (located.build(node, ()) if node is not None else None) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the top level must be a mapping of sections ({sections}, ...)")
    return data, located


def read_yaml_file(
    path: Path, what: str, *, sections: str, chain: tuple[Path, ...] = ()
) -> tuple[dict[str, Any], Located]:
    """A YAML config file as :func:`read_yaml` reads it, with the files its top-level ``include:`` lists merged in
    first, in order (relative to ``path``; mappings merged key by key, lists replaced; ``path`` itself last, so it
    wins). Every key keeps the file and line it came from.

    Raises:
        ConfigError: a file cannot be read or is invalid, ``include`` is not a list of files, or files include
            each other (the message shows the chain).
    """
    data, located = read_yaml(read_text(path, what), str(path), sections=sections)
    chain = (*chain, path.resolve())
    includes = data.pop("include", None)
    if includes is None:
        return data, located
    line = located.line_of(("include",))
    here = f"{path}:{line}: include"
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) and i for i in includes):
        raise ConfigError(f"{here}: expected a list of files (relative to {path.parent} unless absolute)")
    merged: dict[str, Any] = {}
    combined = Located(str(path))
    combined.lines[()] = 1
    for index, name in enumerate(includes):
        target = Path(name).expanduser()
        target = target if target.is_absolute() else path.parent / target
        if target.resolve() in chain:
            cycle = " -> ".join(str(p) for p in (*chain, target.resolve()))
            raise ConfigError(f"{here}[{index}]: include cycle: {cycle}")
        if not target.is_file():
            raise ConfigError(f"{here}[{index}]: no such file {target}")
        combined.merge(merged, *read_yaml_file(target, what, sections=sections, chain=chain))
    combined.merge(merged, data, located)
    return merged, combined


def read_secret_files(data: Any, secrets: Collection[str]) -> Any:
    """``data`` with ``x_file: PATH`` turned into ``x: <content of PATH>`` (trailing newline stripped) for each secret
    field ``x``, and an empty secret (``password: ${UNSET:-}``) into None.

    Raises:
        ValueError: both ``x`` and ``x_file`` are given, or the file cannot be read.
    """
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for name in secrets:
        if data.get(name) == "":
            data[name] = None
    for key in [k for k in data if isinstance(k, str) and k.endswith("_file")]:
        target = key.removesuffix("_file")
        if target not in secrets:
            continue
        if data.get(target) is not None:
            raise ValueError(f"give either {target} or {key}, not both")
        path = Path(str(data.pop(key))).expanduser()
        try:
            data[target] = path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ValueError(f"cannot read {key} {path}: {exc.strerror}") from None
    return data


def validate(model: type[_M], data: Any, source: str, located: Located | None = None) -> _M:
    """Validate plain data (from YAML, or from an API request when ``located`` is None) into ``model``.

    Raises:
        ConfigError: one line per problem, ordered by line: source, line when known, dotted key, message; the
            problems ``located`` met while reading (duplicate keys, unset variables) come first.
    """
    problems: list[tuple[str, int, str]] = []
    result = None
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc, message = _describe(model, data, error)
            file, line = located.where(loc) if located else (source, None)
            problems.append((file, line or 0, f"{file}{f':{line}' if line else ''}: {dotted_key(loc)}: {message}"))
    messages = (located.errors if located else []) + [text for *_, text in sorted(problems, key=lambda p: p[:2])]
    if messages or result is None:
        raise ConfigError("\n".join(messages))
    return result


def _describe(root: type[BaseModel], data: Any, error: ErrorDetails) -> tuple[KeyPath, str]:
    """Where an error is (as the file spells keys) and what to say about it."""
    loc, parent = _walk(root, data, error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    kind = error["type"]
    if kind == "extra_forbidden":
        valid = _valid_keys(parent)
        return loc, f"unknown key {loc[-1]!r}" + (f" (valid keys: {valid})" if valid else "")
    if kind == "union_tag_invalid":
        context = error.get("ctx", {})
        key = str(context.get("discriminator", "kind")).strip("'")
        return (*loc, key), f"invalid {key} {context.get('tag')!r}; valid: {context.get('expected_tags')}"
    if kind == "literal_error":
        return loc, f"invalid value {error.get('input')!r}: {message}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return loc, f"expected a mapping of keys, got {type(error.get('input')).__name__}"
    secret_file = _SECRET_FILE_PROBLEM.match(message)
    if secret_file:  # point at the *_file key, not at its section
        loc = (*loc, secret_file.group(1))
    return loc, message


def _walk(root: type[BaseModel], data: Any, loc: KeyPath) -> tuple[KeyPath, Any]:
    """``loc`` without pydantic's union tags, and the model that validates the data at ``loc[:-1]``."""
    current: Any = root
    value: Any = data
    clean: list[str | int] = []
    parent: Any = None
    for part in loc:
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        current = _unwrap(current, value)
        if isinstance(value, dict) and part not in value and part in (value.get("kind"), value.get("type")):
            continue  # pydantic puts a tagged union member's tag in the location
        parent = current
        clean.append(part)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
            current = field.annotation if field is not None else None
        elif get_origin(current) in (list, dict):
            current = get_args(current)[-1]
        else:
            current = None
        if isinstance(value, dict):
            value = value.get(part)
        else:
            value = value[part] if isinstance(value, list) and isinstance(part, int) and part < len(value) else None
    return tuple(clean), parent


def _valid_keys(model: Any) -> str:
    """The keys ``model`` accepts, as the file spells them; empty when ``model`` is not a model class."""
    if isinstance(model, type) and issubclass(model, BaseModel):
        return ", ".join(f.alias or n for n, f in model.model_fields.items())
    return ""


def _unwrap(annotation: Any, value: Any) -> Any:
    """Strip ``Annotated`` and ``| None``; pick a tagged union's member by the data's ``kind`` or ``type``."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0], value)
        tag = value.get("kind", value.get("type")) if isinstance(value, dict) else None
        for member in members:
            if not (isinstance(member, type) and issubclass(member, BaseModel)):
                continue
            field = member.model_fields.get("kind") or member.model_fields.get("type")
            if field is not None and tag in get_args(field.annotation):
                return member
        return None
    return annotation


def alias_notes(model: type[BaseModel], data: Any, located: Located | None = None, path: KeyPath = ()) -> list[str]:
    """One note per alias key in ``data`` (a model's ``config_aliases``): ``file:line: key is read as canonical``."""
    notes: list[str] = []
    if not isinstance(data, dict):
        return notes
    aliases: Any = getattr(model, "config_aliases", {})
    for key, value in data.items():
        where = (*path, key)
        if key in aliases:
            file, line = located.where(where) if located else ("", None)
            source = f"{file}{f':{line}' if line else ''}: " if located else ""
            notes.append(f"{source}{dotted_key(where)} is read as {aliases[key]}")
            continue
        field = model.model_fields.get(key)
        if field is None:
            continue
        notes += _notes_below(field.annotation, value, located, where)
    return notes


def _notes_below(annotation: Any, value: Any, located: Located | None, path: KeyPath) -> list[str]:
    annotation = _unwrap(annotation, value)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return alias_notes(annotation, value, located, path)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and args and isinstance(value, list):
        return [n for i, item in enumerate(value) for n in _notes_below(args[0], item, located, (*path, i))]
    if origin is dict and args and isinstance(value, dict):
        return [n for k, item in value.items() for n in _notes_below(args[-1], item, located, (*path, k))]
    return []


def relative_to(model: _M, base: Path) -> _M:
    """``model`` with every relative path made relative to ``base`` (and ``~`` expanded), all the way down."""

    def fix(value: Any) -> Any:
        if isinstance(value, Path):
            expanded = value.expanduser()
            return expanded if expanded.is_absolute() else base / expanded
        if isinstance(value, BaseModel):
            return relative_to(value, base)
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    changes = {name: fix(getattr(model, name)) for name in type(model).model_fields}
    return model.model_copy(update={k: v for k, v in changes.items() if v is not getattr(model, k)})
