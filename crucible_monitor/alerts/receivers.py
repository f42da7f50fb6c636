"""Receivers: where notifications go (email, webhook, Slack, Resend, Alertmanager); :data:`Receiver` is their tagged
union (by ``type``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, SecretStr

from crucible_monitor.configtypes import PositiveDuration, StrictModel, WebUrl

__all__ = [
    "AlertmanagerReceiver",
    "EmailReceiver",
    "Receiver",
    "ResendReceiver",
    "SlackReceiver",
    "WebhookReceiver",
]

BaseUrl = Annotated[WebUrl, AfterValidator(lambda v: v.rstrip("/"))]  # a base that API paths are appended to


class _ReceiverBase(StrictModel):
    timeout: PositiveDuration = Field(timedelta(seconds=10), description="Per delivery attempt.")


class EmailReceiver(_ReceiverBase):
    """SMTP email with an HTML and a text part."""

    type: Literal["email"]
    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_addr: str = "crucible-monitor@localhost"
    to: list[str] = Field(min_length=1)
    ca_file: Path | None = Field(None, description="CA bundle to verify the server (default: the system's).")


class WebhookReceiver(_ReceiverBase):
    """JSON POST; with a secret, signed in ``X-Crucible-Signature`` (see notifiers)."""

    type: Literal["webhook"]
    url: WebUrl
    secret: SecretStr | None = None


class SlackReceiver(_ReceiverBase):
    """Slack incoming webhook (Block Kit message)."""

    type: Literal["slack"]
    webhook_url: SecretStr


class ResendReceiver(_ReceiverBase):
    """Email through the Resend API."""

    type: Literal["resend"]
    api_key: SecretStr
    from_addr: str
    to: list[str] = Field(min_length=1)
    base_url: BaseUrl = "https://api.resend.com"


class AlertmanagerReceiver(_ReceiverBase):
    """Forward alerts to an Alertmanager (v2 API) for fleets."""

    type: Literal["alertmanager"]
    url: BaseUrl = Field(description="Base URL, e.g. http://alertmanager:9093.")
    ttl: PositiveDuration = Field(
        timedelta(minutes=10),
        description="endsAt of firing alerts is now + ttl; the route's repeat_interval must be shorter.",
    )
    bearer_token: SecretStr | None = None
    job: str = Field("crucible-monitor", description="The job label of every alert sent (as Prometheus sets it).")
    instance: str | None = Field(
        None, description="The instance label; default the agent's host name (set host:port to match a scrape)."
    )
    silences_check: PositiveDuration | None = Field(
        timedelta(minutes=1), description="Read its silences this often (alerts silenced there show as handled)."
    )


Receiver = Annotated[
    EmailReceiver | WebhookReceiver | SlackReceiver | ResendReceiver | AlertmanagerReceiver,
    Field(discriminator="type"),
]
