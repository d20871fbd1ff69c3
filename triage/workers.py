"""Worker processes for a poll's pure CPU work: parse, detect, and draft text.

With ``[poll] workers`` above 1, a poll of enough new mail starts that many
worker processes with the ``spawn`` start method: fresh interpreters that
inherit no descriptor of the poll (not the run lock, not the SQLite file,
not the IMAP socket), only their own pipe. Each loads the rule set itself
and then answers requests on its pipe, one chunk of a batch at a time:

* ``parse``  -- raw bytes -> ``Message`` (or the message's parse error);
* ``detect`` -- (text, context) -> ``Detection`` (or the message's error);
* ``draft``  -- (message, detection) -> does it need a reply, and its draft text.

Nothing here reads or writes the store: contexts (the customer's history)
are built by the poll, which also dedups, threads, stores, and applies each
batch's results in the batch's order in its one transaction with the
checkpoint (``triage.pipeline``).

A worker dies with the poll: ``PR_SET_PDEATHSIG`` on Linux, a thread that
notices a new parent process everywhere, and end-of-file on its pipe when it
next reads. A worker that dies while the poll waits for it (killed, out of
memory) is a ``WorkerError`` (exit 3): the batch is not committed and the
next poll does it again. An exception for one message is sent back as that
message's error, so the message is quarantined as in a single-process poll.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from triage.config import Settings, SupportSettings
from triage.errors import Problem, RulesError, TriageError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from triage.detect import Context, Detection
    from triage.drafting.drafter import DraftText
    from triage.message import Message
    from triage.ruleset import RuleSet

log = logging.getLogger(__name__)

MIN_MESSAGES = 20  # a folder with fewer new messages is polled in one process: starting workers costs more
CHUNK = 25  # messages per request: small enough to spread a batch, large enough to keep pipes cheap


class WorkerError(TriageError):
    """A worker process died (killed, out of memory) or could not start: the batch is not stored."""

    exit_code = 3


class WorkerBug(TriageError):
    """A worker failed outside any one message's work (a bug): the batch is not stored."""


class WorkerRaised(Exception):
    """What one message's drafting raised in a worker, raised again in the poll to quarantine it.

    ``text`` is what a single-process poll quarantines it with ("DraftError: ...").
    """

    def __init__(self, text: str, trace: str = ""):
        super().__init__(f"{text}\n(raised in a worker process)\n{trace}".rstrip())
        self.text = text


@dataclass(frozen=True)
class Parsed:
    """A parse result: the message, or the error it is quarantined with."""

    message: Message | None
    error: str = ""


@dataclass(frozen=True)
class Detected:
    """A detection result: the detection, or the error it is quarantined with."""

    detection: Detection | None
    error: str = ""


@dataclass(frozen=True)
class Prepared:
    """What the drafter decided in a worker: whether the message needs a reply, and its draft text.

    ``text`` is None when the reply is rendered by the poll itself (a template
    uses ``case_id``, which only the store knows); ``error`` is the quarantine
    text of an exception the drafter raised.
    """

    needs_reply: bool
    text: DraftText | None = None
    error: str = ""
    trace: str = ""


# ----------------------------------------------------------------------------- in the worker


def _die_with_parent(parent: int) -> None:
    """Exit as soon as the poll that started this worker is gone, however it ended."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(0)

    def watch() -> None:  # the portable path (and a parent that is not the process that forked)
        while True:
            time.sleep(0.25)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker(conn: Connection, parent: int, rules_dir: Path, templates_dir: Path, support: SupportSettings,
            log_level: int, checked_file: Path | None = None) -> None:
    """A worker's life: load the rules, say so, then answer requests until the pipe closes."""
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the poll's to handle; it closes the pipes
    os.dup2(2, 1)  # nothing a worker prints may end up in the poll's --json output
    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if log_level > logging.DEBUG:
        logging.getLogger("mailparser").setLevel(logging.ERROR)
    from triage.ruleset import RuleSet

    rules = RuleSet(Path(rules_dir), Path(templates_dir), support, checked_file=checked_file)
    try:
        rules.automatic, rules.detector, rules.drafter  # noqa: B018 - every part this worker uses, loaded once
    except RulesError as exc:
        _send(conn, ("rules", exc.problems))
        return
    except Exception:
        _send(conn, ("bug", -1, traceback.format_exc()))
        return
    if not _send(conn, ("ready", _templates_use_case_id(Path(templates_dir)))):
        return
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the poll closed the pipe, or died
            return
        if request is None:
            return
        kind, chunk, payload = request
        try:
            result = HANDLERS[kind](rules, payload)
        except Exception:
            _send(conn, ("bug", chunk, traceback.format_exc()))
            return
        if not _send(conn, ("done", chunk, result)):
            return


def _send(conn: Connection, message: tuple[Any, ...]) -> bool:
    """Send to the poll; False when it is gone (it stopped listening: this worker just ends)."""
    try:
        conn.send(message)
        return True
    except OSError:
        return False


