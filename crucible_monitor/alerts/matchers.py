"""Label matchers with Alertmanager's syntax: ``name=value``, ``name!=value``, ``name=~regex``, ``name!~regex``.

Regular expressions are anchored (they must match the whole value), and a label that is absent has the value ``""``,
as in Alertmanager. Silences, routes, inhibition and escalation all select alerts with these.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

__all__ = ["Matcher", "MatcherText", "matches_all", "parse_matcher"]

MatchOp = Literal["=", "!=", "=~", "!~"]
_SYNTAX = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")
_OPS: dict[str, MatchOp] = {"=": "=", "!=": "!=", "=~": "=~", "!~": "!~"}
_FORMS = "use name=value, name!=value, name=~regex or name!~regex"


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on one label."""

    name: str
    op: MatchOp
    value: str
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher (an absent label is ``""``)."""
        actual = labels.get(self.name, "")
        if self._pattern is not None:
            found = self._pattern.fullmatch(actual) is not None
            return found if self.op == "=~" else not found
        return (actual == self.value) if self.op == "=" else (actual != self.value)

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"


def parse_matcher(text: object) -> Matcher:
    """``service=~"php.*"`` → a :class:`Matcher` (quotes around the value are optional).

    Raises:
        ValueError: not one of the four forms, or an invalid regular expression.
    """
    if isinstance(text, Matcher):
        return text
    found = _SYNTAX.fullmatch(str(text))
    if found is None:
        raise ValueError(f"invalid matcher {text!r}: {_FORMS}")
    name, op, value = found.group(1), found.group(2), found.group(3)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    pattern = None
    if op in ("=~", "!~"):
        try:
            pattern = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression in matcher {text!r}: {exc}") from None
    return Matcher(name, _OPS[op], value, pattern)


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher matches (true for no matchers)."""
    return all(m.matches(labels) for m in matchers)


MatcherText = Annotated[
    Matcher,
    PlainValidator(parse_matcher),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "examples": ["severity=critical", "service=~php.*-fpm"]}),
]
"""A matcher in config and API models, written and shown as text."""
