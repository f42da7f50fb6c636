"""Prometheus alerting rules (node_exporter, blackbox, systemd, mysqld and php-fpm exporters) as our alerting file.

:func:`import_rules` reads a Prometheus rule file (``groups: [{name, rules: [{alert, expr, for, labels,
annotations}]}]``) or a PrometheusRule resource (``spec.groups``), parses each ``expr`` with
:mod:`~crucible_monitor.alerts.promql` and matches it against the shapes it knows: a series compared with a number,
after constant arithmetic (``100 - x * 100 > 90``) is undone; ratios of node_exporter gauges that are one of our
ratios (``avail / size``: ``filesystem_used_ratio``, complemented); ``rate()`` of a counter; ``*_over_time`` as a
window; systemd unit state, restart counts, blackbox probes and certificate expiry as service, HTTP-check and
certificate rules. Every rule it cannot express comes back in :attr:`ImportResult.skipped` with the reason; every
approximation (a dropped matcher or guard, a range that became a window) is a note on the converted rule. The
YAML text is loaded back through :func:`~crucible_monitor.alerts.config.parse_alerting`, so what it prints loads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from crucible_monitor.alerts.config import parse_alerting
from crucible_monitor.alerts.importmaps import (
    COUNTER_FUNCTIONS,
    GUARD_METRICS,
    HOST_LABELS,
    NAMES,
    OVER_TIME,
    RATIOS,
    SEVERITIES,
    UP_REASON,
    Target,
    Unconvertible,
    const,
    lookup,
    selectors,
    show,
    special_rule,
)
from crucible_monitor.alerts.promql import COMPARISONS, Agg, Bin, Call, Expr, PromQLError, Sel, parse
from crucible_monitor.alerts.rules import Rule
from crucible_monitor.alerts.templating import check_template
from crucible_monitor.configtypes import format_duration, parse_duration
from crucible_monitor.errors import ConfigError

__all__ = ["Converted", "ImportResult", "Skipped", "Unconvertible", "convert_rule", "import_rules"]

_FLIP = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "==", "!=": "!="}
_RULE = TypeAdapter(Rule)


@dataclass
class Converted:
    """One rule converted: where it came from, our rule as it goes into the file, and what was approximated."""

    source: str
    expr: str
    rule: dict[str, Any]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Skipped:
    """One rule not converted, and why."""

    source: str
    expr: str
    reason: str


@dataclass
class ImportResult:
    """What :func:`import_rules` made of a rule file."""

    source: str
    converted: list[Converted] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.converted) + len(self.skipped)

    def yaml(self) -> str:
        """The alerting file: the converted rules, each with its origin and notes as comments, then the rest."""
        lines = [
            f"# Converted by crucible-monitor import-rules from {self.source}:",
            f"# {len(self.converted)} of {self.total} rules converted, {len(self.skipped)} not (listed at the end).",
            "# Check each note; then name this file in alerts.rules_file (or merge its rules into yours).",
            "rules:" if self.converted else "rules: []",
        ]
        for item in self.converted:
            lines.append(f"  # from {item.source}: {_one_line(item.expr)}")
            lines.extend(f"  # note: {note}" for note in item.notes)
            dumped = yaml.safe_dump([item.rule], sort_keys=False, allow_unicode=True, width=120)
            lines.extend("  " + line for line in dumped.splitlines())
        if self.skipped:
            lines.append("# Not converted:")
            for skip in self.skipped:
                lines.append(f"#   {skip.source}: {skip.reason}")
                lines.append(f"#     expr: {_one_line(skip.expr)}")
        text = "\n".join(lines) + "\n"
        parse_alerting(text, f"{self.source} (converted)").check_references()
        return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _groups(text: str, source: str) -> Iterator[Mapping[str, Any]]:
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not YAML: {exc}") from None
    for document in documents:
        spec = document.get("spec") if isinstance(document, Mapping) else None
        groups = (
            (spec if isinstance(spec, Mapping) else document).get("groups") if isinstance(document, Mapping) else None
        )
        if not isinstance(groups, list):
            raise ConfigError(
                f"{source}: no groups: expected a Prometheus rule file (groups: [{{name, rules: [...]}}]) "
                "or a PrometheusRule resource (spec.groups)"
            )
        for group in groups:
            if not isinstance(group, Mapping) or not isinstance(group.get("rules", []), list):
                raise ConfigError(f"{source}: each group needs a name and a list of rules")
            yield group


def import_rules(text: str, source: str = "<rules>") -> ImportResult:
    """Convert the alerting rules of a Prometheus rule file.

    Raises:
        ConfigError: the text is not YAML or not a rule file (no ``groups``).
    """
    result = ImportResult(source)
    names: set[str] = set()
    for group in _groups(text, source):
        for index, rule in enumerate(group.get("rules") or []):
            if not isinstance(rule, Mapping) or not ("alert" in rule or "record" in rule):
                where = f"{group.get('name', '?')}/rules[{index}]"
                result.skipped.append(
                    Skipped(where, str(rule), "neither an alerting rule (alert:) nor a recording one")
                )
                continue
            where = f"{group.get('name', '?')}/{rule.get('alert') or rule.get('record')}"
            expr = str(rule.get("expr", ""))
            if "alert" not in rule:
                reason = "a recording rule, not an alert: our queries aggregate when they read (agg=, step=)"
                result.skipped.append(Skipped(where, expr, reason))
                continue
            try:
                converted = convert_rule(rule, names)
            except Unconvertible as exc:
                result.skipped.append(Skipped(where, expr, str(exc)))
                continue
            names.add(converted.rule["name"])
            result.converted.append(Converted(where, expr, converted.rule, converted.notes))
    return result


def convert_rule(rule: Mapping[str, Any], taken: set[str] | frozenset[str] = frozenset()) -> Converted:
    """Convert one Prometheus alerting rule; ``taken`` holds the names already used (a duplicate gets a suffix).

    Raises:
        Unconvertible: the expression has no counterpart here, with the reason.
    """
    notes: list[str] = []
    text = str(rule.get("expr", ""))
    try:
        expr = parse(text)
    except PromQLError as exc:
        raise Unconvertible(f"cannot read the expression: {exc}") from None
    body, scaled = _condition(expr, notes)
    labels = {str(k): str(v) for k, v in (rule.get("labels") or {}).items()}
    severity = labels.pop("severity", "warning").lower()
    if severity not in SEVERITIES:
        notes.append(f"severity {severity!r} became warning (ours: info, warning, critical)")
    out: dict[str, Any] = {"name": _name(str(rule["alert"]), SEVERITIES.get(severity, "warning"), taken, notes)}
    out.update(body)
    out["severity"] = SEVERITIES.get(severity, "warning")
    for key in ("for", "keep_firing_for"):
        if rule.get(key) is not None:
            out[key] = _duration(str(rule[key]), key, notes)
    if labels:
        out["labels"] = labels
    annotations = _annotations(rule.get("annotations") or {}, scaled, _label_renames(body), notes)
    if annotations:
        out["annotations"] = annotations
    try:
        _RULE.validate_python(out)
    except ValidationError as exc:
        raise Unconvertible(f"the converted rule is invalid: {exc.errors(include_url=False)[0]['msg']}") from None
    return Converted(str(rule["alert"]), text, out, notes)


def _name(name: str, severity: str, taken: set[str] | frozenset[str], notes: list[str]) -> str:
    clean = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not re.match(r"[A-Za-z_]", clean):
        clean = "_" + clean
    candidate, n = clean, 1
    while candidate in taken:
        n += 1
        candidate = f"{clean}{severity.title()}" if n == 2 else f"{clean}{n}"
    if candidate != name:
        notes.append(f"renamed {name} to {candidate} (rule names are unique letters, digits and _)")
    return candidate


def _duration(text: str, key: str, notes: list[str]) -> str:
    try:
        return format_duration(parse_duration(text))
    except ValueError:
        notes.append(f"{key} {text!r} is not a duration we read; it became 0s")
        return "0s"


# -- the expression ------------------------------------------------------------------------------------------


def _guards_removed(expr: Expr, notes: list[str]) -> Expr:
    """``cond and guard`` → ``cond``, when the guard only keeps out series that cannot matter (a read-only
    filesystem, a zero denominator); any other ``and``, ``or`` or ``unless`` is two conditions."""
    if isinstance(expr, Bin) and expr.op in ("or", "unless"):
        raise Unconvertible(
            f"`{expr.op}` joins two conditions in one rule; write one rule for each "
            "(or a composite rule, kind: composite, for 'all of')"
        )
    if not (isinstance(expr, Bin) and expr.op == "and"):
        return expr
    left = _guards_removed(expr.left, notes)
    if _is_guard(expr.right):
        notes.append(f"dropped the guard `and {show(expr.right)}` (it keeps out series our rule ignores anyway)")
        return left
    raise Unconvertible(
        f"`and {_one_line(show(expr.right))}` is a second condition; write a rule for each and join them with a "
        "composite rule (kind: composite, mode: all)"
    )


def _is_guard(expr: Expr) -> bool:
    if not (isinstance(expr, Bin) and expr.op in COMPARISONS):
        return False
    metrics = {s.metric for s in selectors(expr.left)}
    value = const(expr.right)
    if metrics & GUARD_METRICS and value == 0 and expr.op == "==":
        return True
    return bool(metrics) and value == 0 and expr.op in (">", "!=")


def _condition(expr: Expr, notes: list[str]) -> tuple[dict[str, Any], bool]:
    """The rule body (kind and its fields) for ``expr``, and whether the value differs from the expression's."""
    expr = _guards_removed(expr, notes)
    if not (isinstance(expr, Bin) and expr.op in COMPARISONS):
        raise Unconvertible(
            "not a comparison with a number (it fires whenever the expression has a value); "
            "our rules compare one series with a number"
        )
    if "bool" in expr.modifiers:
        raise Unconvertible("a comparison with `bool` gives 0 or 1 for every series; write the comparison alone")
    left, op, right = expr.left, expr.op, expr.right
    if isinstance(left, Bin) and left.op in COMPARISONS and const(left.left) is not None:
        notes.append(f"dropped the lower bound `{show(left.left)} {left.op}` (another rule covers that range)")
        left = left.right
    lv, rv = const(left), const(right)
    if rv is not None and lv is None:
        series, value = left, rv
    elif lv is not None and rv is None:
        series, op, value = right, _FLIP[op], lv
    else:
        raise Unconvertible("compares two series with each other; our threshold rules compare a series with a number")
    series, op, value, scaled = _peel(series, op, value, notes)
    target = _target(series, op, value, notes)
    return target, bool(target.pop("_scaled", False)) or scaled