def _templates_use_case_id(templates_dir: Path) -> bool:
    """Whether any template (partials included) mentions ``case_id``: then only the poll can render."""
    try:
        return any("case_id" in p.read_text(encoding="utf-8", errors="replace") for p in templates_dir.glob("*.j2"))
    except OSError:
        return True


def _parse(rules: RuleSet, payload: tuple[list[tuple[bytes, datetime]]]) -> list[Parsed]:
    from triage.message import ParseError, parse

    out = []
    for raw, received_at in payload[0]:
        try:
            out.append(Parsed(parse(raw, received_at, rules.automatic)))
        except ParseError as exc:
            out.append(Parsed(None, f"parse: {exc}"))
    return out


def _detect(rules: RuleSet, payload: tuple[list[str], list[Context], bool]) -> tuple[list[Detected] | None, str]:
    """Detections for one chunk, and the traceback of a failed whole-chunk detection ("" if none).

    ``strict``: all or nothing (the in-batch history pass keeps its first results
    when any fails). Otherwise a failed chunk is retried message by message, as a
    single-process poll retries a failed batch.
    """
    texts, contexts, strict = payload
    detector = rules.detector
    try:
        return [Detected(d) for d in detector.detect(texts, contexts)], ""
    except Exception:
        trace = traceback.format_exc()
        if strict:
            return None, trace
    out: list[Detected] = []
    for text, ctx in zip(texts, contexts, strict=True):
        try:
            out.extend(Detected(d) for d in detector.detect([text], [ctx]))
        except Exception as exc:
            out.append(Detected(None, f"detect: {type(exc).__name__}: {exc}"))
    return out, trace


