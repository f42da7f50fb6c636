"""``crucible-monitor``: run the agent, look at it, query it, check a config.

Subcommands import what they need when they run (pandas, pyarrow, FastAPI are not needed to check a config), so
the CLI starts fast and the agent loads only its own dependencies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from crucible_monitor import __version__, cli_import, tui
from crucible_monitor.cli_tokens import add_token_arguments
from crucible_monitor.config import Config, config_notes, iter_secrets, load_config, with_listen_addr
from crucible_monitor.configfile import CONFIG_ENV, discover
from crucible_monitor.errors import ConfigError, CrucibleError, QueryError

if TYPE_CHECKING:
    from crucible_monitor.agent import Agent
    from crucible_monitor.operations import Operations
    from crucible_monitor.remote import RemoteMonitor
    from crucible_monitor.schemas import MetricReport, MetricsReport

__all__ = ["main"]

_T = TypeVar("_T")

EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3


class RedactSecrets(logging.Filter):
    """Replace every configured secret in log records with ``****`` (defence in depth)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            if any(s in message for s in self.secrets):
                for secret in self.secrets:
                    message = message.replace(secret, "****")
                record.msg, record.args = message, None
        return True


def setup_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Log to stderr (stdout is kept for output and, for ``mcp``, the protocol)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("crucible_monitor").setLevel(level.upper())


def _load_located(args: argparse.Namespace) -> tuple[Config, Path | None]:
    """The config the discovery finds (``--config``, ``$CRUCIBLE_MONITOR_CONFIG``, the search path, the defaults)
    with ``--listen`` applied, and the file it came from."""
    path, source = discover(getattr(args, "config", None))
    try:
        config = load_config(path)
    except ConfigError as exc:
        if source == CONFIG_ENV:
            raise ConfigError(f"{exc}\n(the file named by {CONFIG_ENV})") from None
        raise
    listen = getattr(args, "listen", None)
    return (with_listen_addr(config, listen) if listen else config), path


def _load(args: argparse.Namespace) -> Config:
    return _load_located(args)[0]


# -- commands ---------------------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace, make_agent: Callable[..., Agent] | None = None) -> int:
    """Run the agent in the foreground until SIGTERM or Ctrl-C; both flush the WAL and exit 0. ``make_agent(config,
    config_path=...)`` builds it (the reliability harness passes an accelerated clock)."""
    import uvicorn  # deferred: only the agent needs the server stack

    from crucible_monitor.agent import Agent, alerting_config
    from crucible_monitor.server.app import bind_listener, build_app
    from crucible_monitor.tokens import ensure_api_token

    config, path = _load_located(args)
    alerting_config(config)  # a bad alerting file stops here with its errors, not inside the server
    try:
        listener = bind_listener(config.agent.host, config.agent.port)
    except OSError as exc:
        key = f"agent.listen_addr in {path}" if path else "agent.listen_addr in a config file"
        raise CrucibleError(
            f"cannot listen on {config.agent.listen_addr}: {exc.strerror or exc}; "
            f"choose another address with --listen HOST:PORT or {key}"
        ) from None
    token = ensure_api_token(config)
    setup_logging(config.agent.log_level, [*iter_secrets(config), token])
    app = build_app((make_agent or Agent)(config, config_path=path), token)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.agent.host,
            port=config.agent.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=10,
        )
    )
    logging.getLogger("crucible_monitor").info(
        "serving http://%s/api/v1 (config: %s; token: %s)",
        config.agent.listen_addr,
        path or "built-in defaults",
        "from config" if config.agent.api_token else config.agent.data_dir / "api_token",
    )
    # uvicorn shuts down gracefully on SIGTERM (the lifespan flushes the WAL), then re-raises the signal to the
    # handler that was there before it; a no-op one lets the process exit 0, as a service manager expects.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.run(sockets=[listener])
    return 0 if server.started else 1


