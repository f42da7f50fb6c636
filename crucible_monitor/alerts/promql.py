"""A parser for the subset of PromQL that alerting rules use, for :mod:`~crucible_monitor.alerts.importer`.

It reads selectors (``name{label="v"}[5m]``), numbers, function calls, aggregations with ``by``/``without``,
binary operators with PromQL's precedence (``or`` < ``and``/``unless`` < comparisons < ``+ -`` < ``* / %`` <
``^``) and their ``on``/``ignoring``/``group_left``/``bool`` modifiers. It evaluates nothing: the importer matches
the tree against the shapes it knows. Anything else (strings outside label matchers, ``offset``, ``@``,
subqueries) is a :class:`PromQLError` naming what and where.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["AGGREGATIONS", "Agg", "Bin", "Call", "Expr", "Matcher", "Num", "PromQLError", "Sel", "parse"]

AGGREGATIONS = frozenset({"sum", "avg", "min", "max", "count", "stddev", "stdvar", "group", "topk", "bottomk"})
COMPARISONS = frozenset({"==", "!=", ">", "<", ">=", "<="})
_PRECEDENCE: tuple[frozenset[str], ...] = (
    frozenset({"or"}),
    frozenset({"and", "unless"}),
    COMPARISONS,
    frozenset({"+", "-"}),
    frozenset({"*", "/", "%"}),
    frozenset({"^"}),
)
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<dur>\[[^\]]*\])
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>==|!=|>=|<=|=~|!~|[-+*/%^<>=(){},])
    )""",
    re.VERBOSE,
)


class PromQLError(ValueError):
    """An expression outside the subset this parser reads."""


@dataclass(frozen=True)
class Matcher:
    """``label op "value"`` inside a selector's braces."""

    label: str
    op: str
    value: str


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Sel:
    """A vector selector, with its range (``[5m]``) when it has one."""

    metric: str
    matchers: tuple[Matcher, ...] = ()
    range: str | None = None


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Agg:
    op: str
    expr: Expr
    by: tuple[str, ...] | None = None
    without: tuple[str, ...] | None = None
    param: Expr | None = None


@dataclass(frozen=True)
class Bin:
    op: str
    left: Expr
    right: Expr
    modifiers: tuple[str, ...] = field(default=())


Expr = Num | Sel | Call | Agg | Bin


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = re.sub(r"#[^\n]*", "", text).rstrip()
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if found is None or found.end() == pos:
            raise PromQLError(f"unexpected {text[pos:].strip()[:20]!r} at character {pos}")
        kind = found.lastgroup or ""
        out.append((kind, found.group(kind)))
        pos = found.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self, ahead: int = 0) -> str:
        j = self.i + ahead
        return self.tokens[j][1] if j < len(self.tokens) else ""

    def kind(self) -> str:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> str:
        if self.i >= len(self.tokens):
            raise PromQLError(f"unexpected end of expression{f', expected {expected!r}' if expected else ''}")
        value = self.tokens[self.i][1]
        if expected is not None and value.lower() != expected:
            raise PromQLError(f"expected {expected!r}, found {value!r}")
        self.i += 1
        return value

    def labels(self) -> tuple[str, ...]:
        self.take("(")
        names: list[str] = []
        while self.peek() != ")":
            names.append(self.take())
            if self.peek() == ",":
                self.take(",")
        self.take(")")
        return tuple(names)

    def binary(self, level: int = 0) -> Expr:
        if level == len(_PRECEDENCE):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek().lower() in _PRECEDENCE[level] and self.kind() in ("op", "ident"):
            op = self.take().lower()
            modifiers: list[str] = []
            while self.peek().lower() in ("bool", "on", "ignoring", "group_left", "group_right"):
                word = self.take().lower()
                modifiers.append(word)
                if word != "bool" and self.peek() == "(":
                    modifiers[-1] += "(" + ",".join(self.labels()) + ")"
            # ^ is right-associative; the others associate to the left
            right = self.binary(level if op == "^" else level + 1)
            left = Bin(op, left, right, tuple(modifiers))
        return left

    def unary(self) -> Expr:
        if self.peek() in ("-", "+"):
            sign = self.take()
            inner = self.unary()
            if isinstance(inner, Num):
                return Num(-inner.value if sign == "-" else inner.value)
            return Bin("*", Num(-1.0 if sign == "-" else 1.0), inner)
        return self.postfix(self.primary())

    def postfix(self, expr: Expr) -> Expr:
        if self.kind() == "dur":
            text = self.take()
            if ":" in text:
                raise PromQLError(f"subquery {text} is not supported")
            if not isinstance(expr, Sel) or expr.range is not None:
                raise PromQLError(f"a range {text} applies only to a selector")
            expr = Sel(expr.metric, expr.matchers, text[1:-1].strip())
        if self.peek().lower() in ("offset", "@"):
            raise PromQLError(f"{self.peek()!r} modifiers are not supported")
        return expr

    def primary(self) -> Expr:
        kind, value = self.tokens[self.i] if self.i < len(self.tokens) else ("", "")
        if kind == "num":
            self.take()
            return Num(float(value))
        if value == "(":
            self.take("(")
            inner = self.binary()
            self.take(")")
            return inner
        if value == "{":
            return self.selector("")
        if kind != "ident":
            raise PromQLError(f"unexpected {value!r}" if value else "unexpected end of expression")
        self.take()
        lowered = value.lower()
        if lowered in AGGREGATIONS:
            return self.aggregation(lowered)
        if self.peek() == "(":
            self.take("(")
            args: list[Expr] = []
            while self.peek() != ")":
                args.append(self.binary())
                if self.peek() == ",":
                    self.take(",")
            self.take(")")
            return Call(value, tuple(args))
        if lowered in ("inf", "nan"):
            return Num(float(lowered))
        return self.selector(value)

    def aggregation(self, op: str) -> Agg:
        grouping: dict[str, tuple[str, ...]] = {}

        def clause() -> None:
            if self.peek().lower() in ("by", "without") and self.peek(1) == "(":
                word = self.take().lower()
                grouping[word] = self.labels()

        clause()
        self.take("(")
        inner, param = self.binary(), None
        if self.peek() == ",":
            self.take(",")
            param, inner = inner, self.binary()
        self.take(")")
        clause()
        return Agg(op, inner, grouping.get("by"), grouping.get("without"), param)

    def selector(self, metric: str) -> Sel:
        matchers: list[Matcher] = []
        if self.peek() == "{":
            self.take("{")
            while self.peek() != "}":
                label = self.take()
                op = self.take()
                if op not in ("=", "!=", "=~", "!~"):
                    raise PromQLError(f"unexpected {op!r} after label {label}")
                if self.kind() != "str":
                    raise PromQLError(f"label {label} needs a quoted value")
                matchers.append(Matcher(label, op, _unquote(self.take())))
                if self.peek() == ",":
                    self.take(",")
            self.take("}")
        if not metric:
            named = [m for m in matchers if m.label == "__name__" and m.op == "="]
            if not named:
                raise PromQLError("a selector without a metric name is not supported")
            metric = named[0].value
            matchers = [m for m in matchers if m.label != "__name__"]
        return Sel(metric, tuple(matchers))


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def parse(text: str) -> Expr:
    """Parse one PromQL expression.

    Raises:
        PromQLError: syntax outside the supported subset, with the token where it stopped.
    """
    parser = _Parser(text)
    expr = parser.binary()
    if parser.i != len(parser.tokens):
        raise PromQLError(f"unexpected {parser.peek()!r} after a complete expression")
    return expr
