"""Sending over SMTP: verified TLS, credentials from the environment, one clear error.

``send`` returns when the server has accepted the message for every
recipient, and raises ``SendError`` otherwise: ``temporary`` (4xx, server
down, timeout) or permanent (5xx, a refused recipient, failed login).
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from triage.config import Credentials, SmtpSettings
from triage.errors import ConfigError, TriageError
from triage.mailbox.imap import describe, tls_context
from triage.mailbox.oauth import TokenError, fetch_token, oauthbearer, redact, xoauth2


class SendError(TriageError):
    """The SMTP server did not accept the message."""

    exit_code = 3

    def __init__(self, message: str, temporary: bool, uncertain: bool = False):
        super().__init__(message)
        self.temporary = temporary
        # the connection failed after DATA began: the server may have taken the message
        self.uncertain = uncertain


class _DataHook:
    """Calls ``before_data`` once MAIL and RCPT are accepted, just before the DATA command."""

    before_data: Callable[[], None] | None = None

    def data(self, msg: Any) -> tuple[int, bytes]:
        if self.before_data is not None:
            self.before_data()
        return super().data(msg)  # type: ignore[misc, no-any-return]


class _SMTP(_DataHook, smtplib.SMTP):
    pass


class _SMTP_SSL(_DataHook, smtplib.SMTP_SSL):
    pass


def _started(hook: Callable[[], None] | None, started: list[bool]) -> Callable[[], None]:
    def before_data() -> None:
        if hook is not None:
            hook()
        started.append(True)

    return before_data


def oauth2_mechanism(client: smtplib.SMTP) -> str:
    """OAUTHBEARER where the server offers it, else XOAUTH2; "" for neither (after EHLO)."""
    offered = client.esmtp_features.get("auth", "").upper().split()
    for mechanism in ("OAUTHBEARER", "XOAUTH2"):
        if mechanism in offered:
            return mechanism
    return ""


def oauth2_login(client: smtplib.SMTP, creds: Credentials, where: str) -> str:
    """AUTH with a fresh token from token_cmd; SendError (one line, never the token) otherwise."""
    client.ehlo_or_helo_if_needed()
    mechanism = oauth2_mechanism(client)
    if not mechanism:
        raise SendError(
            f"SMTP server {where} offers no OAuth2 login (neither AUTH OAUTHBEARER nor AUTH XOAUTH2): "
            "token_cmd cannot be used there",
            temporary=False,
        )
    try:
        token = fetch_token(creds)  # once per connection
    except TokenError as exc:
        raise SendError(str(exc), temporary=True) from None
    response = (oauthbearer if mechanism == "OAUTHBEARER" else xoauth2)(creds.username, token)

    def answer(challenge: bytes | None = None) -> str:
        # the first call gives the initial response; a 334 after it is the server's
        # JSON error, which the client acknowledges with an empty line (RFC 7628 3.2.3)
        return response if challenge is None else ""

    try:
        client.auth(mechanism, answer, initial_response_ok=True)
    except smtplib.SMTPAuthenticationError as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        detail = redact(" ".join(text.split()), token)
        raise SendError(
            f"SMTP server refused the OAuth2 token for {creds.username} at {where} "
            f"({mechanism}: {exc.smtp_code} {detail}): expired, revoked, or issued for another account? "
            "Check token_cmd",
            temporary=False,
        ) from None
    return mechanism


def check_login(settings: SmtpSettings) -> str:
    """Connect, secure and log in as configured, then QUIT without sending; how it logged in.

    Returns the mechanism (``OAUTHBEARER``, ``XOAUTH2``, ``password``, or ``none``
    without a username); SendError (one line) when the server cannot be reached or
    refuses the login.
    """
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
            except (OSError, smtplib.SMTPException) as exc:
                raise SendError(f"STARTTLS failed on SMTP server {where}: {describe(exc)}", temporary=True) from None
        creds = settings.credentials
        if creds.oauth2:
            return oauth2_login(client, creds, where)
        if not creds.username:
            client.ehlo_or_helo_if_needed()
            return "none"
        try:
            client.login(creds.username, creds.secret())
        except smtplib.SMTPAuthenticationError as exc:
            raise SendError(f"SMTP login failed for {creds.username} at {where}: {exc.smtp_code}", temporary=False) from None
        return "password"
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise SendError(f"SMTP server {where} said {exc.smtp_code} {text}", temporary=400 <= exc.smtp_code < 500) from None
    except (TimeoutError, OSError, smtplib.SMTPException) as exc:
        raise SendError(f"SMTP to {where} failed: {describe(exc)}", temporary=True) from None
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


def send(
    settings: SmtpSettings,
    msg: EmailMessage,
    before_data: Callable[[], None] | None = None,
    on_accepted: Callable[[], None] | None = None,
) -> None:
    """Hand ``msg`` to the configured SMTP server; SendError if it is not accepted.

    ``before_data`` runs once the envelope is accepted, right before DATA (from
    then on the server may take the message); ``on_accepted`` runs as soon as the
    server has accepted it, before QUIT. The sender uses them to record durably
    how far a send got, so a crash is never answered by sending twice.
    """
    if not settings.host:
        raise ConfigError("smtp.host: required to send replies")
    where = f"{settings.host}:{settings.port}"
    ctx = tls_context(settings.ca_file)
    started: list[bool] = []
    try:
        if settings.security == "tls":
            client: _SMTP | _SMTP_SSL = _SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=ctx)
        else:
            client = _SMTP(settings.host, settings.port, timeout=settings.timeout)
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"cannot reach SMTP server {where}: {describe(exc)}", temporary=True) from None
    try:
        if settings.security == "starttls":
            try:
                client.starttls(context=ctx)
            except (OSError, smtplib.SMTPException) as exc:  # never fall back to plaintext
                raise SendError(f"STARTTLS failed on SMTP server {where}: {describe(exc)}", temporary=True) from None
        creds = settings.credentials
        if creds.oauth2:
            oauth2_login(client, creds, where)
        elif creds.username:
            try:
                client.login(creds.username, creds.secret())
            except smtplib.SMTPAuthenticationError as exc:
                raise SendError(f"SMTP login failed for {creds.username} at {where}: {exc.smtp_code}", temporary=False) from None
        client.before_data = _started(before_data, started)
        refused = client.send_message(msg)
        if refused:
            raise SendError(f"SMTP server refused {', '.join(refused)}", temporary=False)
        if on_accepted is not None:
            on_accepted()
    except smtplib.SMTPRecipientsRefused as exc:
        detail = "; ".join(f"{rcpt}: {code} {text.decode(errors='replace')}" for rcpt, (code, text) in exc.recipients.items())
        raise SendError(f"SMTP server refused the recipient ({detail})", temporary=False) from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        raise SendError(f"SMTP server said {exc.smtp_code} {text}", temporary=400 <= exc.smtp_code < 500) from None
    except (TimeoutError, OSError, smtplib.SMTPException) as exc:
        raise SendError(f"SMTP to {where} failed: {describe(exc)}", temporary=True, uncertain=bool(started)) from None
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
