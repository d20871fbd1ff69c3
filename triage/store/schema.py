"""The schema: forward migrations, applied in order on open (``PRAGMA user_version``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite_utils


def _migration_1(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE customers (
            id INTEGER PRIMARY KEY,
            address TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL DEFAULT '',
            tier TEXT NOT NULL DEFAULT '',
            messages INTEGER NOT NULL DEFAULT 0,
            complaints INTEGER NOT NULL DEFAULT 0,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        );
        CREATE TABLE cases (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            subject TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'open',
            score REAL NOT NULL DEFAULT 0,
            level TEXT NOT NULL DEFAULT 'calm',
            archetypes TEXT NOT NULL DEFAULT '[]',
            root_cause TEXT,
            outcome TEXT,
            opened_at TEXT NOT NULL,
            first_response_at TEXT,
            resolved_at TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX cases_customer ON cases(customer_id);
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            mailbox TEXT NOT NULL,
            folder TEXT NOT NULL,
            source_key TEXT NOT NULL,
            uidvalidity INTEGER,
            uid INTEGER,
            message_id TEXT NOT NULL,
            in_reply_to TEXT NOT NULL DEFAULT '',
            refs TEXT NOT NULL DEFAULT '[]',
            sender TEXT NOT NULL DEFAULT '',
            sender_name TEXT NOT NULL DEFAULT '',
            reply_to TEXT NOT NULL DEFAULT '',
            recipients TEXT NOT NULL DEFAULT '[]',
            subject TEXT NOT NULL DEFAULT '',
            date TEXT NOT NULL,
            received_at TEXT NOT NULL,
            text TEXT NOT NULL DEFAULT '',
            full_text TEXT NOT NULL DEFAULT '',
            attachments TEXT NOT NULL DEFAULT '[]',
            defects TEXT NOT NULL DEFAULT '[]',
            raw_hash TEXT NOT NULL,
            raw BLOB,
            status TEXT NOT NULL,
            auto_reason TEXT NOT NULL DEFAULT '',
            error TEXT NOT NULL DEFAULT '',
            retries INTEGER NOT NULL DEFAULT 0,
            rate_limited INTEGER NOT NULL DEFAULT 0,
            customer_id INTEGER REFERENCES customers(id),
            case_id INTEGER REFERENCES cases(id)
        );
        CREATE UNIQUE INDEX messages_source ON messages(mailbox, folder, source_key);
        CREATE UNIQUE INDEX messages_mid ON messages(mailbox, message_id);
        CREATE INDEX messages_case ON messages(case_id);
        CREATE INDEX messages_sender ON messages(sender, received_at);
        CREATE INDEX messages_status ON messages(status);
        CREATE INDEX messages_msgid ON messages(message_id);
        CREATE TABLE detections (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL UNIQUE REFERENCES messages(id),
            score REAL NOT NULL,
            level TEXT NOT NULL,
            angry INTEGER NOT NULL,
            complaint INTEGER NOT NULL,
            archetypes TEXT NOT NULL DEFAULT '[]',
            evidence TEXT NOT NULL DEFAULT '[]',
            facts TEXT NOT NULL DEFAULT '{}',
            rules_version TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE drafts (
            id INTEGER PRIMARY KEY,
            case_id INTEGER NOT NULL REFERENCES cases(id),
            message_id INTEGER REFERENCES messages(id),
            kind TEXT NOT NULL DEFAULT 'reply',
            template TEXT NOT NULL,
            to_address TEXT NOT NULL,
            subject TEXT NOT NULL,
            body TEXT NOT NULL,
            lint TEXT NOT NULL DEFAULT '[]',
            status TEXT NOT NULL DEFAULT 'pending',
            outgoing_message_id TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            edited_by TEXT,
            approved_by TEXT,
            approved_at TEXT,
            sent_at TEXT,
            error TEXT NOT NULL DEFAULT '',
            override_reason TEXT
        );
        CREATE INDEX drafts_status ON drafts(status);
        CREATE INDEX drafts_case ON drafts(case_id);
        CREATE TABLE deadlines (
            id INTEGER PRIMARY KEY,
            case_id INTEGER NOT NULL REFERENCES cases(id),
            kind TEXT NOT NULL,
            due TEXT NOT NULL,
            what TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            done_at TEXT,
            reminded_at TEXT,
            escalated_at TEXT
        );
        CREATE INDEX deadlines_open ON deadlines(done_at, due);
        CREATE INDEX deadlines_case ON deadlines(case_id);
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            kind TEXT NOT NULL,
            case_id INTEGER,
            draft_id INTEGER,
            message_id INTEGER,
            detail TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX events_case ON events(case_id);
        CREATE TABLE checkpoints (
            mailbox TEXT NOT NULL,
            folder TEXT NOT NULL,
            uidvalidity INTEGER NOT NULL,
            last_uid INTEGER NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (mailbox, folder)
        );
        CREATE TABLE labels (
            id INTEGER PRIMARY KEY,
            message_id INTEGER NOT NULL REFERENCES messages(id),
            angry INTEGER,
            archetype TEXT,
            agent TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT NOT NULL,
            ok INTEGER NOT NULL,
            summary TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX runs_kind ON runs(kind, id);
        """
    )


def _migration_2(db: sqlite_utils.Database) -> None:
    """Agents who log in to the review page."""
    db.executescript(
        """
        CREATE TABLE agents (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        );
        """
    )


