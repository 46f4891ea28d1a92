"""Send one mail through the `smtp` settings of actions.json (secrets resolved only here, at send time)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from metadata.models import SmtpSettings
from secret_store.base import SecretStore, resolve_secrets

TIMEOUT_SECONDS = 30


def send_mail(settings: SmtpSettings, store: SecretStore, *, to: list[str], subject: str, body: str) -> None:
    """Deliver `subject`/`body` to `to`; raises (smtplib's errors, OSError) when the server refuses it."""
    resolved = resolve_secrets(settings.model_dump(), store)
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(body)
    host, port = resolved["host"], settings.port
    if settings.tls == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT_SECONDS,
                                                context=ssl.create_default_context())
    else:
        client = smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS)
    with client:
        if settings.tls == "starttls":
            client.starttls(context=ssl.create_default_context())
        if resolved.get("username"):
            client.login(resolved["username"], resolved.get("password") or "")
        client.send_message(message)
