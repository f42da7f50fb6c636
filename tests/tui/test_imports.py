"""The dashboard is a client: it loads neither the agent's components nor numpy/pyarrow, and the CLI builds its
parser (``dashboard`` included) without loading Textual."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

AGENT_SIDE = (
    "crucible_monitor.collectors",
    "crucible_monitor.storage",
    "crucible_monitor.analysis",
    "crucible_monitor.alerts",
    "crucible_monitor.agent",
    "crucible_monitor.monitor",
)


def _loaded_by(code: str) -> list[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    loaded: list[str] = json.loads(out.stdout.splitlines()[-1])
    return loaded


def test_the_dashboard_loads_no_agent_component_nor_numpy_or_pyarrow() -> None:
    loaded = _loaded_by("import crucible_monitor.tui.app, crucible_monitor.tui.command")
    assert "textual" in loaded, "the probe did load the dashboard"
    unwanted = [m for m in loaded if m.split(".")[0] in ("numpy", "pyarrow", "pandas") or m.startswith(AGENT_SIDE)]
    assert unwanted == []


@pytest.mark.parametrize("argv", [["dashboard", "--help"], ["status", "--help"]])
def test_the_cli_parser_does_not_load_textual(argv: list[str]) -> None:
    code = (
        "import contextlib\nfrom crucible_monitor.cli import build_parser\n"
        f"with contextlib.suppress(SystemExit):\n    build_parser().parse_args({argv!r})"
    )
    loaded = _loaded_by(code)
    assert "crucible_monitor.tui" in loaded and "textual" not in loaded
