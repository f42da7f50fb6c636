"""The terminal dashboard (``crucible-monitor dashboard``, ``crucible``): Textual screens over the HTTP API.

It talks to the agent only through :class:`~crucible_monitor.remote.RemoteMonitor`, so it works against a remote
agent as well as the local one. This module stays light (argparse only): the CLI builds its parser from it without
loading Textual.
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the dashboard's options (``--config`` is the caller's) and its handler to ``parser``."""
    parser.add_argument("--url", help="the agent's base URL, e.g. http://10.0.0.5:8765 (default: from the config)")
    parser.add_argument(
        "--token", help="the API token (default: $CRUCIBLE_MONITOR_TOKEN, the config's, or <data_dir>/api_token)"
    )
    parser.add_argument(
        "--refresh", type=float, default=2.0, metavar="SECONDS", help="seconds between refreshes (default 2)"
    )
    parser.add_argument("--read-only", action="store_true", help="hide acknowledge, silence and restart")
    parser.add_argument("--serve", action="store_true", help="serve the dashboard to browsers (textual-serve)")
    parser.add_argument(
        "--serve-listen", default="127.0.0.1:8566", metavar="HOST:PORT", help="where --serve listens (127.0.0.1:8566)"
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the dashboard ``args`` describe until ``q``; returns the exit status."""
    from crucible_monitor.tui.command import run as run_dashboard  # deferred: Textual loads only for the dashboard

    return run_dashboard(args)
