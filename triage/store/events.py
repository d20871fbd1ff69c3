"""The ``events`` table (the audit log) and the ``runs`` of poll and remind."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from triage.store.base import LISTED_CHARS, StoreBase, _dumps, iso, utcnow


class EventTable(StoreBase):
    """The audit log and the record of runs."""

    def event(
        self,
        kind: str,
        actor: str,
        when: datetime,
        case_id: int | None = None,
        draft_id: int | None = None,
        message_id: int | None = None,
        **detail: Any,
    ) -> None:
        self._insert(
            "events",
            {
                "at": iso(when),
                "actor": actor,
                "kind": kind,
                "case_id": case_id,
                "draft_id": draft_id,
                "message_id": message_id,
                "detail": _dumps(detail),
            },
        )

    def events(self, case_id: int) -> list[dict[str, Any]]:
        return self._all("SELECT * FROM events WHERE case_id = ? ORDER BY id", (case_id,))

    def case_events(self, case_id: int, limit: int = 200) -> list[dict[str, Any]]:
        """The case's latest ``limit`` audit events, oldest first, ``detail`` decoded."""
        rows = self._all(
            "SELECT * FROM (SELECT * FROM events WHERE case_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
            (case_id, limit),
        )
        for row in rows:
            row["detail"] = json.loads(row["detail"])
        return rows

    def last_event_of(self, kind: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM events WHERE kind = ? ORDER BY id DESC LIMIT 1", (kind,))

    def owners(self, case_ids: list[int]) -> dict[int, str]:
        """Each case's latest ``case-assigned`` event's agent (cases never assigned are absent)."""
        owners: dict[int, str] = {}
        for i in range(0, len(case_ids), 500):
            chunk = case_ids[i : i + 500]
            rows = self.conn.execute(
                "SELECT case_id, detail FROM events WHERE kind = 'case-assigned' "
                f"AND case_id IN ({', '.join('?' for _ in chunk)}) ORDER BY id",
                chunk,
            ).fetchall()
            for case_id, detail in rows:
                owners[int(case_id)] = str(json.loads(detail).get("to", ""))
        return owners

    def record_run(self, kind: str, started: datetime, ok: bool, summary: dict[str, Any]) -> None:
        with self.write():
            self.insert_run(kind, iso(started) or "", iso(utcnow()) or "", ok, summary)

    def insert_run(self, kind: str, started_at: str, finished_at: str, ok: bool, summary: dict[str, Any]) -> None:
        """One run row, inside the caller's transaction (failures noted beside the database are folded in so)."""
        self._insert(
            "runs",
            {"kind": kind, "started_at": started_at, "finished_at": finished_at, "ok": int(ok), "summary": _dumps(summary)},
        )

    def runs_of(self, kind: str, limit: int = 100) -> list[dict[str, Any]]:
        """The latest runs of ``kind`` (poll, remind), newest first, summaries decoded."""
        return self._runs("kind = ? ORDER BY id DESC LIMIT ?", (kind, limit))

    def runs_after(self, kind: str, after_id: int) -> list[dict[str, Any]]:
        """The runs of ``kind`` recorded after the run with id ``after_id``, oldest first, summaries decoded."""
        return self._runs("kind = ? AND id > ? ORDER BY id", (kind, after_id))

    def last_ok_run(self, kind: str) -> dict[str, Any] | None:
        """The latest run of ``kind`` that succeeded, its summary decoded (None: none)."""
        return next(iter(self._runs("kind = ? AND ok = 1 ORDER BY id DESC LIMIT 1", (kind,))), None)

    def _runs(self, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        rows = self._all(f"SELECT * FROM runs WHERE {where}", params)
        for row in rows:
            row["summary"] = json.loads(row["summary"])
        return rows

    # -- auto-responder loops (triage.automatic.is_loop; flagged by events) ----------

    def loop_flags(self, case_ids: Iterable[int] | None = None) -> dict[int, dict[str, Any]]:
        """Cases flagged "possible auto-responder loop" and not cleared since: case id ->
        ``{"since", "held", "last"}`` (first flag, messages held without a draft, latest)."""
        where, params = "", []
        if case_ids is not None:
            ids = list(case_ids)
            if not ids:
                return {}
            where, params = f" AND case_id IN ({', '.join('?' for _ in ids)})", ids
        flags: dict[int, dict[str, Any]] = {}
        for case_id, kind, at in self.conn.execute(
            "SELECT case_id, kind, at FROM events WHERE kind IN ('loop-suspected', 'loop-cleared') "
            f"AND case_id IS NOT NULL{where} ORDER BY id",
            params,
        ):
            if kind == "loop-cleared":
                flags.pop(case_id, None)
                continue
            flag = flags.setdefault(case_id, {"since": at, "held": 0})
            flag["held"] += 1
            flag["last"] = at
        return flags

    def latest_by_case(self, kind: str) -> dict[int, str]:
        """case id -> when the latest event of ``kind`` on it happened."""
        return {case_id: at for case_id, at in self.conn.execute(
            "SELECT case_id, MAX(at) FROM events WHERE kind = ? AND case_id IS NOT NULL GROUP BY case_id", (kind,))}

    def loop_cleared_at(self, case_id: int) -> str | None:
        row = self.conn.execute(
            "SELECT MAX(at) FROM events WHERE case_id = ? AND kind = 'loop-cleared'", (case_id,)
        ).fetchone()
        return row[0] if row else None

    def loop_cases(self) -> list[dict[str, Any]]:
        """Every flagged case (``loop_flags``) with its customer and subject, latest flag first."""
        flags = self.loop_flags()
        if not flags:
            return []
        marks = ", ".join("?" for _ in flags)
        rows = self._all(
            f"SELECT c.id AS \"case\", substr(c.subject, 1, {LISTED_CHARS}) AS subject, c.status, "
            f"substr(cu.address, 1, {LISTED_CHARS}) AS customer, "
            f"(SELECT MAX(d.id) FROM drafts d WHERE d.case_id = c.id) AS draft FROM cases c "
            f"JOIN customers cu ON cu.id = c.customer_id WHERE c.id IN ({marks})",
            list(flags),
        )
        for row in rows:
            row.update(flags[row["case"]])
        return sorted(rows, key=lambda r: (r["last"], r["case"]), reverse=True)
