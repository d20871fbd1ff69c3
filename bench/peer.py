"""The closest Python peer on the same Dovecot and corpus: django-helpdesk's ``get_email``.

django-helpdesk (a Django ticket tracker) turns mail into tickets with
``manage.py get_email``: it logs in over IMAP, fetches each message with
``RFC822``, parses it, stores a ticket (or a follow-up) and deletes the
message. It is installed from PyPI into its own virtual environment under
the cache directory (``$XDG_CACHE_HOME/triage-bench``, else
``~/.cache/triage-bench``), never into triage's. Each run gets a fresh
SQLite database (migrated before the clock starts) and a mailbox refilled
with the corpus, and is timed as one whole ``get_email`` process.

Usage: python bench/peer.py [--messages 2000] [--repeat 3] [--json]
(``bench/backlog.py --peer`` runs it alternating with the floor and the poll.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

VERSION = "2.6.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "triage-bench"
VENV = CACHE / f"django-helpdesk-{VERSION}"

SETTINGS = """\
SECRET_KEY = "bench"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.sites",
    "django.contrib.humanize", "rest_framework", "helpdesk",
]
SITE_ID = 1
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware",
              "django.contrib.auth.middleware.AuthenticationMiddleware",
              "django.contrib.messages.middleware.MessageMiddleware"]
SILENCED_SYSTEM_CHECKS = ["admin.W411"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": __import__("os").environ["PEER_DB"]}}
MEDIA_ROOT = __import__("os").environ["PEER_MEDIA"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
HELPDESK_TEAMS_MODE_ENABLED = False
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.contrib.auth.context_processors.auth",
                                                 "django.contrib.messages.context_processors.messages"]}}]
ROOT_URLCONF = "peer_urls"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
"""
URLS = 'from django.urls import include, path\nurlpatterns = [path("helpdesk/", include("helpdesk.urls"))]\n'

SETUP = """\
import django, os
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from helpdesk.models import Queue
Queue.objects.create(title="Support", slug="support", email_address="support@example.com",
    allow_email_submission=True, email_box_type="imap", email_box_host=os.environ["PEER_HOST"],
    email_box_port=int(os.environ["PEER_PORT"]), email_box_ssl=False, email_box_user=os.environ["PEER_USER"],
    email_box_pass=os.environ["PEER_PASSWORD"], email_box_imap_folder="INBOX", logging_type="none")
"""


def python() -> Path:
    return VENV / "bin" / "python"


def ensure() -> Path | None:
    """The peer's interpreter, installing django-helpdesk first if needed; None (with one line) if it cannot be."""
    if python().exists():
        done = subprocess.run([python(), "-c", "import helpdesk"], capture_output=True, check=False)
        if done.returncode == 0:
            return python()
    try:
        if VENV.exists():
            shutil.rmtree(VENV)
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True)
        subprocess.run([python(), "-m", "pip", "install", "-q", f"django-helpdesk=={VERSION}"],
                       check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        last = detail.decode(errors="replace").strip().splitlines()[-1:] if detail else [str(exc)]
        print(f"peer skipped: django-helpdesk {VERSION} could not be installed into {VENV}: {' '.join(last)}",
              file=sys.stderr)
        return None
    return python()


def run(peer_python: Path, server: Any, user: str, password: str) -> Any:
    """One timed ``manage.py get_email`` over ``user``'s INBOX; a backlog.Measured."""
    from backlog import measure

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "peer_settings.py").write_text(SETTINGS)
        (work / "peer_urls.py").write_text(URLS)
        (work / "media").mkdir()
        env = {
            **os.environ, "PYTHONPATH": str(work), "DJANGO_SETTINGS_MODULE": "peer_settings",
            "PEER_DB": str(work / "peer.db"), "PEER_MEDIA": str(work / "media"),
            "PEER_HOST": server.host, "PEER_PORT": str(server.port), "PEER_USER": user, "PEER_PASSWORD": password,
        }
        subprocess.run([peer_python, "-c", SETUP], env=env, check=True, cwd=work)
        with server.client(user) as c:
            c.select_folder("INBOX", readonly=True)
            before = len(c.search("ALL"))
        cmd = [str(peer_python), "-m", "django", "get_email", "--quiet"]
        measured = measure(cmd, env, count_from=lambda _out: 0)
        with server.client(user) as c:
            c.select_folder("INBOX", readonly=True)
            left = len(c.search("ALL"))
        measured.count = before - left  # what it took in (and deleted); anything left it refused
        return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from backlog import PASSWORD, PEER_USER, fill, summarise
    from corpus import messages
    from servers import Dovecot

    peer_python = ensure()
    if peer_python is None:
        return
    raws = messages(args.messages, args.seed)
    with Dovecot({PEER_USER: PASSWORD}) as server:
        runs = []
        for _ in range(args.repeat):
            fill(server, raws, PEER_USER)
            runs.append(run(peer_python, server, PEER_USER, PASSWORD))
    result = {"messages": args.messages, "peer": summarise(runs, None)}
    if args.json:
        print(json.dumps(result))
        return
    r = result["peer"]
    print(f"django-helpdesk {VERSION} get_email, {args.messages} messages, {args.repeat} runs: "
          f"{r['msgs_per_s']:.0f} msgs/s ({r['msgs_per_s_min']:.0f}-{r['msgs_per_s_max']:.0f}), "
          f"{r['cpu_ms_per_msg']:.2f} ms CPU per message, peak RSS {r['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
