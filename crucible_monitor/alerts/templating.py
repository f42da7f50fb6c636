"""Annotation templates: ``{{ value:.0% }} used on {{ labels.mountpoint }}``.

A placeholder names one variable, optionally followed by a Python format spec after ``:``. The variables are
``value`` (the number that made the condition true), ``threshold``, ``name`` (the alert name), ``severity``,
``host`` and ``labels.<label>``. Nothing else is evaluated: templates come from config files and must stay inert.
A label the alert lacks renders as ``""``, a missing value as ``n/a``; a format spec that does not suit the value
is ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["TemplateContext", "check_template", "render"]

VARIABLES = ("value", "threshold", "name", "severity", "host")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?)\s*(?::([^}]*))?\}\}")


@dataclass(frozen=True, slots=True)
class TemplateContext:
    """What a template can refer to."""

    name: str
    severity: str
    host: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    value: float | None = None
    threshold: float | None = None


def check_template(text: str) -> str:
    """Return ``text`` if every placeholder names a known variable with a valid format spec.

    Raises:
        ValueError: an unknown variable, a bad format spec, or an unclosed ``{{``.
    """
    for found in _PLACEHOLDER.finditer(text):
        variable, spec = found.group(1), (found.group(2) or "").strip()
        root, _, label = variable.partition(".")
        if root == "labels" and label:
            pass
        elif variable not in VARIABLES:
            valid = ", ".join((*VARIABLES, "labels.<name>"))
            raise ValueError(f"unknown template variable {variable!r} in {text!r}; valid: {valid}")
        if spec:
            try:
                format(1.5 if root in ("value", "threshold") else "text", spec)
            except ValueError:
                raise ValueError(f"invalid format spec {spec!r} for {variable} in {text!r}") from None
    if "{{" in _PLACEHOLDER.sub("", text):
        raise ValueError(f"unclosed or malformed placeholder in {text!r}: use {{{{ value }}}} or {{{{ labels.name }}}}")
    return text


def render(text: str, context: TemplateContext) -> str:
    """Fill the placeholders of a template checked by :func:`check_template`."""

    def replace(found: re.Match[str]) -> str:
        variable, spec = found.group(1), (found.group(2) or "").strip()
        root, _, label = variable.partition(".")
        value: object = context.labels.get(label, "") if root == "labels" else getattr(context, root)
        if value is None:
            return "n/a"
        try:
            return format(value, spec)
        except (ValueError, TypeError):
            return str(value)

    return _PLACEHOLDER.sub(replace, text)
