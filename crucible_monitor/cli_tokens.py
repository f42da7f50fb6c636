"""``crucible-monitor token``: print the default (admin) token, or create, list and revoke scoped ones.

``token create NAME --scope read`` stores the new token's hash in ``<data_dir>/tokens.json`` and prints its secret
once; the running agent accepts it from its next request on, and ``token revoke NAME`` ends it the same way.
"""

from __future__ import annotations

import argparse
import sys

from crucible_monitor.config import Config
from crucible_monitor.models import iso
from crucible_monitor.tokens import SCOPES, create_token, ensure_api_token, list_tokens, revoke_token

__all__ = ["add_token_arguments", "run_token"]


def add_token_arguments(parser: argparse.ArgumentParser) -> None:
    """``token [create NAME --scope S | list | revoke NAME]`` on the ``token`` command's parser."""
    actions = parser.add_subparsers(dest="token_action", metavar="ACTION")
    create = actions.add_parser("create", help="create a scoped token and print its secret (once)")
    create.add_argument("name", help="recorded in the audit as who acted, e.g. claude-code")
    create.add_argument(
        "--scope",
        choices=SCOPES,
        default="read",
        help="read: metrics, alerts, status, logs; operate: also acknowledge, silence, restart; admin: also config",
    )
    actions.add_parser("list", help="list the tokens the agent accepts (names and scopes, never secrets)")
    actions.add_parser("revoke", help="remove a token created with create").add_argument("name")


def run_token(args: argparse.Namespace, config: Config) -> int:
    """Run ``token``'s action: without one, print the default (admin) token."""
    action = getattr(args, "token_action", None)
    if action == "create":
        secret = create_token(config, args.name, args.scope)
        print(secret)
        print(
            f"token {args.name!r} ({args.scope}) created; this is the only time its secret is shown",
            file=sys.stderr,
        )
    elif action == "list":
        for token in list_tokens(config):
            created = iso(token.created) if token.created else "-"
            print(f"{token.name}\t{token.scope}\t{created}\t{token.source}")
    elif action == "revoke":
        revoke_token(config, args.name)
        print(f"token {args.name!r} revoked", file=sys.stderr)
    else:
        print(ensure_api_token(config))
    return 0
