"""``crucible-monitor import-rules FILE``: Prometheus alerting rules as our alerting file.

Light at import (argparse only), like :mod:`crucible_monitor.tui`: the CLI builds its parser from here and the
converter, :mod:`crucible_monitor.alerts.importer`, loads when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the command's arguments and handler to ``parser``."""
    parser.add_argument("rules", type=Path, help="a Prometheus rule file (groups: ...) or a PrometheusRule resource")
    parser.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write the alerting file here (default: stdout)"
    )
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Convert, print the report on stderr; 0 when every rule converted, 1 when some did not.

    Raises:
        ConfigError: the file cannot be read or is not a rule file.
    """
    from crucible_monitor.alerts.importer import import_rules  # deferred: the alerting models load only here
    from crucible_monitor.configfile import read_text

    path: Path = args.rules
    result = import_rules(read_text(path, "the rule file to import"), str(path))
    text = result.yaml()
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    err = sys.stderr
    err.write(f"{path}: converted {len(result.converted)} of {result.total} rules, {len(result.skipped)} not\n")
    for item in result.converted:
        for note in item.notes:
            err.write(f"  note: {item.source}: {note}\n")
    for skip in result.skipped:
        err.write(f"  not converted: {skip.source}: {skip.reason}\n")
    if args.output is not None:
        err.write(f"wrote {args.output}\n")
    return 1 if result.skipped else 0