def _peel(series: Expr, op: str, value: float, notes: list[str]) -> tuple[Expr, str, float, bool]:
    """Undo constant arithmetic around the series: ``100 - x * 100 > 90`` is ``x < 0.1``."""
    scaled = False
    while True:
        if isinstance(series, Call) and series.fn in ("round", "ceil", "floor") and series.args:
            notes.append(f"dropped {series.fn}() around the value")
            series = series.args[0]
            continue
        if not (isinstance(series, Bin) and series.op in ("+", "-", "*", "/")):
            return series, op, round(value, 12), scaled
        lk, rk = const(series.left), const(series.right)
        if lk is None and rk is None:
            return series, op, round(value, 12), scaled
        scaled = True
        if series.op == "*":
            k, series = (lk, series.right) if lk is not None else (rk, series.left)
            assert k is not None
            if k == 0:
                raise Unconvertible("multiplies the series by 0")
            value, op = value / k, (_FLIP[op] if k < 0 else op)
        elif series.op == "/":
            if rk is None or rk == 0:
                raise Unconvertible(f"divides a number by the series (`{show(series)}`)")
            value, op, series = value * rk, (_FLIP[op] if rk < 0 else op), series.left
        elif series.op == "+":
            k, series = (lk, series.right) if lk is not None else (rk, series.left)
            assert k is not None
            value -= k
        elif rk is not None:  # x - k
            value, series = value + rk, series.left
        else:  # k - x
            assert lk is not None
            value, op, series = lk - value, _FLIP[op], series.right


