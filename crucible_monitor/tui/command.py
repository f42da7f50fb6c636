"""``crucible-monitor dashboard`` and ``crucible``: the arguments, the agent's address and token, and the run.

The address and token come from ``--url`` and ``--token``, else from the config that discovery finds (as for
``crucible-monitor status``): its ``agent.listen_addr`` and its token.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from crucible_monitor.config import load_config, with_listen_addr
from crucible_monitor.configfile import CONFIG_ENV, discover
from crucible_monitor.errors import ConfigError
from crucible_monitor.remote import RemoteMonitor
from crucible_monitor.tokens import read_api_token
from crucible_monitor.tui import add_arguments
from crucible_monitor.tui.app import build_app

TOKEN_ENV = "CRUCIBLE_MONITOR_TOKEN"
"""The token for a dashboard started without --token (the browser mode passes it so)."""

__all__ = ["TOKEN_ENV", "address_for", "main", "remote_for", "run"]

MIN_REFRESH = 0.2


def address_for(args: argparse.Namespace) -> tuple[str, str | None]:
    """The agent's URL and token ``args`` describe: ``--url``/``--token`` (or ``$CRUCIBLE_MONITOR_TOKEN``) over
    what the discovered config says."""
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    path, source = discover(getattr(args, "config", None))
    try:
        config = load_config(path)
    except ConfigError as exc:
        if args.url and token:  # everything needed was given: a broken local config does not matter
            return args.url, token
        if source == CONFIG_ENV:
            raise ConfigError(f"{exc}\n(the file named by {CONFIG_ENV})") from None
        raise
    listen = getattr(args, "listen", None)
    from_config = RemoteMonitor.from_config(with_listen_addr(config, listen) if listen else config)
    asyncio.run(from_config.aclose())
    return args.url or from_config.base_url, token if token is not None else read_api_token(config)


def remote_for(args: argparse.Namespace) -> RemoteMonitor:
    """The client of the agent ``args`` describe (see :func:`address_for`)."""
    url, token = address_for(args)
    return RemoteMonitor(url, token, timeout=10.0)


def run(args: argparse.Namespace) -> int:
    """Run the dashboard until ``q``; returns the exit status."""
    if args.refresh < MIN_REFRESH:
        raise ConfigError(f"--refresh must be at least {MIN_REFRESH} seconds, got {args.refresh:g}")
    if args.serve:
        from crucible_monitor.tui.web import serve  # textual-serve (aiohttp) loads only for the browser mode

        url, token = address_for(args)
        if not token:
            raise ConfigError("--serve needs the agent's API token (--token, or a config that has it)")
        serve(url, token, listen=args.serve_listen, refresh=args.refresh, read_only=args.read_only)
        return 0
    remote = remote_for(args)
    app = build_app(remote, remote.base_url, refresh=args.refresh, read_only=args.read_only, close=remote.aclose)
    app.run()
    return app.return_code or 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``crucible`` entry point: the dashboard alone."""
    parser = argparse.ArgumentParser(prog="crucible", description="The crucible-monitor dashboard.")
    parser.add_argument("--config", metavar="PATH", help="YAML config to find the agent and its token in")
    parser.add_argument("--listen", metavar="HOST:PORT", help="the agent's address (default: agent.listen_addr)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ConfigError as exc:
        print(f"config error\n{exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
