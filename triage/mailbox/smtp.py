"""Sending over SMTP: verified TLS, credentials from the environment, one clear error.

``send`` returns when the server has accepted the message for every
recipient, and raises ``SendError`` otherwise: ``temporary`` (4xx, server
down, timeout) or permanent (5xx, a refused recipient, failed login).
"""

from __future__ import annotations

import smtplib
import socket
from email.message import EmailMessage

from triage.config import SmtpSettings
from triage.errors import ConfigError, TriageError
from triage.mailbox.imap import describe, tls_context


class SendError(TriageError):
    """The SMTP server did not accept the message."""

    exit_code = 3

    def __init__(self, message: str, temporary: bool):
        super().__init__(message)
        self.temporary = temporary


def send(settings: SmtpSettings, msg: EmailMessage) -> None:
    """Hand ``msg`` to the configured SMTP server; SendError if it is not accepted."""
    if not settings.host:
        raise ConfigError("smtp.host: required to send replies")
    where = f"{settings.host}:{settings.port}"
    ctx = tls_context(settings.ca_file)
    try:
        if settings.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=ctx)
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"cannot reach SMTP server {where}: {describe(exc)}", temporary=True) from None
    try:
        if settings.security == "starttls":
            try:
                client.starttls(context=ctx)
            except (OSError, smtplib.SMTPException) as exc:  # never fall back to plaintext
                raise SendError(f"STARTTLS failed on SMTP server {where}: {describe(exc)}", temporary=True) from None
        creds = settings.credentials
        if creds.username:
            try:
                client.login(creds.username, creds.secret())
            except smtplib.SMTPAuthenticationError as exc:
                raise SendError(f"SMTP login failed for {creds.username} at {where}: {exc.smtp_code}", temporary=False) from None
        refused = client.send_message(msg)
        if refused:
            raise SendError(f"SMTP server refused {', '.join(refused)}", temporary=False)
    except smtplib.SMTPRecipientsRefused as exc:
        detail = "; ".join(f"{rcpt}: {code} {text.decode(errors='replace')}" for rcpt, (code, text) in exc.recipients.items())
        raise SendError(f"SMTP server refused the recipient ({detail})", temporary=False) from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise SendError(f"SMTP server said {exc.smtp_code} {text}", temporary=400 <= exc.smtp_code < 500) from None
    except (OSError, socket.timeout, smtplib.SMTPException) as exc:
        raise SendError(f"SMTP to {where} failed: {describe(exc)}", temporary=True) from None
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
