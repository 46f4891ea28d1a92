"""`email`: a mail through the file's `smtp` settings, its subject and body rendered from the event."""

from __future__ import annotations

from actions.base import ActionContext
from actions.smtp import send_mail
from actions.templates import render


class EmailRunner:
    def run(self, context: ActionContext) -> str | None:
        if context.catalog.smtp is None:
            raise ValueError("actions.json declares no `smtp` settings")
        fields = context.fields()
        action = context.action
        send_mail(context.catalog.smtp, context.secrets, to=list(action.to), subject=render(action.subject, fields),
                  body=render(action.body, fields))
        return f"sent to {', '.join(action.to)}"
