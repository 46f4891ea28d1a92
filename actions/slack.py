"""Post a message to a Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat, ...): a JSON body
`{"text": ...}`; the webhook's URL is the credential, a secret resolved only here."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from metadata.models import SlackChannel
from secret_store.base import SecretStore, resolve_secrets

TIMEOUT_SECONDS = 30


def post_webhook(channel: SlackChannel, store: SecretStore, *, text: str) -> None:
    """Raises with the HTTP status (never the URL) when the webhook refuses the message."""
    url = resolve_secrets(channel.webhook_url.model_dump(), store)
    request = urllib.request.Request(url, data=json.dumps({"text": text}).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - declared URL
            response.read()
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"the Slack-compatible webhook answered HTTP {err.code}") from None
    except urllib.error.URLError as err:
        raise RuntimeError(f"the Slack-compatible webhook could not be reached: {err.reason}") from None
