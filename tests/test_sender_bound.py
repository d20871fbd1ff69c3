"""A thread joins a case only when its sender is the case's customer (issue 12, item 1).

Everything goes through the real CLI against Dovecot and aiosmtpd, and the
review page through the Flask app: a stranger naming a customer's
Message-ID, or one of our replies' Message-IDs, gets a case of their own,
linked to the other for the agent, and sees nothing of the other customer.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from conftest import Workspace, email_bytes, smtp_config
from servers import Dovecot, SmtpServer

from triage import agents, config
from triage.drafting.outgoing import new_message_id, parse_our_id
from triage.store import Store
from triage.web import create_app

ANN_PHONE = "07700 900123"
ANN = email_bytes(
    subject="Order #48213: blender arrived broken",
    body=f"My blender (order #48213) arrived broken. Please call me on {ANN_PHONE}. I want it fixed.",
    sender="Ann Lee <ann@customer.test>",
    message_id="<ann-1@customer.test>",
)
AGENT_PW = "correct horse battery"


def stranger(refs: str, sender: str = "Mallory <mallory@evil.test>", mid: str = "<m-1@evil.test>") -> bytes:
    return email_bytes(
        subject="Re: Order #48213: blender arrived broken",
        body="THIS IS OUTRAGEOUS!!! You people are useless, I am calling my lawyer TODAY!",
        sender=sender,
        message_id=mid,
        headers={"In-Reply-To": refs.split()[-1], "References": refs},
    )


def configure(dovecot: Dovecot, smtp: SmtpServer, workspace: Workspace, extra: str = "") -> None:
    workspace.imap_config(
        dovecot,
        extra=smtp_config(smtp) + extra,
    )


def cases(workspace: Workspace) -> dict[str, tuple[int, str, float]]:
    """Each sender's (case, case level, case score)."""
    with sqlite3.connect(workspace.db) as db:
        rows = db.execute(
            "SELECT m.sender, c.id, c.level, c.score FROM messages m JOIN cases c ON c.id = m.case_id ORDER BY m.id"
        ).fetchall()
    return {sender: (case, level, score) for sender, case, level, score in rows}


