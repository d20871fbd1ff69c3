"""Starter files for owners: ``triage init`` and the demo configuration."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from triage.config import shipped_dir

STARTER = """\
# triage configuration. Secrets never go in this file: use password_env
# (the name of an environment variable) or password_cmd (a command that prints it).

[mailbox]
source = "imap"              # imap | maildir | mbox
host = "imap.example.com"
port = 993
security = "tls"             # tls | starttls | none (plaintext only to stated hosts)
username = "support@example.com"
password_env = "TRIAGE_IMAP_PASSWORD"
# password_cmd = "pass show support-imap"
# token_cmd = "oama access support@example.com"   # OAuth2 (Gmail, Microsoft 365): see the README
# ca_file = "/etc/ssl/my-ca.pem"      # trust a self-signed server
folders = ["INBOX"]
# since = "2026-11-01"                # first run on a big mailbox: only mail since this date

[smtp]
host = "smtp.example.com"
port = 465
security = "tls"
username = "support@example.com"
password_env = "TRIAGE_SMTP_PASSWORD"
# sent_folder = "Sent"                # else found by the \\\\Sent special-use flag
# append_sent = false                 # Gmail files sent mail itself

[support]
address = "support@example.com"
name = "Example Shop"
agent = "Sam"

[store]
path = "triage.db"

[paths]
rules = "rules"
templates = "templates"

[poll]
rate_limit = 10            # more mail than this from one sender ...
rate_window_minutes = 60   # ... within this window is recorded but gets no new draft

[reminders]
to = ["agent@example.com"]
owner = "owner@example.com"
"""

DEMO = """\
# Written by `triage demo`: the bundled demo inbox, a store in this folder.
[mailbox]
source = "maildir"
path = "{inbox}"

[support]
address = "support@example-shop.test"
name = "Kettle & Crumb"
agent = "Sam"

[store]
path = "triage.db"
"""


def init_dir(directory: Path) -> Iterator[str]:
    """Write triage.toml, rules/ and templates/ into ``directory``; never overwrite a file."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "triage.toml"
    if config.exists():
        yield f"kept {config}"
    else:
        config.write_text(STARTER, encoding="utf-8")
        yield f"wrote {config}"
    for name in ("rules", "templates"):
        source, target = shipped_dir(name), directory / name
        if not target.exists():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            yield f"wrote {target}/"
            continue
        # an existing folder keeps every file the owner has; a shipped file it lacks is written back
        for path in sorted(source.rglob("*")):
            dest = target / path.relative_to(source)
            if path.is_file() and "__pycache__" not in path.parts and not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)
                yield f"wrote {dest} (missing)"
        yield f"kept {target}/"


def write_demo_config(directory: Path) -> Path:
    """The demo's triage.toml in ``directory`` (rewritten each time; the store is kept)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "triage.toml"
    inbox = shipped_dir("examples") / "inbox"
    path.write_text(DEMO.format(inbox=str(inbox.resolve())), encoding="utf-8")
    return path