def _draft(rules: RuleSet, payload: tuple[datetime, bool, list[tuple[Message, Detection]]]) -> list[Prepared]:
    when, render, pairs = payload
    drafter = rules.drafter
    out = []
    for message, detection in pairs:
        try:
            needs = drafter.needs_reply(message, detection)
            # case 0: no template mentions case_id (checked at start), so the text is the poll's own
            text = drafter.render(message, detection, 0, when) if needs and render else None
            out.append(Prepared(needs, text))
        except Exception as exc:
            out.append(Prepared(True, None, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    return out


HANDLERS: dict[str, Callable[[Any, Any], Any]] = {"parse": _parse, "detect": _detect, "draft": _draft}


# ----------------------------------------------------------------------------- in the poll


@dataclass
class _Proc:
    process: BaseProcess
    conn: Connection
    ready: bool = False


class Pool:
    """``size`` worker processes, started on first use; ``close`` (or ``with``) ends them."""

    def __init__(self, size: int, rules_dir: Path, templates_dir: Path, support: SupportSettings,
                 checked_file: Path | None = None):
        self.size = size
        self.rules_dir, self.templates_dir, self.support = Path(rules_dir), Path(templates_dir), support
        self.checked_file = checked_file  # the parts of the rules that passed their checks (triage.rulecache)
        self.procs: list[_Proc] = []
        self.renders = True  # False when a template uses case_id: the poll renders those drafts itself
        self.broken = False

    @classmethod
    def for_settings(cls, settings: Settings) -> Pool | None:
        """The pool ``[poll] workers`` asks for, or None for a single-process poll."""
        if settings.poll.workers <= 1:
            return None
        from triage.ruleset import checked_file

        return cls(settings.poll.workers, settings.rules_dir, settings.templates_dir, settings.support,
                   checked_file(settings))

    def __enter__(self) -> Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        return [p.process.pid for p in self.procs if p.process.pid is not None]

    def start(self) -> None:
        """Start the workers (once): each begins loading the rules while the poll goes on."""
        if self.procs:
            return
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        level = logging.getLogger().getEffectiveLevel()
        try:
            for i in range(self.size):
                mine, theirs = ctx.Pipe(duplex=True)
                process = ctx.Process(
                    target=_worker, name=f"triage-worker-{i + 1}", daemon=True,
                    args=(theirs, os.getpid(), self.rules_dir, self.templates_dir, self.support, level,
                          self.checked_file),
                )
                self.procs.append(_Proc(process, mine))
                process.start()
                theirs.close()
        except OSError as exc:  # no processes or memory left to start one
            self.close()
            raise WorkerError(f"cannot start a worker process: {exc.strerror or exc}") from None

    def ready(self) -> None:
        """Wait until every worker has loaded the rules; RulesError (exit 2) if they are broken."""
        self.start()
        for proc in self.procs:
            while not proc.ready:
                self._handle(proc, self._receive(proc, "loading the rules"), {})

    def parse(self, raws: Sequence[tuple[bytes, datetime]]) -> list[Parsed]:
        return self._map("parse", list(raws), lambda chunk: (chunk,), "parsing")

    def detect(self, texts: list[str], contexts: list[Context]) -> tuple[list[Detected], list[str]]:
        """Detections in order, and the tracebacks of chunks that were retried message by message."""
        pairs = list(zip(texts, contexts, strict=True))
        results = self._map_chunks("detect", pairs, lambda c: ([t for t, _ in c], [x for _, x in c], False),
                                   "detecting")
        traces = [trace for _, trace in results if trace]
        return [d for chunk, _ in results for d in chunk or ()], traces

    def detect_all(self, texts: list[str], contexts: list[Context]) -> list[Detection]:
        """Detections in order; raises DetectFailed when any text fails (as one detect call would)."""
        pairs = list(zip(texts, contexts, strict=True))
        results = self._map_chunks("detect", pairs, lambda c: ([t for t, _ in c], [x for _, x in c], True),
                                   "detecting")
        for chunk, trace in results:
            if chunk is None:
                raise DetectFailed(trace)
        return [d.detection for chunk, _ in results for d in chunk or () if d.detection is not None]

    def draft(self, pairs: list[tuple[Message, Detection]], when: datetime) -> list[Prepared]:
        self.ready()
        render = self.renders
        return self._map("draft", pairs, lambda chunk: (when, render, chunk), "drafting")

    # -- the plumbing

    def _map(self, kind: str, items: list[Any], payload: Callable[[list[Any]], Any], doing: str) -> list[Any]:
        return [r for chunk in self._map_chunks(kind, items, payload, doing) for r in chunk]

    def _map_chunks(self, kind: str, items: list[Any], payload: Callable[[list[Any]], Any],
                    doing: str) -> list[Any]:
        """Send chunks of ``items`` to idle workers; the chunks' results, in the items' order."""
        if not items:
            return []
        self.start()
        size = max(1, min(CHUNK, -(-len(items) // self.size)))
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        results: dict[int, Any] = {}
        busy: dict[int, int] = {}  # worker index -> the chunk it is working on
        sent = 0
        from multiprocessing.connection import wait

        while len(results) < len(chunks):
            for index, proc in enumerate(self.procs):
                if sent < len(chunks) and proc.ready and index not in busy:
                    try:
                        proc.conn.send((kind, sent, payload(chunks[sent])))
                    except OSError:  # it died since its last answer
                        self._died(proc, doing)
                    busy[index] = sent
                    sent += 1
            owner: dict[Any, int] = {}
            for index, proc in enumerate(self.procs):
                if index in busy or not proc.ready:  # an answer, or its "ready", is due
                    owner[proc.conn] = owner[proc.process.sentinel] = index
            heard: set[int] = set()
            for obj in wait(list(owner)):  # a pipe with something to read, or a process that ended
                index = owner[obj]
                if index in heard:
                    continue
                heard.add(index)
                message = self._receive(self.procs[index], doing)  # its last words first, if any
                self._handle(self.procs[index], message, results)
                if message[0] == "done":
                    busy.pop(index, None)
        return [results[i] for i in range(len(chunks))]

    def _receive(self, proc: _Proc, doing: str) -> tuple[Any, ...]:
        try:
            if proc.conn.poll(None):
                message: tuple[Any, ...] = proc.conn.recv()
                return message
        except (EOFError, OSError):
            pass
        self._died(proc, doing)
        raise AssertionError("unreachable")

    def _handle(self, proc: _Proc, message: tuple[Any, ...], results: dict[int, Any]) -> None:
        kind = message[0]
        if kind == "ready":
            proc.ready = True
            self.renders = self.renders and not message[1]
        elif kind == "done":
            results[message[1]] = message[2]
        elif kind == "rules":
            self.close()
            problems: list[Problem] = message[1]
            raise RulesError(problems)
        else:  # "bug"
            self.close()
            last = message[2].strip().splitlines()[-1] if message[2].strip() else "?"
            log.error("worker process %s failed:\n%s", proc.process.pid, message[2])
            raise WorkerBug(f"worker process {proc.process.pid} failed: {last}; nothing of this batch was stored")

    def _died(self, proc: _Proc, doing: str) -> None:
        proc.process.join(2)
        code = proc.process.exitcode
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        elif code is None:
            how = "closed its pipe"
        else:
            how = f"exited with status {code}"
        pid = proc.process.pid
        self.close()
        raise WorkerError(f"worker process {pid} {how} while {doing} mail; nothing of this batch was "
                          "stored: the next poll does it again")

    def close(self) -> None:
        """End every worker: ask, wait a moment, then kill. Safe to call twice."""
        procs, self.procs = self.procs, []
        for proc in procs:
            try:
                proc.conn.send(None)
            except OSError:
                pass
            proc.conn.close()
        deadline = time.monotonic() + 2
        for proc in procs:
            proc.process.join(max(0.0, deadline - time.monotonic()))
            if proc.process.exitcode is None:
                proc.process.kill()
                proc.process.join(2)


class DetectFailed(Exception):
    """A strict detection request failed in a worker; the traceback is the message."""