def assert_stranger_kept_apart(
    workspace: Workspace, ann_case: tuple[int, str, float], ann_draft: int, linked: bool = True
) -> None:
    after = cases(workspace)
    assert after["ann@customer.test"] == ann_case  # the level and score of Ann's case did not move
    assert after["mallory@evil.test"][0] != ann_case[0]
    rows = {r["customer"]: r for r in workspace.run_json("queue")}
    assert rows["ann@customer.test"]["id"] == ann_draft and rows["ann@customer.test"]["status"] == "pending"
    mallory = rows["mallory@evil.test"]
    shown = workspace.run("show", str(mallory["id"]), "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["linked_case"] == (ann_case[0] if linked else None)
    text = workspace.run("show", str(mallory["id"]))
    assert (f"linked to case {ann_case[0]}" in text.stdout) == linked
    for out in (shown.stdout, text.stdout):
        assert "ann@customer.test" not in out and ANN_PHONE not in out and "Ann Lee" not in out
        assert "blender (order #48213) arrived broken" not in out


def test_a_stranger_naming_a_customers_message_id_gets_a_case_of_their_own(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    dovecot.append("INBOX", ANN)
    configure(dovecot, smtp_server, workspace)
    assert workspace.run_json("poll")["drafts"] == 1
    ann_case = cases(workspace)["ann@customer.test"]
    [ann_row] = workspace.run_json("queue")

    dovecot.append("INBOX", stranger("<ann-1@customer.test>"))
    assert workspace.run_json("poll")["drafts"] == 1
    assert_stranger_kept_apart(workspace, ann_case, ann_row["id"])

    # the review page: the stranger's case shows the link, nothing of Ann
    with Store(workspace.db) as store:
        agents.create(store, "dana", AGENT_PW)
    app = create_app(config.load(workspace.config), secret="s" * 48, port=8025)
    client = app.test_client()
    base = "http://127.0.0.1:8025"
    page = client.get("/login", base_url=base).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert client.post("/login", data={"name": "dana", "password": AGENT_PW, "csrf_token": token},
                       base_url=base).status_code == 302
    mallory_draft = next(r["id"] for r in workspace.run_json("queue") if r["customer"] == "mallory@evil.test")
    html = client.get(f"/drafts/{mallory_draft}", base_url=base).text
    assert f"linked to case {ann_case[0]}" in html
    assert "ann@customer.test" not in html and ANN_PHONE not in html and "Ann Lee" not in html

    # Ann asks to be forgotten: her case goes, with the address tied to her; Mallory's case stays, unlinked
    assert workspace.run("customer", "link", "ann.lee@work.test", "ann@customer.test").returncode == 0
    forgot = workspace.run("forget", "ann@customer.test", "--yes")
    assert forgot.returncode == 0, forgot.stderr
    with sqlite3.connect(workspace.db) as db:
        assert db.execute("SELECT COUNT(*) FROM customer_addresses").fetchone()[0] == 0
        assert db.execute("SELECT linked_case FROM cases").fetchall() == [(None,)]


def test_a_stranger_replying_to_our_reply_does_not_join_but_the_customer_does(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    dovecot.append("INBOX", ANN)
    configure(dovecot, smtp_server, workspace)
    workspace.run_json("poll")
    [row] = workspace.run_json("queue")
    assert workspace.run("approve", str(row["id"]), "--agent", "dana").returncode == 0
    [sent] = smtp_server.messages
    ours = sent.message["Message-ID"]
    ann_case = cases(workspace)["ann@customer.test"]

    # A second complaint from Ann, so her case has a pending draft again
    dovecot.append("INBOX", email_bytes(
        subject="Re: Order #48213: blender arrived broken", body="It is still broken, I want it fixed.",
        sender="Ann Lee <ann@customer.test>", message_id="<ann-2@customer.test>",
        headers={"In-Reply-To": ours, "References": f"<ann-1@customer.test> {ours}"},
    ))
    workspace.run_json("poll")
    after_ann = cases(workspace)["ann@customer.test"]
    assert after_ann[0] == ann_case[0]  # the customer's genuine reply threads
    [ann_row] = workspace.run_json("queue")

    dovecot.append("INBOX", stranger(ours))
    workspace.run_json("poll")
    assert_stranger_kept_apart(workspace, after_ann, ann_row["id"])


def test_a_guessed_message_id_of_the_old_format_does_not_join(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    dovecot.append("INBOX", ANN)
    configure(dovecot, smtp_server, workspace)
    workspace.run_json("poll")
    ann_case = cases(workspace)["ann@customer.test"]
    [row] = workspace.run_json("queue")
    dovecot.append("INBOX", stranger(f"<triage.c{ann_case[0]}.m1@example.com>"))
    workspace.run_json("poll")
    assert_stranger_kept_apart(workspace, ann_case, row["id"], linked=False)  # it names nothing we hold
    # and Ann's own address with a guessed id is not the way into her case either
    dovecot.append("INBOX", stranger(f"<triage.c{ann_case[0]}.m1@example.com>", sender="ann@customer.test",
                                     mid="<ann-guess@customer.test>"))
    workspace.run_json("poll")
    with sqlite3.connect(workspace.db) as db:
        guessed = db.execute("SELECT case_id FROM messages WHERE message_id = '<ann-guess@customer.test>'").fetchone()
        joined = db.execute("SELECT case_id, detail FROM events WHERE kind = 'case-joined'").fetchall()
    # it is Ann's "Re:" of her own subject, so it joins her case by what it says (a case-joined
    # event, which threading never writes), not by the guessed id
    assert guessed[0] == ann_case[0] and [(c, json.loads(d)["reason"]) for c, d in joined] == [(ann_case[0], "subject")]


def test_our_message_ids_carry_an_unguessable_random_part() -> None:
    ids = {new_message_id(7, "example.com", "m3") for _ in range(200)}
    assert len(ids) == 200
    for mid in ids:
        ours = parse_our_id(mid)
        assert ours is not None and (ours.case_id, ours.domain) == (7, "example.com")
        random_part = mid.split("@")[0].rsplit(".", 1)[-1]
        assert len(random_part) >= 22 and re.fullmatch(r"[A-Za-z0-9_-]+", random_part)


def test_an_address_the_owner_linked_to_the_customer_joins(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    dovecot.append("INBOX", ANN)
    configure(dovecot, smtp_server, workspace)
    workspace.run_json("poll")
    ann_case = cases(workspace)["ann@customer.test"]
    unknown = workspace.run("customer", "link", "ann.lee@work.test", "nobody@customer.test")
    assert unknown.returncode == 2 and "no customer nobody@customer.test" in unknown.stderr
    linked = workspace.run("customer", "link", "Ann.Lee@work.test", "ann@customer.test")
    assert linked.returncode == 0, linked.stderr
    dovecot.append("INBOX", stranger("<ann-1@customer.test>", sender="Ann Lee <ann.lee@work.test>",
                                     mid="<ann-work@work.test>"))
    workspace.run_json("poll")
    assert cases(workspace)["ann.lee@work.test"][0] == ann_case[0]
    listed = workspace.run("customer", "show", "ann@customer.test")
    assert "ann.lee@work.test" in listed.stdout
    assert workspace.run("customer", "unlink", "ann.lee@work.test").returncode == 0
    dovecot.append("INBOX", stranger("<ann-1@customer.test>", sender="Ann Lee <ann.lee@work.test>",
                                     mid="<ann-work-2@work.test>"))
    workspace.run_json("poll")
    with sqlite3.connect(workspace.db) as db:
        [case_id] = db.execute("SELECT case_id FROM messages WHERE message_id = '<ann-work-2@work.test>'").fetchone()
    assert case_id != ann_case[0]


def test_a_colleague_at_a_business_customer_joins_only_when_the_owner_turns_it_on(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace, tmp_path: Path
) -> None:
    first = email_bytes(subject="Invoice 991 is wrong", body="Our invoice 991 is wrong, we were charged twice.",
                        sender="Alice <alice@bigcorp.test>", message_id="<alice-1@bigcorp.test>")
    dovecot.append("INBOX", first)
    dovecot.append("INBOX", email_bytes(subject="Wrong charge", body="I was charged twice for my order.",
                                        sender="Gail <gail@gmail.test>", message_id="<gail-1@gmail.test>"))
    configure(dovecot, smtp_server, workspace)
    workspace.run_json("poll")
    alice_case = cases(workspace)["alice@bigcorp.test"][0]
    gail_case = cases(workspace)["gail@gmail.test"][0]

    dovecot.append("INBOX", stranger("<alice-1@bigcorp.test>", sender="Bob <bob@bigcorp.test>", mid="<bob-1@bigcorp.test>"))
    workspace.run_json("poll")
    assert cases(workspace)["bob@bigcorp.test"][0] != alice_case  # off by default

    configure(dovecot, smtp_server, workspace, extra="[cases]\njoin_same_domain = true\n")
    dovecot.append("INBOX", stranger("<alice-1@bigcorp.test>", sender="Carol <carol@eu.bigcorp.test>",
                                     mid="<carol-1@bigcorp.test>"))
    # gmail.test is not a business customer in rules/customers.csv: the same domain is not enough
    dovecot.append("INBOX", stranger("<gail-1@gmail.test>", sender="Hal <hal@gmail.test>", mid="<hal-1@gmail.test>"))
    workspace.run_json("poll")
    after = cases(workspace)
    assert after["carol@eu.bigcorp.test"][0] == alice_case
    assert after["hal@gmail.test"][0] != gail_case
