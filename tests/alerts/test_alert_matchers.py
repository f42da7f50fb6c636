"""Label matchers: Alertmanager's four forms, regular expressions on RE2 (linear time, no backtracking)."""

from __future__ import annotations

import pytest

from crucible_monitor.alerts.matchers import MAX_PATTERN_CHARS, parse_matcher


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("service=php-fpm", {"service": "php-fpm"}, True),
        ("service!=php-fpm", {"service": "mysql"}, True),
        ('service=~"php.*-fpm"', {"service": "php8.2-fpm"}, True),
        ("service=~php", {"service": "php8.2-fpm"}, False),  # anchored: the whole value must match
        ("service!~php.*", {}, True),  # an absent label is ""
    ],
)
def test_the_four_forms_match_as_in_alertmanager(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


def test_a_catastrophic_pattern_answers_on_a_long_value() -> None:
    # With backtracking (Python's re) this pattern on this value does not finish in any useful time; RE2 answers.
    matcher = parse_matcher("alertname=~(.*.*)*X")
    assert matcher.matches({"alertname": "a" * 50_000 + "Y"}) is False
    assert matcher.matches({"alertname": "a" * 50_000 + "X"}) is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (r"service=~(a)\1", "no backreferences or lookarounds"),
        ("service=~(?=php)php", "no backreferences or lookarounds"),
        ("service=~(php", "missing )"),
        ("service=~" + "a" * (MAX_PATTERN_CHARS + 1), f"limited to {MAX_PATTERN_CHARS} characters"),
    ],
)
def test_patterns_re2_cannot_run_or_too_long_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="regular expression") as refused:
        parse_matcher(text)
    assert message in str(refused.value)
