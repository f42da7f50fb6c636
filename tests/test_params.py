"""The one parser of times, durations and labels (API, MCP, CLI) and the wire form RemoteMonitor writes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from crucible_monitor.params import (
    Seconds,
    Span,
    Time,
    format_labels,
    parse_labels,
    parse_seconds,
    parse_time,
    wire_number,
)

NOW = 1_796_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("2h", NOW - 7200),
        ("-5m", NOW - 300),
        ("now-1h", NOW - 3600),
        ("now - 1d", NOW - 86400),
        ("2026-11-28T10:00:00Z", 1795860000.0),
        ("2026-11-28T10:00:00", 1795860000.0),
        ("2026-11-28T11:00:00+01:00", 1795860000.0),
        ("1795860000", 1795860000.0),
        ("1795860000.25", 1795860000.25),
        (1795860000, 1795860000.0),
    ],
)
def test_times_in_every_accepted_form(text: str | float, expected: float) -> None:
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30.0), ("5m", 300.0), ("2h", 7200.0), ("7d", 604800.0), ("1h30m", 5400.0), ("90", 90.0), (2.5, 2.5)],
)
def test_durations_in_every_accepted_form(text: str | float, expected: float) -> None:
    assert parse_seconds(text) == expected


def test_errors_name_the_accepted_forms() -> None:
    with pytest.raises(ValueError, match=r"invalid time 'yesterday-ish': use now, .*ISO 8601.*Unix seconds"):
        parse_time("yesterday-ish", NOW)
    with pytest.raises(ValueError, match=r"invalid duration 'soon': use a duration such as 30s"):
        parse_seconds("soon")
    with pytest.raises(ValueError, match="invalid label filter 'oops'"):
        parse_labels("oops")


@pytest.mark.parametrize("value", [2_592_000.0, 30 * 86400 + 0.1, 1e-3, 1796187889.123456, 86400 * 365 * 10.0])
def test_the_wire_form_reads_back_exactly(value: float) -> None:
    """RemoteMonitor once wrote ``f"{v:g}s"``: 2.592e+06s, which no parser read (issue 9)."""
    assert parse_seconds(wire_number(value)) == value
    assert parse_time(wire_number(value), NOW) == value


def test_labels_round_trip() -> None:
    labels = {"mountpoint": "/var", "device": "vda"}
    assert parse_labels(format_labels(labels)) == labels


def test_the_annotated_types_parse_with_pydantic() -> None:
    assert TypeAdapter(Seconds).validate_python("2h") == 7200.0
    assert TypeAdapter(Span).validate_python("90") == timedelta(seconds=90)
    assert TypeAdapter(Time).validate_python("1795860000") == 1795860000.0
    with pytest.raises(ValidationError, match="ISO 8601"):
        TypeAdapter(Time).validate_python("last tuesday")
