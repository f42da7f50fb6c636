"""Label matchers with Alertmanager's syntax: ``name=value``, ``name!=value``, ``name=~regex``, ``name!~regex``.

Regular expressions are anchored (they must match the whole value), and a label that is absent has the value ``""``,
as in Alertmanager. Silences, routes, inhibition and escalation all select alerts with these.

Regular expressions run on RE2 (``google-re2``): matching takes time linear in the value, so a silence such as
``alertname=~(.*.*)*X`` posted over the API cannot stall the agent (with Python's ``re`` it froze the event loop for
seconds). RE2 has no backreferences or lookarounds; a pattern that needs them is refused with the reason, and so is
one longer than :data:`MAX_PATTERN_CHARS`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

import re2
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema

__all__ = ["MAX_PATTERN_CHARS", "Matcher", "MatcherText", "matches_all", "parse_matcher"]

MatchOp = Literal["=", "!=", "=~", "!~"]
_SYNTAX = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")
_OPS: dict[str, MatchOp] = {"=": "=", "!=": "!=", "=~": "=~", "!~": "!~"}
_FORMS = "use name=value, name!=value, name=~regex or name!~regex"
MAX_PATTERN_CHARS = 256
_RE2 = re2.Options()
_RE2.log_errors = False  # the error comes back in the exception; RE2 would also print it to stderr
_RE2.max_mem = 1 << 20  # a pattern whose automaton needs more is refused


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on one label."""

    name: str
    op: MatchOp
    value: str
    _pattern: re2._Regexp | None = field(default=None, compare=False, repr=False)

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
        if len(value) > MAX_PATTERN_CHARS:
            raise ValueError(f"the regular expression in a matcher is limited to {MAX_PATTERN_CHARS} characters")
        try:
            pattern = re2.compile(value, _RE2)
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
            raise ValueError(
                f"invalid regular expression in matcher {text!r}: {reason} (RE2: no backreferences or lookarounds)"
            ) from None
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