def _target(series: Expr, op: str, value: float, notes: list[str]) -> dict[str, Any]:
    """The rule body for ``series op value``, the series stripped of arithmetic."""
    if any(s.metric == "up" for s in selectors(series)):
        raise Unconvertible(UP_REASON)
    special = special_rule(series, op, value, notes)
    if special is not None:
        return special
    target, scaled = _threshold(series, notes)
    value /= target.divide_by
    if target.complement:
        value, op = 1 - value, _FLIP[op]
    body: dict[str, Any] = {"kind": "threshold", "metric": target.metric}
    if target.match:
        body["match"] = target.match
    body["op"], body["value"] = op, round(value, 9)
    body.update(target.extra)
    if scaled or target.complement:
        body["_scaled"] = True
    return body


def _threshold(series: Expr, notes: list[str]) -> tuple[Target, bool]:
    """Our metric, match and function/window for a series expression."""
    match series:
        case Sel():
            if series.range is not None:
                raise Unconvertible(f"a range vector `{show(series)}` needs a function such as rate()")
            return lookup(series, notes, counter=False), False
        case Bin("/", Sel() as num, Sel() as den) if (num.metric, den.metric) in RATIOS:
            return _ratio(num, den, notes), False
        case Call(fn, (Sel(range=str(rng)) as sel,)) if fn in COUNTER_FUNCTIONS:
            target = lookup(sel, notes, counter=True)
            target.extra["function"] = "rate"
            seconds = parse_duration(rng).total_seconds()
            notes.append(f"{fn}() over [{rng}] became the rate between two collections")
            if fn in ("increase", "delta"):
                notes.append(f"{fn} over [{rng}] became a per-second rate: the value was divided by {seconds:g}")
                target.divide_by = seconds
                return target, True
            return target, False
        case Call(fn, (Sel(range=str(rng)) as sel,)) if fn in OVER_TIME:
            target = lookup(sel, notes, counter=False)
            agg = OVER_TIME[fn]
            if agg is not None:
                target.extra.update({"window": format_duration(parse_duration(rng)), "agg": agg})
            else:
                notes.append(f"{fn}(...[{rng}]) became the newest value")
            return target, False
        case Agg(op, inner, by, without, None):
            return _aggregated(op, inner, by, without, notes)
    unknown = sorted({s.metric for s in selectors(series)} - set(NAMES) - {"node_cpu_seconds_total"})
    if unknown:
        raise Unconvertible(f"no counterpart for {', '.join(unknown)} (see docs/migrate-node-exporter.md)")
    raise Unconvertible(f"the shape `{_one_line(show(series))}` has no counterpart in our rules")


