"""Who is asking the MCP server and whether they agreed: the bearer token over HTTP, the name recorded in the audit
log, and the user's confirmation of a restart (elicitation, or the explicit ``confirm`` where the client cannot ask).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, Elicit
from pydantic import AnyHttpUrl, BaseModel, Field

__all__ = ["Confirm", "McpAuth", "StaticTokenVerifier", "actor", "ask_restart_confirmation"]

_SCOPE = "crucible"


@dataclass(frozen=True)
class McpAuth:
    """Bearer-token auth for MCP over HTTP: the agent's API token, checked by a TokenVerifier."""

    token: str
    base_url: str

    def verifier(self) -> StaticTokenVerifier:
        """The verifier that accepts this token (and nothing else)."""
        return StaticTokenVerifier(self.token)

    def settings(self) -> AuthSettings:
        """The MCP server's auth settings: this agent is the resource server at ``/mcp``, the token's scope required."""
        return AuthSettings(
            issuer_url=AnyHttpUrl(self.base_url),
            resource_server_url=AnyHttpUrl(f"{self.base_url}/mcp"),
            required_scopes=[_SCOPE],
        )


class StaticTokenVerifier(TokenVerifier):
    """Accepts exactly one token, compared in constant time."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def verify_token(self, token: str) -> AccessToken | None:
        """The access token when ``token`` is the configured one, else None."""
        if secrets.compare_digest(token.encode(), self._token.encode()):
            return AccessToken(token=token, client_id="api-token", scopes=[_SCOPE])
        return None


def actor(ctx: Context[Any, Any], transport: str) -> str:
    """Who is asking, for the audit record: the token's client (HTTP) or stdio, and the MCP client's name."""
    token = get_access_token()
    who = f"mcp-http:{token.client_id}" if token is not None else f"mcp-{transport}"
    params = ctx.session.client_params
    if params is not None:
        who += f" ({params.client_info.name} {params.client_info.version})"
    return who


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