def _migration_3(db: sqlite_utils.Database) -> None:
    """Follow-ups (triage.followups.policy): paused clocks, why a deadline closed, reminder counts."""
    db.executescript(
        """
        ALTER TABLE deadlines ADD COLUMN paused_at TEXT;
        ALTER TABLE deadlines ADD COLUMN closed TEXT;
        ALTER TABLE deadlines ADD COLUMN reminders INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE deadlines ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
        CREATE INDEX deadlines_kind ON deadlines(kind, done_at, due);
        """
    )


def _migration_4(db: sqlite_utils.Database) -> None:
    """The detected topic (delivery, billing, a product...) for the owner's report."""
    db.executescript("ALTER TABLE detections ADD COLUMN topic TEXT NOT NULL DEFAULT '';")


def _migration_5(db: sqlite_utils.Database) -> None:
    """Server-side review-page sessions, failed-login counters, agents' last login (triage.store.sessions)."""
    db.executescript(
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            client TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            seen_at TEXT NOT NULL
        );
        CREATE INDEX sessions_agent ON sessions(agent);
        CREATE TABLE login_failures (
            scope TEXT NOT NULL,
            key TEXT NOT NULL,
            failures INTEGER NOT NULL DEFAULT 0,
            last_at TEXT NOT NULL,
            locked_at TEXT,
            PRIMARY KEY (scope, key)
        );
        ALTER TABLE agents ADD COLUMN last_login_at TEXT;
        ALTER TABLE agents ADD COLUMN password_changed_at TEXT;
        """
    )


def _migration_6(db: sqlite_utils.Database) -> None:
    """What the customer asks for (triage.detect.asks): a JSON list of asks with their evidence."""
    db.executescript("ALTER TABLE detections ADD COLUMN asks TEXT NOT NULL DEFAULT '[]';")


def _migration_7(db: sqlite_utils.Database) -> None:
    """Each message's size: a message over max_message_mb is kept by its headers and size only."""
    db.executescript("ALTER TABLE messages ADD COLUMN size INTEGER;")


def _migration_8(db: sqlite_utils.Database) -> None:
    """Sender-bound threading: addresses the owner tied to a customer, and the case a stranger's thread named."""
    db.executescript(
        """
        CREATE TABLE customer_addresses (
            address TEXT PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers(id),
            linked_by TEXT NOT NULL DEFAULT '',
            linked_at TEXT NOT NULL
        );
        CREATE INDEX customer_addresses_customer ON customer_addresses(customer_id);
        ALTER TABLE cases ADD COLUMN linked_case INTEGER REFERENCES cases(id);
        """
    )


def _migration_9(db: sqlite_utils.Database) -> None:
    """Content-aware dedup: a different message reusing a Message-ID is stored as its own ``clash`` copy."""
    db.executescript(
        """
        ALTER TABLE messages ADD COLUMN clash INTEGER NOT NULL DEFAULT 0;
        DROP INDEX messages_mid;
        CREATE UNIQUE INDEX messages_mid ON messages(mailbox, message_id, clash);
        """
    )


def _migration_10(db: sqlite_utils.Database) -> None:
    """Rate-limited mail no draft answers, found by case for the queue (triage.store.queue)."""
    db.executescript("CREATE INDEX messages_rate_limited ON messages(case_id, id) WHERE rate_limited = 1;")


def _migration_11(db: sqlite_utils.Database) -> None:
    """Full-text search (triage.store.search): an FTS5 index over each message's sender, subject and text.

    External content (the ``messages`` rows): the index holds no second copy
    of the text. Triggers keep it in step with every insert, update and
    delete, so a forgotten or purged message leaves the index with its row.
    """
    db.executescript(
        """
        CREATE VIRTUAL TABLE message_search USING fts5(
            sender, sender_name, subject, text,
            content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
            INSERT INTO message_search(rowid, sender, sender_name, subject, text)
            VALUES (new.id, new.sender, new.sender_name, new.subject, new.text);
        END;
        CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
            INSERT INTO message_search(message_search, rowid, sender, sender_name, subject, text)
            VALUES ('delete', old.id, old.sender, old.sender_name, old.subject, old.text);
        END;
        CREATE TRIGGER message_search_update AFTER UPDATE OF sender, sender_name, subject, text ON messages BEGIN
            INSERT INTO message_search(message_search, rowid, sender, sender_name, subject, text)
            VALUES ('delete', old.id, old.sender, old.sender_name, old.subject, old.text);
            INSERT INTO message_search(rowid, sender, sender_name, subject, text)
            VALUES (new.id, new.sender, new.sender_name, new.subject, new.text);
        END;
        INSERT INTO message_search(message_search) VALUES ('rebuild');
        """
    )


def _migration_12(db: sqlite_utils.Database) -> None:
    """Agents' display names and addresses (the sign-off), and the Cc a reply keeps (reply-all)."""
    db.executescript(
        """
        ALTER TABLE agents ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
        ALTER TABLE agents ADD COLUMN email TEXT NOT NULL DEFAULT '';
        ALTER TABLE drafts ADD COLUMN cc TEXT NOT NULL DEFAULT '[]';
        """
    )


MIGRATIONS = [
    _migration_1, _migration_2, _migration_3, _migration_4, _migration_5, _migration_6, _migration_7,
    _migration_8, _migration_9, _migration_10, _migration_11, _migration_12,
]
SCHEMA_VERSION = len(MIGRATIONS)
