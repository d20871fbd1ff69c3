"""Who acts and who signs: --agent names a known agent (or a default), replies carry the approver's name."""

from __future__ import annotations

import json

from conftest import Workspace, email_bytes, smtp_config
from servers import Dovecot, SmtpServer
from test_send import draft_id, setup

from triage.store import Store

PW = {"PW": "correct horse battery"}


def _body(mail: object) -> str:
    return mail.message.get_content().replace("\r\n", "\n")  # type: ignore[attr-defined, no-any-return]


def test_an_unknown_agent_is_refused_with_how_to_add_one(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    for command in (["approve", str(did)], ["reject", str(did), "--reason", "x"], ["redraft", str(did)]):
        done = workspace.run(*command, "--agent", "nobody")
        assert done.returncode == 1, (command, done.stderr)
        [line] = done.stderr.splitlines()
        assert "no agent named 'nobody' (--agent)" in line and "triage agent add nobody" in line
    assert smtp_server.messages == []
    [row] = workspace.run_json("queue")
    assert row["id"] == did and row["status"] == "pending"
    with Store(workspace.db) as store:
        assert not [e for e in store.events(row["case"]) if e["actor"] == "nobody"]


def test_the_default_agent_comes_from_triage_agent_then_the_login_mapping(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace, extra='[agents]\nopsuser = "sam"\n')
    did = draft_id(workspace)
    workspace.add_agents()
    unmapped = workspace.run("approve", str(did), env={"TRIAGE_AGENT": "", "LOGNAME": "stranger"})
    assert unmapped.returncode == 1 and "no agent named 'stranger' (your login name)" in unmapped.stderr
    named = workspace.run("approve", str(did), env={"TRIAGE_AGENT": "ghost"})
    assert named.returncode == 1 and "no agent named 'ghost' ($TRIAGE_AGENT)" in named.stderr
    assert smtp_server.messages == []
    mapped = workspace.run("approve", str(did), env={"TRIAGE_AGENT": "", "LOGNAME": "opsuser"})
    assert mapped.returncode == 0, mapped.stderr
    with Store(workspace.db) as store:
        assert store.draft(did).approved_by == "sam"  # type: ignore[union-attr]


def test_a_bad_agents_table_is_a_config_error(dovecot: Dovecot, workspace: Workspace) -> None:
    workspace.imap_config(dovecot, extra='[agents]\nopsuser = "not a name"\n')
    done = workspace.run("queue")
    assert done.returncode == 2 and "agents.opsuser" in done.stderr and "agent name" in done.stderr


def test_the_approving_agent_signs_the_reply_and_the_stored_text_is_the_sent_text(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    before = workspace.run_json("show", str(did))["body"]
    assert before.endswith("Best wishes,\nSam\nExample Shop\n")  # [support] agent until someone approves
    bad = workspace.run("agent", "add", "maya", "--email", "not-an-address", "--password-env", "PW", env=PW)
    assert bad.returncode == 2 and "not an email address: 'not-an-address'" in bad.stderr
    added = workspace.run("agent", "add", "maya", "--display-name", "Maya Okafor", "--email", "maya@example.com",
                          "--password-env", "PW", env=PW)
    assert added.returncode == 0, added.stderr
    listed = {r["name"]: r for r in workspace.run_json("agent", "list")}
    assert listed["maya"]["display_name"] == "Maya Okafor" and listed["maya"]["email"] == "maya@example.com"
    done = workspace.run("approve", str(did), "--agent", "maya")
    assert done.returncode == 0, done.stderr
    [mail] = smtp_server.messages
    assert _body(mail).endswith("Best wishes,\nMaya Okafor\nExample Shop\n") and "\nSam\n" not in _body(mail)
    after = workspace.run_json("show", str(did))["body"]
    assert after == _body(mail)  # what is stored is what went out
    assert after == before.replace("\nSam\n", "\nMaya Okafor\n")  # and it differs only by the sign-off
    with Store(workspace.db) as store:
        [approved] = [e for e in store.events(store.draft(did).case_id)  # type: ignore[union-attr]
                      if e["kind"] == "draft-approved"]
    assert json.loads(approved["detail"])["signed_as"] == "Maya Okafor"


def test_an_agent_without_a_display_name_keeps_the_configured_sign_off(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    assert workspace.run("approve", str(did), "--agent", "dana").returncode == 0
    [mail] = smtp_server.messages
    assert _body(mail).endswith("Best wishes,\nSam\nExample Shop\n")


def test_a_redraft_is_written_with_the_redrafting_agents_name_and_agent_set_changes_it(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    setup(dovecot, smtp_server, workspace)
    did = draft_id(workspace)
    workspace.add_agents()
    missing = workspace.run("agent", "set", "ghost", "--display-name", "G")
    assert missing.returncode == 2 and "no agent named 'ghost'" in missing.stderr
    changed = workspace.run("agent", "set", "dana", "--display-name", "Dana Smith")
    assert changed.returncode == 0, changed.stderr
    done = workspace.run("redraft", str(did), "--scratch", "--agent", "dana")
    assert done.returncode == 0, done.stderr
    [row] = workspace.run_json("queue")
    body = workspace.run_json("show", str(row["id"]))["body"]
    assert body.endswith("Best wishes,\nDana Smith\nExample Shop\n")
    done = workspace.run("redraft", str(row["id"]), "--template", "meek", "--agent", "dana")
    [row] = workspace.run_json("queue")
    body = workspace.run_json("show", str(row["id"]))["body"]
    assert "\nDana Smith\nExample Shop" in body and "\nSam\n" not in body


# -- reply-all: the original's other recipients stay on the reply as Cc -----------------------

BILLING = email_bytes(
    subject="Order #48213: blender arrived broken",
    body="My blender (order #48213) arrived broken. This is the second time. I want it fixed.",
    sender="Ann Lee <ann@customer.test>",
    message_id="<billing-1@customer.test>",
    headers={"Cc": "Head of Finance <CFO@customer.test>, help@example.com, Support <SUPPORT@example.com>, "
                   "Ops <ops@customer.test>",
             "Reply-To": "ann.lee@customer.test"},
)


def _billing(dovecot: Dovecot, smtp: SmtpServer, workspace: Workspace) -> int:
    dovecot.append("INBOX", BILLING)
    workspace.imap_config(dovecot, extra=smtp_config(smtp, timeout=None))
    text = workspace.config.read_text()
    workspace.write_config(text.replace('agent = "Sam"\n', 'agent = "Sam"\naliases = ["help@example.com"]\n'))
    done = workspace.run("poll", "--json")
    assert done.returncode == 0, done.stderr
    return draft_id(workspace)


def test_a_reply_keeps_the_originals_cc_without_our_own_addresses_and_sends_it(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    did = _billing(dovecot, smtp_server, workspace)
    shown = workspace.run_json("show", str(did))
    assert shown["to"] == "ann.lee@customer.test"  # Reply-To, else From
    # the To (support@, the mailbox's login), the alias and the support address in any case are ours
    assert shown["cc"] == ["cfo@customer.test", "ops@customer.test"]
    text = workspace.run("show", str(did)).stdout
    assert "Cc: cfo@customer.test, ops@customer.test\n" in text
    done = workspace.run("approve", str(did))
    assert done.returncode == 0, done.stderr
    [mail] = smtp_server.messages
    assert mail.message["Cc"] == "cfo@customer.test, ops@customer.test"
    assert sorted(mail.rcpt_tos) == ["ann.lee@customer.test", "cfo@customer.test", "ops@customer.test"]


def test_edit_cc_validates_and_replaces_the_cc(
    dovecot: Dovecot, smtp_server: SmtpServer, workspace: Workspace
) -> None:
    did = _billing(dovecot, smtp_server, workspace)
    bad = workspace.run("edit", str(did), "--cc", "cfo@customer.test, not an address")
    assert bad.returncode == 1, bad.stderr
    [line] = bad.stderr.splitlines()
    assert "not an email address: 'not an address'" in line
    assert workspace.run_json("show", str(did))["cc"] == ["cfo@customer.test",
                                                                                 "ops@customer.test"]
    done = workspace.run("edit", str(did), "--cc", "Finance@Customer.test; cfo@customer.test")
    assert done.returncode == 0 and "Cc finance@customer.test, cfo@customer.test." in done.stdout, done.stderr
    assert workspace.run_json("show", str(did))["cc"] == ["finance@customer.test",
                                                                                 "cfo@customer.test"]
    assert workspace.run("approve", str(did)).returncode == 0
    [mail] = smtp_server.messages
    assert sorted(mail.rcpt_tos) == ["ann.lee@customer.test", "cfo@customer.test", "finance@customer.test"]
    late = workspace.run("edit", str(did), "--cc", "")
    assert late.returncode == 1 and "only a pending draft's Cc" in late.stderr
