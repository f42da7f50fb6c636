"""The dashboard's small widgets: the connection banner, a vital sign with its sparkline, and a DataTable updated
in place (rows keyed, cells changed, never the table rebuilt: no flicker, the cursor stays on its row)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import DataTable, Label, Sparkline, Static

from crucible_monitor.tui.source import Connection
from crucible_monitor.units import human_bytes, human_duration, human_ratio

__all__ = ["Banner", "Vital", "ago", "fmt_bytes", "fmt_ratio", "short_time", "sync_table"]

Cell = str | Text


def fmt_ratio(value: float | None) -> str:
    """``0.42`` → ``42.0 %``; ``-`` when unknown."""
    return "-" if value is None else human_ratio(value)


def fmt_bytes(value: float | None) -> str:
    """Bytes as people read them; ``-`` when unknown."""
    return "-" if value is None else human_bytes(value)


def ago(seconds: float | None) -> str:
    """``12 s ago``; ``never`` when unknown."""
    if seconds is None:
        return "never"
    return f"{seconds:.0f} s ago" if seconds < 90 else f"{human_duration(seconds)} ago"


def short_time(value: str | float | None) -> str:
    """An ISO 8601 time or Unix seconds as local ``MM-DD HH:MM:SS``; ``-`` when unknown."""
    if value is None:
        return "-"
    stamp = datetime.fromisoformat(value).timestamp() if isinstance(value, str) else value
    return time.strftime("%m-%d %H:%M:%S", time.localtime(stamp))


class Banner(Static):
    """One line about the connection: hidden while fresh, otherwise unreachable or stale, and since when."""

    DEFAULT_CSS = """
    Banner { height: auto; display: none; padding: 0 1; }
    Banner.-shown { display: block; }
    Banner.-unreachable { background: $error; color: $text; }
    Banner.-stale { background: $warning; color: $text; }
    """

    def show_state(self, conn: Connection, now: float, stale: float) -> None:
        """Say what is wrong: no answer, or an error answer (and how old the data on screen is), or data older than
        ``stale`` seconds."""
        self.set_class(False, "-unreachable", "-stale")
        age, readings_age = conn.age(now), conn.readings_age(now)
        if conn.error is not None:
            shown = "no data yet" if age is None else f"showing data from {ago(age)}"
            what = "agent unreachable at" if conn.unreachable else "the agent refused or failed at"
            self.update(Text(f"{what} {conn.url}, retrying ({shown}): {conn.error}"))
            self.set_class(True, "-shown", "-unreachable")
        elif age is not None and age > stale:
            self.update(Text(f"stale: last answer {ago(age)}"))
            self.set_class(True, "-shown", "-stale")
        elif readings_age is not None and readings_age > stale:
            self.update(Text(f"stale: the agent's newest reading is from {ago(readings_age)}"))
            self.set_class(True, "-shown", "-stale")
        else:
            self.set_class(False, "-shown")


class Vital(Horizontal):
    """A vital sign: its name, a sparkline of its recent values and the value now."""

    DEFAULT_CSS = """
    Vital { height: 1; }
    Vital > .name { width: 10; }
    Vital > Sparkline { width: 1fr; margin: 0 1; }
    Vital > .value { width: 15; text-align: right; }
    """

    def __init__(self, title: str, *, id: str | None = None) -> None:
        """Args:
        title: the name shown on the left (``cpu``, ``disk /var``).
        id: the widget id.
        """
        super().__init__(id=id)
        self.title = title

    def compose(self) -> ComposeResult:
        yield Label(Text(self.title[:10]), classes="name")
        yield Sparkline([], summary_function=max)
        yield Label("-", classes="value")

    def show(self, values: Sequence[float], text: str) -> None:
        """Draw ``values`` (oldest first) and the current value ``text``."""
        self.query_one(Sparkline).data = list(values)
        self.query_one(".value", Label).update(text)


def sync_table(table: DataTable[Cell], rows: Mapping[str, Sequence[Cell]]) -> None:
    """Make ``table`` show ``rows`` (row key → cells, in order): changed cells updated, new rows added, gone rows
    removed; the table is rebuilt only when the order of the rows it keeps changes."""
    columns = list(table.columns)
    current = [str(key.value) for key in table.rows]
    keys = list(rows)
    remaining = [key for key in current if key in rows]
    if remaining != keys[: len(remaining)]:
        table.clear()
    else:
        for key in current:
            if key not in rows:
                table.remove_row(key)
    for key in keys:
        cells = rows[key]
        if key in table.rows:
            for column, cell in zip(columns, cells, strict=False):
                if table.get_cell(key, column) != cell:
                    table.update_cell(key, column, cell)
        else:
            table.add_row(*cells, key=key)