def cmd_install(args: argparse.Namespace) -> int:
    """Install the service: user, directories, monitor.yaml, alerts.yaml, the unit; then print the next steps."""
    from crucible_monitor import install

    executable = args.exec or install.entry_point()
    say = Console(highlight=False, soft_wrap=True).out
    prefix = "(dry run) " if args.dry_run else ""
    install.run_steps(
        install.plan(executable),
        root=args.root,
        dry_run=args.dry_run,
        say=lambda line: say(prefix + line),
        is_root=os.geteuid() == 0,
    )
    say("dry run: nothing was changed" if args.dry_run else "installed; next steps:")
    for line in install.next_steps(executable):
        say(f"  {line}")
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    """MCP over stdio: talk to the running agent through its API, or run an embedded agent when none answers
    (:mod:`crucible_monitor.server.stdio`)."""
    from crucible_monitor.server.stdio import serve_stdio

    config = _load(args)
    setup_logging(config.agent.log_level, iter_secrets(config))
    asyncio.run(serve_stdio(config))
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a config file; print a summary, or every error with file, line and key. With ``--probe``, also
    reach every configured target once and exit 1 if any fails."""
    from crucible_monitor.agent import alerting_config

    path = discover(args.path or args.config)[0]
    config = load_config(path)
    alerting = alerting_config(config)
    console = Console()
    collectors = config.collectors
    console.print(f"[green]✓[/] {path} is valid" if path else "[green]✓[/] the built-in defaults are valid")
    table = Table(show_header=False, box=None)
    table.add_row("listen", config.agent.listen_addr)
    table.add_row("data dir", str(config.agent.data_dir))
    table.add_row("collect every", str(config.agent.collect_interval))
    table.add_row("http checks", ", ".join(c.name for c in collectors.http_checks) or "none")
    table.add_row("systemd units", ", ".join(collectors.services.systemd.units) or "discovered")
    if collectors.services.services:
        table.add_row("services", ", ".join(collectors.services.services) + " (systemd or supervisor)")
    table.add_row("alert rules", ", ".join(r.name for r in alerting.rules) or "none")
    table.add_row("receivers", ", ".join(alerting.receivers) or "none (alerts are only listed)")
    console.print(table)
    for note in config_notes(path) if path else []:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)
    if not args.probe:
        return 0
    from crucible_monitor.probe import probe, probe_table

    rows = asyncio.run(probe(config))
    console.print(probe_table(rows))
    return 1 if any(not row.ok for row in rows) else 0


def cmd_token(args: argparse.Namespace) -> int:
    """Print the default (admin) API token, generated if the agent never ran; or create, list, revoke scoped ones."""
    from crucible_monitor.cli_tokens import run_token

    return run_token(args, _load(args))


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the data directory (state.db, Parquet, WAL, api_token) into DEST, while the agent runs."""
    from crucible_monitor.storage.backup import backup

    config = _load(args)
    with _copy_progress("backing up") as progress:
        result = backup(config.agent.data_dir, Path(args.dest), progress=progress)
    print(f"backed up {config.agent.data_dir} to {result.directory}: {result.summary()}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Verify a backup's checksums, then copy it into the (empty) data directory of the config."""
    from crucible_monitor.storage.backup import restore

    config = _load(args)
    with _copy_progress("restoring") as progress:
        result = restore(Path(args.src), config.agent.data_dir, progress=progress)
    print(f"restored {args.src} into {result.directory}: {result.summary()}")
    return 0


@contextlib.contextmanager
def _copy_progress(what: str) -> Iterator[Callable[[str, int, int], None]]:
    """A rich progress bar on stderr, advanced after each copied file."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn(what),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def advance(name: str, done: int, known: int) -> None:
            bar.update(task, completed=done, total=known, description=escape(name))

        yield advance


def cmd_status(args: argparse.Namespace) -> int:
    """The headline and findings, firing alerts, then system, services, checks and each application collector;
    ``--watch`` redraws it every few seconds until Ctrl-C."""
    from rich.live import Live

    from crucible_monitor.cli_status import fetch_status, render_status

    config = _load(args)
    console = Console()

    async def screen() -> Any:
        async with _reach(config) as remote:
            return render_status(await _call(remote, fetch_status(remote)), console.width)

    if args.watch is None:
        console.print(asyncio.run(screen()))
        return 0
    with Live(asyncio.run(screen()), console=console, auto_refresh=False) as live:
        try:
            while True:
                time.sleep(args.watch)
                live.update(asyncio.run(screen()), refresh=True)
        except KeyboardInterrupt:  # Ctrl-C is how a watch ends
            return 0


def cmd_query(args: argparse.Namespace) -> int:
    """A metric's history (or a group's: ``memory`` is every memory_* metric) from a running agent, as
    sparklines, a table or JSON."""
    from crucible_monitor.params import parse_labels, parse_seconds, parse_time

    now = time.time()
    try:
        start = parse_time(args.start or args.since, now)
        end = parse_time(args.end, now) if args.end else now
        step = parse_seconds(args.step) if args.step else None
        labels = parse_labels(args.labels) if args.labels else None
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    config = _load(args)

    async def fetch() -> MetricsReport:
        async with _reach(config) as remote:
            ops: Operations = remote
            report = ops.metrics_report(
                args.metric, start=start, end=end, step=step, agg=args.agg, labels=labels, max_points=500, max_series=50
            )
            return await _call(remote, report)

    result = asyncio.run(fetch())
    if args.format == "json":
        print(result.model_dump_json(indent=2))
        return 0
    console = Console()
    for report in result.reports:
        _print_report(console, report, args.format)
    return 0


def _print_report(console: Console, report: MetricReport, form: str) -> None:
    """One metric of a query: sparklines that keep their newest points, or a table of every point."""
    from crucible_monitor.cli_status import fit_middle, sparkline

    title = f"{report.metric} ({report.agg}, {report.unit})"
    if not report.series:
        console.print(f"no data for {report.metric} between {report.start} and {report.end}", markup=False)
        return
    if form == "sparkline":
        stats = [(_fmt(s.stats["min"]), _fmt(s.stats["max"]), _fmt(s.stats["last"])) for s in report.series]
        numbers = max(len(v) for row in stats for v in row) * 3 + 9  # three columns and their borders
        label_width = min(max(len(_label_text(s.labels)) for s in report.series), max(12, console.width // 4))
        trend_width = max(5, console.width - numbers - label_width - 7)
        table = Table("Series", "Trend", "Min", "Max", "Last", title=title, title_justify="left")
        for series, (low, high, last) in zip(report.series, stats, strict=True):
            values = [v for _, v in series.points]
            table.add_row(
                fit_middle(_label_text(series.labels), label_width), sparkline(values, trend_width), low, high, last
            )
        console.print(table)
        return
    table = Table("Time", *(fit_middle(_label_text(s.labels), 24) for s in report.series), title=title)
    stamps = sorted({ts for s in report.series for ts, _ in s.points})
    columns = [dict(s.points) for s in report.series]
    for ts in stamps:
        table.add_row(ts[:19].replace("T", " "), *(_fmt(c.get(ts)) for c in columns))
    console.print(table)


def _reach(config: Config) -> RemoteMonitor:
    from crucible_monitor.remote import RemoteMonitor

    return RemoteMonitor.from_config(config)


async def _call(remote: RemoteMonitor, call: Awaitable[_T]) -> _T:
    """Await ``call``; when no agent answers, say which address was tried and how to start one there."""
    from crucible_monitor.remote import AgentUnavailable

    try:
        return await call
    except AgentUnavailable as exc:
        address = remote.base_url.removeprefix("http://")
        raise AgentUnavailable(
            f"{exc}\nstart one with: crucible-monitor serve --listen {address} (or --config FILE), "
            "or point this command at the running one with --listen HOST:PORT or --config FILE"
        ) from None


# -- formatting helpers -----------------------------------------------------------------------------------------


def _label_text(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items()) or "(no labels)"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:.4e}"


# -- entry point ------------------------------------------------------------------------------------------------


_CONFIG_HELP = (
    f"YAML config (default: ${CONFIG_ENV}, else /etc/crucible-monitor/monitor.yaml, else /etc/crucible/monitor.yaml, "
    "else built-in defaults)"
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; every command takes ``--config PATH``."""
    parser = argparse.ArgumentParser(prog="crucible-monitor", description="A monitoring agent you can talk to.")
    parser.add_argument("--version", action="version", version=f"crucible-monitor {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, handler: Callable[[argparse.Namespace], int], help_text: str, listen: str | None = None
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--config", metavar="PATH", help=_CONFIG_HELP)
        if listen is not None:
            sub.add_argument("--listen", metavar="HOST:PORT", help=listen)
        sub.set_defaults(handler=handler)
        return sub

    reach = "the agent's address (default: agent.listen_addr of the config)"
    add(
        "serve",
        cmd_serve,
        "run the agent (HTTP API, /metrics) in the foreground",
        "listen here (overrides agent.listen_addr)",
    )
    status = add("status", cmd_status, "show what is wrong, alerts, system, services, checks and applications", reach)
    status.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=5.0,
        metavar="SECONDS",
        help="redraw every SECONDS (default 5) until Ctrl-C",
    )
    query = add("query", cmd_query, "show a metric's or a group's history from a running agent", reach)
    query.add_argument(
        "metric", help="a metric name (cpu_usage_ratio) or a group (memory: every memory_* metric); see list_metrics"
    )
    query.add_argument("--since", default="1h", help="how far back (default 1h)")
    query.add_argument("--start", help="start: ISO 8601, Unix seconds or a duration ago (overrides --since)")
    query.add_argument("--end", help="end (default now)")
    query.add_argument("--step", help="bucket width, e.g. 1m (default: about 300 buckets)")
    query.add_argument("--agg", choices=["avg", "min", "max", "last", "p95", "count", "rate"])
    query.add_argument("--labels", help="label filter k=v,k2=v2")
    query.add_argument("--format", choices=["table", "sparkline", "json"], default="sparkline")
    check = add("check-config", cmd_check_config, "validate a config file and exit non-zero if it is invalid")
    check.add_argument("path", nargs="?", help="the YAML file to check (default: the one the agent would read)")
    check.add_argument(
        "--probe", action="store_true", help="also connect to every configured target; exit 1 if any fails"
    )
    add_token_arguments(add("token", cmd_token, "print the admin API token; create, list or revoke scoped ones"))
    add("backup", cmd_backup, "copy the data directory into DEST (safe while the agent runs)").add_argument(
        "dest", help="a new or empty directory"
    )
    add("restore", cmd_restore, "restore a backup into the (empty) data directory of the config").add_argument(
        "src", help="a directory written by backup"
    )
    add("mcp", cmd_mcp, "serve MCP over stdio (for Claude Code, Claude Desktop, Crush)", reach)
    tui.add_arguments(add("dashboard", tui.run, "the terminal dashboard over a running agent (or --url)", reach))
    cli_import.add_arguments(add("import-rules", cli_import.run, "convert Prometheus alerting rules to ours"))
    install = commands.add_parser("install", help="install as a systemd service (user, config, unit)")
    install.add_argument("--dry-run", action="store_true", help="print every step and change nothing")
    install.add_argument("--root", type=Path, metavar="DIR", help="prefix every path (packaging); creates no user")
    install.add_argument("--exec", metavar="PATH", help="ExecStart's crucible-monitor (default: this installation's)")
    install.set_defaults(handler=cmd_install)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    args = build_parser().parse_args(argv)
    errors = Console(stderr=True, highlight=False)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        errors.print("[red]config error[/]")
        errors.print(str(exc), markup=False, soft_wrap=True)
        return EXIT_CONFIG
    except CrucibleError as exc:
        errors.print("[red]error:[/] ", end="")
        errors.print(str(exc), markup=False, soft_wrap=True)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