def _ratio(num: Sel, den: Sel, notes: list[str]) -> Target:
    metric, complement, note = RATIOS[(num.metric, den.metric)]
    base = lookup(Sel(metric, num.matchers + tuple(m for m in den.matchers if m not in num.matchers)), notes)
    if note:
        notes.append(note)
    return Target(metric, base.match, complement=complement)


def _aggregated(
    op: str, inner: Expr, by: tuple[str, ...] | None, without: tuple[str, ...] | None, notes: list[str]
) -> tuple[Target, bool]:
    """``avg without (cpu) (rate(node_cpu_seconds_total{mode="idle"}[5m]))`` and aggregations over one host."""
    kept = set(by or ()) - HOST_LABELS
    busy = op == "sum" and isinstance(inner, Agg) and inner.op == "avg" and "mode" in (without or ())
    cpu = _cpu(inner.expr if busy and isinstance(inner, Agg) else inner, "avg" if busy else op, kept, notes, busy)
    if cpu is not None:
        return cpu, False
    if isinstance(inner, Sel) and not kept and not (without and set(without) - HOST_LABELS):
        target = lookup(inner, notes, counter=False)
        if not target.labels:
            notes.append(f"dropped {op}() over one host's single series")
            return target, False
    raise Unconvertible(
        f"{op}() across series (`{_one_line(show(Agg(op, inner, by, without)))}`): our rules judge each series alone"
    )


