"""A clock the test moves by hand, passed wherever the code under test takes ``clock=``."""

from __future__ import annotations


class Clock:
    """Returns ``now`` when called; the test sets or advances it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
