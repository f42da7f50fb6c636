"""The core data types' helpers: label keys and the one label matcher every reader uses."""

from __future__ import annotations

import pytest

from crucible_monitor.models import labels_key, labels_match, parse_labels_key


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"mountpoint": "/var"}, True),
        ({"mountpoint": "/var", "device": "sda1"}, True),
        ({"mountpoint": "/"}, False),
        ({"mountpoint": "/var", "device": "sdb1"}, False),
        ({"fstype": "ext4"}, False),  # a label the series lacks never matches
        ({"fstype": ""}, False),  # not even an empty value
        ({}, True),
        (None, True),
    ],
)
def test_labels_match_when_every_asked_label_is_there_with_its_value(
    match: dict[str, str] | None, expected: bool
) -> None:
    assert labels_match({"mountpoint": "/var", "device": "sda1"}, match) is expected


def test_a_series_without_labels_matches_only_an_empty_filter() -> None:
    assert labels_match({}, {}) and labels_match({}, None)
    assert not labels_match({}, {"cpu": "total"})


def test_labels_keys_are_canonical_and_parse_back() -> None:
    key = labels_key({"b": "2", "a": "1"})
    assert key == labels_key({"a": "1", "b": "2"}) == '{"a":"1","b":"2"}'
    assert parse_labels_key(key) == {"a": "1", "b": "2"}
    assert labels_key({}) == "{}"
