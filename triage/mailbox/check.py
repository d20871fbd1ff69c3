"""``triage check-mailbox``: log in to IMAP and SMTP as configured, before the first cron job.

It reads nothing from the store and records no run: it connects with the
configured credentials (a password, or a fresh token from ``token_cmd``),
lists the folders, checks that the polled folders and the Sent folder exist,
logs in to SMTP without sending, and says what it found. A local source
(Maildir, mbox) has no server: the path is checked instead. ``problems`` are
configuration to fix (exit 2), ``failures`` a server or a login that did not
work (exit 3).
"""

from __future__ import annotations

import mailbox
from dataclasses import dataclass, field
from typing import Any

from triage.config import Settings
from triage.errors import ConfigError, ServerError, TriageError


@dataclass
class CheckReport:
    source: str
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # bad configuration: exit 2
    failures: list[str] = field(default_factory=list)  # a server or login failed: exit 3
    mailbox: dict[str, Any] = field(default_factory=dict)
    smtp: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 3 if self.failures else 2 if self.problems else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.exit_code == 0,
            "exit": self.exit_code,
            "mailbox": self.mailbox,
            "smtp": self.smtp,
            "problems": self.problems,
            "failures": self.failures,
        }


def _how(method: str, creds: Any) -> str:
    if method in ("OAUTHBEARER", "XOAUTH2"):
        return f"{method}, a fresh token from token_cmd"
    if method in ("LOGIN", "password"):
        return f"password from {'password_env ' + creds.password_env if creds.password_env else 'password_cmd'}"
    return "no login (no username)"


def check(settings: Settings) -> CheckReport:
    """Check the mailbox and SMTP settings against the real servers."""
    report = CheckReport(settings.mailbox.source)
    if settings.mailbox.source == "imap":
        _check_imap(settings, report)
    elif settings.mailbox.source in ("maildir", "mbox"):
        _check_local(settings, report)
    else:
        report.problems.append("[mailbox]: missing; say where mail comes from (source = imap, maildir or mbox)")
    _check_smtp(settings, report)
    return report


def _check_local(settings: Settings, report: CheckReport) -> None:
    ms = settings.mailbox
    kind = "Maildir" if ms.source == "maildir" else "mbox file"
    report.mailbox = {"source": ms.source, "path": str(ms.path), "folders": {}}
    report.lines.append(f"mailbox: a local {kind} at {ms.path}: no server to log in to, the path is checked instead")
    if ms.path is None or not ms.path.exists():
        report.problems.append(f"mailbox.path: {ms.path} does not exist")
        return
    try:
        if ms.source == "mbox":
            if not ms.path.is_file():
                report.problems.append(f"mailbox.path: {ms.path} is not an mbox file")
                return
            counts = {"INBOX": len(mailbox.mbox(str(ms.path), create=False))}
        else:
            if not all((ms.path / sub).is_dir() for sub in ("cur", "new", "tmp")):
                report.problems.append(f"mailbox.path: {ms.path} is not a Maildir (no cur/, new/ and tmp/)")
                return
            box = mailbox.Maildir(str(ms.path), factory=None, create=False)
            counts = {}
            for folder in ms.folders:
                try:
                    sub = box if folder == "INBOX" else box.get_folder(folder)
                except mailbox.NoSuchMailboxError:
                    report.problems.append(f"mailbox.folders: no folder {folder!r} in {ms.path}")
                    continue
                counts[folder] = sum(1 for key in sub.keys() if not key.startswith("."))
    except (OSError, mailbox.Error) as exc:
        report.problems.append(f"mailbox.path: cannot read {ms.path}: {exc}")
        return
    report.mailbox["folders"] = counts
    for folder, count in counts.items():
        report.lines.append(f"  {folder}: {count} message(s)")


def _check_imap(settings: Settings, report: CheckReport) -> None:
    from imapclient.exceptions import IMAPClientError

    from triage.mailbox.imap import NETWORK_ERRORS, _quietly_close, describe, login

    ms = settings.mailbox
    where = f"{ms.host}:{ms.port}"
    report.mailbox = {"source": "imap", "host": ms.host, "port": ms.port, "username": ms.credentials.username}
    try:
        client, method = login(ms)
    except ServerError as exc:
        report.failures.append(str(exc))
        return
    except ConfigError as exc:
        report.problems.append(str(exc))
        return
    report.mailbox["login"] = method
    report.lines.append(f"IMAP {where} ({ms.security}): logged in as {ms.credentials.username} ({_how(method, ms.credentials)})")
    try:
        listed = client.list_folders()
    except (*NETWORK_ERRORS, IMAPClientError) as exc:
        report.failures.append(f"IMAP: cannot list folders: {describe(exc)}")
        _quietly_close(client)
        return
    try:
        client.logout()
    except Exception:  # the check is done; a dead connection at LOGOUT changes nothing
        _quietly_close(client)
    names = [str(name) for _flags, _sep, name in listed]
    flagged = [str(name) for flags, _sep, name in listed if b"\\Sent" in flags or "\\Sent" in flags]
    report.mailbox["folders"] = names
    report.lines.append(f"  folders: {', '.join(names)}")
    for folder in ms.folders:
        if folder not in names:
            report.problems.append(f"mailbox.folders: no folder {folder!r} on {where} (it has: {', '.join(names)})")
    report.mailbox["polled"] = [f for f in ms.folders if f in names]
    report.lines.append(f"  polled: {', '.join(ms.folders)}")
    sm = settings.smtp
    if sm.sent_folder:
        sent, how = sm.sent_folder, "smtp.sent_folder"
        if sent not in names:
            report.problems.append(f"smtp.sent_folder: no folder {sent!r} on {where}")
            sent = ""
    elif flagged:
        sent, how = flagged[0], "the \\Sent flag"
    elif "Sent" in names:
        sent, how = "Sent", "its name"
    else:
        sent, how = "", ""
        if sm.host and sm.append_sent:
            report.problems.append(
                f"no folder on {where} has the \\Sent flag: set smtp.sent_folder, or append_sent = false "
                "for a provider that files sent mail itself"
            )
    report.mailbox["sent_folder"] = sent or None
    if sent:
        report.lines.append(f"  Sent folder: {sent} (found by {how})" + ("" if sm.append_sent else "; append_sent = false"))
    else:
        report.lines.append("  Sent folder: none found")


def _check_smtp(settings: Settings, report: CheckReport) -> None:
    from triage.mailbox.smtp import check_login

    sm = settings.smtp
    if not sm.host:
        report.smtp = {"configured": False}
        report.lines.append("SMTP: not configured; approve, send-pending and remind need [smtp] to send")
        return
    where = f"{sm.host}:{sm.port}"
    report.smtp = {"configured": True, "host": sm.host, "port": sm.port, "username": sm.credentials.username}
    try:
        method = check_login(sm)
    except ConfigError as exc:
        report.problems.append(str(exc))
        return
    except TriageError as exc:  # SendError, TokenError: the server or the login
        report.failures.append(str(exc))
        return
    report.smtp["login"] = method
    user = sm.credentials.username
    report.lines.append(
        f"SMTP {where} ({sm.security}): " + (f"logged in as {user} ({_how(method, sm.credentials)})" if user else "connected (no login)")
        + "; nothing sent"
    )
