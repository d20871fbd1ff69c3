"""Crash safety of sending: SIGKILL ``triage approve`` / ``send-pending`` around the SMTP transaction.

Each draft is approved by the real CLI and the process is killed either at a
random moment, or at a random moment right after the SMTP server has taken
the message (the server records it, then waits ~10 ms before its 250 reply,
as a real MTA that has queued the mail before answering). After every kill
the state is classified (where the kill landed) and ``send-pending`` runs as
cron would (sometimes killed too). Invariants: no draft ever reaches the SMTP
server twice; after a final ``send-pending`` every approved draft has reached
it exactly once, and Sent holds exactly one copy of each -- except a draft
the sender cannot decide about (killed between handing over the message and
learning the answer), which is held for an agent instead of being sent again.
"""

from __future__ import annotations

import asyncio
import email
import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import Any

import pytest
from conftest import Workspace, email_bytes, fault_numbers, smtp_config
from servers import Dovecot, SmtpServer, _Handler
from test_crash_poll import child_env, fault_seed

DRAFTS = 30
KILLS = 24


class _SignallingHandler(_Handler):
    """Records the message, tells the test, then waits ``reply_delay`` before answering 250."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        owner: SignallingSmtp = self.server  # type: ignore[assignment]
        owner.data_seen.set()
        if owner.reply_delay:
            await asyncio.sleep(owner.reply_delay)
        return reply


class SignallingSmtp(SmtpServer):
    def __init__(self) -> None:
        super().__init__()
        self.data_seen = threading.Event()
        self.reply_delay = 0.01
        self._handler = _SignallingHandler(self)

    def arrivals(self) -> Counter[str]:
        return Counter(str(m.message["Message-ID"]) for m in self.messages)


def sent_copies(dovecot: Dovecot) -> Counter[str]:
    return Counter(
        str(email.message_from_bytes(raw)["Message-ID"]) for _, raw, _ in dovecot.messages("Sent")
    )


def drafts(workspace: Workspace) -> dict[int, tuple[str, str, str]]:
    with sqlite3.connect(workspace.db, timeout=30) as db:
        rows = db.execute("SELECT id, outgoing_message_id, status, error FROM drafts ORDER BY id").fetchall()
    return {int(i): (mid, status, error) for i, mid, status, error in rows}


def where(status: str, arrived: int, filed: int) -> str:
    """Where a kill landed, from what it left behind."""
    if status == "pending":
        return "before approval"
    if status == "sent":
        return "after recording sent"
    if arrived == 0:
        return "before the SMTP server took it"
    if filed == 0:
        return "after SMTP acceptance, before the Sent append"  # the known window
    return "after the Sent append, before recording sent"


@pytest.mark.slow
def test_sender_killed_around_smtp_never_sends_twice(dovecot: Dovecot, workspace: Workspace) -> None:
    seed = fault_seed()
    rng = random.Random(seed)
    for i in range(DRAFTS):
        dovecot.append("INBOX", email_bytes(
            subject=f"Order #{5000 + i} arrived broken",
            body=f"My kettle (order #{5000 + i}) arrived broken. This is unacceptable, I want a refund.",
            sender=f"Customer {i} <send{i}@customer.test>", message_id=f"<send{i}@customer.test>"))
    with SignallingSmtp() as smtp:
        workspace.imap_config(
            dovecot, extra=smtp_config(smtp))
        assert workspace.run_json("poll")["drafts"] == DRAFTS
        ids = sorted(drafts(workspace))
        workspace.add_agents()  # the approvals below run as their own processes

        kills, landed, max_arrivals = 0, Counter[str](), 0
        order = ids[:]
        rng.shuffle(order)
        for n, did in enumerate(order):
            for attempt in range(3):  # a kill before approval leaves it pending: approve again
                command = ["approve", str(did), "--agent", "dana", "--override-tone", "fault test"]
                smtp.data_seen.clear()
                child = subprocess.Popen(
                    [sys.executable, "-m", "triage", "--config", str(workspace.config), *command],
                    env=child_env(), cwd=workspace.dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                if kills >= KILLS or attempt == 2:
                    pass  # enough kills (or the last attempt): approved normally
                elif rng.random() < 0.6:  # right around the SMTP transaction
                    smtp.data_seen.wait(10)
                    time.sleep(rng.uniform(0.0, 0.03))
                else:
                    time.sleep(rng.uniform(0.05, 0.8))
                killed = kills < KILLS and attempt < 2 and child.poll() is None
                if killed:
                    child.send_signal(signal.SIGKILL)
                    kills += 1
                _, err = child.communicate(timeout=60)
                assert killed or child.returncode == 0, (seed, err)
                mid, status, _ = drafts(workspace)[did]
                if killed:
                    landed[where(status, smtp.arrivals()[mid], sent_copies(dovecot)[mid])] += 1
                if status != "pending":
                    break
            # cron's send-pending after the crash; every third one is itself killed mid-way
            recover = subprocess.Popen(
                [sys.executable, "-m", "triage", "--config", str(workspace.config), "send-pending", "--json"],
                env=child_env(), cwd=workspace.dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            if kills < KILLS and n % 3 == 2:
                time.sleep(rng.uniform(0.05, 0.5))
                if recover.poll() is None:
                    recover.send_signal(signal.SIGKILL)
                    kills += 1
                    landed["send-pending killed"] += 1
            recover.communicate(timeout=60)
            max_arrivals = max(max_arrivals, *smtp.arrivals().values(), 0)
            assert max_arrivals <= 1, f"seed {seed}: a draft reached the SMTP server twice ({dict(landed)})"

        final = workspace.run("send-pending", "--json")
        state = drafts(workspace)
        arrived, filed = smtp.arrivals(), sent_copies(dovecot)
        assert all(status in ("sent", "approved") for _, status, _ in state.values()), (seed, state)
        held = {did for did, (_, status, error) in state.items() if status != "sent"}
        duplicates = sum(1 for c in arrived.values() if c > 1) + sum(1 for c in filed.values() if c > 1)
        losses = [did for did, (mid, status, _) in state.items() if did not in held and arrived[mid] != 1]
        out = json.loads(final.stdout)
        assert final.returncode == (3 if out["failed"] else 0), (seed, final.stderr)
        assert set(out["failed"]) | set(out["held"]) == {str(d) for d in held}
        for did in held:  # held, with the reason in the queue, and never sent again by the machine
            mid, status, error = state[did]
            assert status == "approved" and "may have been delivered" in error and arrived[mid] <= 1
        again = workspace.run("send-pending", "--json")  # held drafts wait for a person: not a failure
        assert again.returncode == 0 and set(json.loads(again.stdout)["held"]) == {str(d) for d in held}
        assert smtp.arrivals() == arrived

        # the agent checks each held draft: delivered ones are rejected, the others approved again
        held_arrived = [d for d in held if arrived[state[d][0]] == 1]
        for did in held:
            if did in held_arrived:
                done = workspace.run("reject", str(did), "--reason", "the customer has it")
            else:
                done = workspace.run("approve", str(did), "--agent", "dana")
            assert done.returncode == 0, (seed, done.stderr)
        arrived, filed = smtp.arrivals(), sent_copies(dovecot)
        fault_numbers("crash_send", seed=seed, crashes_injected=kills, drafts_approved=len(state),
                      duplicates=duplicates, losses=len(losses), held_for_an_agent=len(held),
                      held_that_had_arrived=len(held_arrived),
                      **{f"kill {k}": v for k, v in sorted(landed.items())})
        assert kills >= 20
        assert duplicates == 0, f"seed {seed}"
        assert not losses, f"seed {seed}: {losses}"
        assert all(arrived[mid] == 1 for mid, _, _ in state.values()), f"seed {seed}"
        for did, (mid, _, _) in state.items():  # filed once; a held one that got through was never confirmed
            assert filed[mid] == (0 if did in held_arrived else 1), (seed, did)
