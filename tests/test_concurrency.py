"""Concurrency: overlapping polls, and the review page approving while a big poll runs."""

from __future__ import annotations

import json
import mailbox
import random
import re
import subprocess
import time
from pathlib import Path

import pytest
from conftest import Workspace, email_bytes, fault_numbers, smtp_config
from servers import Dovecot, SmtpServer
from test_crash_poll import child_env, fill, mixed_mail, poll_cmd, stored_count, wait_for_progress

from triage import agents, config
from triage.store import Store
from triage.web import create_app

BASE = "http://127.0.0.1:8025"


def test_an_overlapping_poll_exits_at_once_saying_so(dovecot: Dovecot, workspace: Workspace) -> None:
    fill(dovecot, mixed_mail(300, random.Random(3)))
    workspace.imap_config(dovecot)
    workspace.write_config(workspace.config.read_text().replace("batch_size = 50", "batch_size = 10"))
    first = subprocess.Popen(poll_cmd(workspace, "--json"), env=child_env(), cwd=workspace.dir,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_progress(workspace.db, 0, first)
    assert first.poll() is None, "the first poll finished before the second could overlap"
    started = time.monotonic()
    second = workspace.run("poll", "--json")
    took = time.monotonic() - started
    out, err = first.communicate(timeout=120)
    assert second.returncode == 0 and "another triage run holds" in second.stderr and "poll is skipped" in second.stderr
    assert second.stdout == "" and took < 5
    assert first.returncode == 0 and json.loads(out)["fetched"] == 300, err
    assert stored_count(workspace.db) == 300


@pytest.mark.slow
def test_review_page_approves_200_drafts_while_a_poll_of_1000_runs(tmp_path: Path, smtp_server: SmtpServer) -> None:
    box = mailbox.Maildir(str(tmp_path / "Maildir"), create=True)
    for i in range(200):
        box.add(email_bytes(message_id=f"<first{i}@customer.test>", sender=f"F{i} <f{i}@customer.test>",
                            body=f"My kettle (order #{i}) arrived broken. I want a refund."))
    (tmp_path / "triage.toml").write_text(
        f'[mailbox]\nsource = "maildir"\npath = "{tmp_path / "Maildir"}"\nbatch_size = 50\n[store]\npath = "triage.db"\n'
        + smtp_config(smtp_server)
        + '[poll]\nrate_limit = 100000\n')
    workspace = Workspace(tmp_path)
    assert workspace.run("poll").returncode == 0
    settings = config.load(workspace.config)
    with Store(settings.store_path) as store:
        agents.create(store, "dana", "correct horse battery")
        draft_ids = [r.id for r in store.queue()]
    assert len(draft_ids) == 200
    rng = random.Random(11)
    for raw in mixed_mail(1000, rng, start=1000):
        box.add(raw)
    box.close()

    app = create_app(settings, secret="s" * 48, port=8025)
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login", base_url=BASE).text).group(1)  # type: ignore[union-attr]
    client.post("/login", data={"name": "dana", "password": "correct horse battery", "csrf_token": token}, base_url=BASE)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/", base_url=BASE).text).group(1)  # type: ignore[union-attr]

    poll = subprocess.Popen(poll_cmd(workspace, "--json"), env=child_env(), cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_progress(workspace.db, 200, poll)
    errors, during = [], 0
    for did in draft_ids:
        response = client.post(f"/drafts/{did}/approve", data={"csrf_token": token, "override_tone": "load test"},
                               base_url=BASE)
        during += poll.poll() is None
        landed = response.headers.get("Location", "")
        if response.status_code != 302 or not re.fullmatch(rf"/|/drafts/\d+\?from={did}", landed):  # the next draft
            errors.append((did, response.status_code, response.text[:200]))
    out, err = poll.communicate(timeout=300)
    fault_numbers("concurrency", approvals=len(draft_ids), approvals_while_polling=during,
                  polled=json.loads(out)["fetched"] if out else None, errors=len(errors))
    assert not errors, errors[:3]
    assert poll.returncode == 0 and "locked" not in err, err
    assert json.loads(out)["fetched"] == 1000
    assert during >= 10, "the approvals did not overlap the poll"
    with Store(settings.store_path) as store:
        assert store.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 1200 - json.loads(out)["duplicates"]
        statuses = dict(store.db.execute(
            f"SELECT status, COUNT(*) FROM drafts WHERE id IN ({','.join(map(str, draft_ids))}) GROUP BY status").fetchall())
        sent_events = store.db.execute("SELECT COUNT(*) FROM events WHERE kind = 'sent'").fetchone()[0]
    assert statuses == {"sent": 200} and sent_events == 200
    ids = [str(m.message["Message-ID"]) for m in smtp_server.messages]
    assert len(ids) == 200 == len(set(ids))


def test_parallel_password_guesses_against_triage_serve_are_throttled() -> None:
    """Four threads guessing one agent's password at the real `triage serve` (bench/login.py's run).

    Each attempt is counted before its password is checked, in one transaction,
    so parallel guesses cannot all slip through the free tries together.
    """
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_login", Path(__file__).parent.parent / "bench" / "login.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.run(attempts=40, threads=4, seconds=60, names=1)
    print(f"\nlogin guessing, 4 threads at triage serve: {result}")
    assert result["attempts"] == 40 and result["other"] == 0
    # 3 free tries, then 1 s, 2 s, 4 s ... between accepted ones: a handful in the seconds the run takes.
    assert result["accepted"] <= 3 + max(1, int(result["seconds"]).bit_length())
    assert result["refused"] == 40 - result["accepted"]
