"""Who is asking the MCP server and whether they agreed: the bearer token (and its scope) over HTTP, the name recorded
in the audit log, and the user's confirmation of a restart (elicitation, or the explicit ``confirm`` where the client
cannot ask).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, Elicit
from pydantic import AnyHttpUrl, BaseModel, Field

from crucible_monitor.config import Scope
from crucible_monitor.tokens import SCOPES, TokenRegistry

__all__ = ["Confirm", "McpAuth", "RegistryTokenVerifier", "ask_restart_confirmation", "caller", "held_scope"]


@dataclass(frozen=True)
class McpAuth:
    """Bearer-token auth for MCP over HTTP: the agent's tokens, each with its scope."""

    tokens: TokenRegistry
    base_url: str

    def verifier(self) -> RegistryTokenVerifier:
        """The verifier that accepts the agent's tokens (and nothing else)."""
        return RegistryTokenVerifier(self.tokens)

    def settings(self) -> AuthSettings:
        """The MCP server's auth settings: this agent is the resource server at ``/mcp``; every token has ``read``.

        The SDK needs an ``issuer_url``; the agent serves its own protected-resource metadata, which names none
        (:func:`~crucible_monitor.server.app.build_app`): there is no authorization server, tokens come from
        ``crucible-monitor token create``.
        """
        return AuthSettings(
            issuer_url=AnyHttpUrl(self.base_url),
            resource_server_url=AnyHttpUrl(f"{self.base_url}/mcp"),
            required_scopes=["read"],
        )


class RegistryTokenVerifier(TokenVerifier):
    """Accepts the registry's tokens; the access token's client is the token's name, its scopes the implied ones."""

    def __init__(self, tokens: TokenRegistry) -> None:
        self._tokens = tokens

    async def verify_token(self, token: str) -> AccessToken | None:
        """The access token when ``token`` is one of the agent's, else None."""
        principal = self._tokens.verify(token)
        if principal is None:
            return None
        return AccessToken(token=token, client_id=principal.name, scopes=principal.implied())


def held_scope() -> Scope | None:
    """The scope of the caller's token over HTTP; None where there is no token (stdio, in-memory: the local user)."""
    token = get_access_token()
    if token is None:
        return None
    return next((s for s in reversed(SCOPES) if s in token.scopes), "read")


def caller(ctx: Context[Any, Any], transport: str) -> tuple[str, str | None]:
    """Who is asking, for the audit record: the token's name over HTTP (``mcp-<transport>`` without one), and what
    the MCP client says it is (its name and version)."""
    token = get_access_token()
    who = token.client_id if token is not None and token.client_id else f"mcp-{transport}"
    params = ctx.session.client_params
    claimed = f"mcp-{transport}"
    if params is not None:
        claimed += f" ({params.client_info.name} {params.client_info.version})"
    return who, claimed


class Confirm(BaseModel):
    """The user's answer to a restart question."""

    ok: bool = Field(description="Restart it now?")


def ask_restart_confirmation(
    service: str, reason: str, confirm: bool, dry_run: bool, ctx: Context[Any, Any]
) -> Confirm | Elicit[Confirm]:
    """Ask the user through elicitation; where the client cannot be asked, the explicit ``confirm`` decides."""
    if dry_run:
        return Confirm(ok=True)  # nothing happens: no question
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.elicitation is None:
        return Confirm(ok=confirm)
    return Elicit(f"Restart {service} on this server? Reason given: {reason}", Confirm)