def _cpu(inner: Expr, op: str, kept: set[str], notes: list[str], busy: bool) -> Target | None:
    """The CPU shapes: the average over CPUs of the rate of one mode (idle: our busy ratio, complemented), or with
    ``busy`` the sum over the modes but idle and iowait, which is our ``cpu_usage_ratio``."""
    if not (op == "avg" and isinstance(inner, Call) and inner.fn in ("rate", "irate") and len(inner.args) == 1):
        return None
    sel = inner.args[0]
    if not (isinstance(sel, Sel) and sel.metric == "node_cpu_seconds_total" and sel.range):
        return None
    window = {"window": format_duration(parse_duration(sel.range)), "agg": "avg"}
    match = {} if "cpu" in kept else {"cpu": "total"}
    if "cpu" in kept:
        notes.append("per CPU: our per-CPU series carry cpu=0, 1, ... and the total cpu=total")
    if busy:
        excluded = [set(m.value.split("|")) for m in sel.matchers if m.label == "mode" and m.op == "!~"]
        if excluded != [{"idle", "iowait"}]:
            raise Unconvertible('a sum over CPU modes other than mode!~"idle|iowait" has no counterpart')
        return Target("cpu_usage_ratio", match, extra=window)
    modes = [m.value for m in sel.matchers if m.label == "mode" and m.op == "="]
    if len(modes) != 1:
        raise Unconvertible('node_cpu_seconds_total without one mode="..." matcher has no counterpart')
    if modes[0] == "idle":
        notes.append("cpu_usage_ratio is 1 - idle - iowait: time waiting for I/O does not count as busy")
        return Target("cpu_usage_ratio", match, complement=True, extra=window)
    return Target("cpu_mode_ratio", {**match, "mode": modes[0]}, extra=window)


# -- annotations ---------------------------------------------------------------------------------------------

_TEMPLATE_FORMS: tuple[tuple[str, str], ...] = (
    (r"\{\{-?\s*\$value\s*\|\s*humanizePercentage\s*-?\}\}", "{{ value:.1% }}"),
    (r"\{\{-?\s*humanizePercentage\s+\$value\s*-?\}\}", "{{ value:.1% }}"),
    (r"\{\{-?\s*\$value\s*\|\s*humanize(?:1024)?\s*-?\}\}", "{{ value:.4g }}"),
    (r"\{\{-?\s*humanize(?:1024)?\s+\$value\s*-?\}\}", "{{ value:.4g }}"),
    (r'\{\{-?\s*printf\s+"%\.(\d)f"\s+\$value\s*-?\}\}', r"{{ value:.\1f }}"),
    (r"\{\{-?\s*\$value\s*-?\}\}", "{{ value }}"),
    (r"\{\{-?\s*\$labels\.instance\s*-?\}\}", "{{ host }}"),
    (r"\{\{-?\s*\$labels\.(\w+)\s*-?\}\}", r"{{ labels.\1 }}"),
)


def _label_renames(body: Mapping[str, Any]) -> dict[str, str]:
    """Their label names in templates → ours, for the rule ``body`` became."""
    if body["kind"] == "service":
        return {"name": "service"}
    if body["kind"] in ("http_check", "certificate"):
        return {"instance": "check", "target": "check"}
    renames = next((r for ours, r, _ in NAMES.values() if ours == body.get("metric") and r), {})
    return dict(renames)


def _annotations(raw: Mapping[str, Any], scaled: bool, renames: Mapping[str, str], notes: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, text in raw.items():
        ours = {"runbook": "runbook_url", "message": "description"}.get(str(key), str(key))
        if ours not in ("summary", "description", "runbook_url"):
            notes.append(f"dropped the annotation {key} (ours: summary, description, runbook_url)")
            continue
        converted = str(text)
        for theirs, ours_label in renames.items():
            converted = re.sub(rf"\$labels\.{theirs}\b", f"$labels.{ours_label}", converted)
        for pattern, replacement in _TEMPLATE_FORMS:
            converted = re.sub(pattern, replacement, converted)
        left = re.findall(r"\{\{(?!\s*(?:value|threshold|name|severity|host|labels\.\w+)[\s:}])[^}]*\}\}", converted)
        for action in left:
            converted = converted.replace(action, "")
        if left:
            notes.append(f"{ours}: dropped the template actions {', '.join(sorted(set(left)))}")
        try:
            out[ours] = check_template(converted.strip())
        except ValueError as exc:
            notes.append(f"dropped the annotation {key}: {exc}")
    if scaled and any("{{ value" in v for v in out.values()):
        notes.append("{{ value }} in the annotations is now the value our rule compares, not the expression's")
    return out
