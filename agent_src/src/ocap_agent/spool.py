"""The durable upload spool: finished sessions waiting to be uploaded.

A queued session is a ticket file ``<spool_dir>/<enqueued-at>__<session-id>.json``
pointing at its session folder; tickets sort oldest first by name. The ticket
is written atomically, so a crash leaves a session either queued or not, never
half-queued; enqueueing the same folder twice keeps one ticket.

The uploader records each failed attempt in the ticket itself (attempts, the
last error, whether it needs a person), rewriting it atomically under the same
name so its place in the queue is kept, and removes the ticket only after the
session is verified in S3.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from ocap_agent.fsutil import fsync_dir, read_json, write_json_atomic
from ocap_agent.session_meta import session_id_of


@dataclass(frozen=True)
class Ticket:
    path: Path
    session_dir: Path
    session_id: str
    reason: str
    enqueued_at: str
    attempts: int = 0
    last_error: str = ""
    last_attempt_at: str = ""
    # True when the last failure needs a person (no bucket, no permission...).
    needs_attention: bool = False


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def enqueue(spool_dir: Path, session_dir: Path, reason: str = "session stop") -> Ticket:
    """Queue SESSION_DIR for upload (idempotent per session id)."""
    session_id = session_id_of(session_dir)
    for t in tickets(spool_dir):
        if t.session_id == session_id:
            return t
    stamp = _stamp()
    path = spool_dir / f"{stamp}__{session_id}.json"
    data = {
        "session_dir": str(session_dir.resolve()),
        "session_id": session_id,
        "reason": reason,
        "enqueued_at": stamp,
    }
    write_json_atomic(path, data)
    return Ticket(path, session_dir.resolve(), session_id, reason, stamp)


def tickets(spool_dir: Path) -> list[Ticket]:
    """Queued sessions, oldest first."""
    if not spool_dir.is_dir():
        return []
    out = []
    for p in sorted(spool_dir.glob("*__*.json")):
        d = read_json(p)
        out.append(
            Ticket(
                p,
                Path(d["session_dir"]),
                d["session_id"],
                d.get("reason", ""),
                d.get("enqueued_at", ""),
                int(d.get("attempts", 0)),
                str(d.get("last_error", "")),
                str(d.get("last_attempt_at", "")),
                bool(d.get("needs_attention", False)),
            )
        )
    return out


def record_failure(ticket: Ticket, error: str, *, needs_attention: bool = False) -> Ticket:
    """Note a failed attempt in TICKET (same file, same place in the queue)."""
    try:
        data = read_json(ticket.path)
    except (FileNotFoundError, json.JSONDecodeError):
        return ticket  # removed meanwhile: nothing to record against
    attempts = int(data.get("attempts", 0)) + 1
    stamp = _stamp()
    data.update(attempts=attempts, last_error=error, last_attempt_at=stamp, needs_attention=needs_attention)
    write_json_atomic(ticket.path, data)
    return Ticket(
        ticket.path,
        ticket.session_dir,
        ticket.session_id,
        ticket.reason,
        ticket.enqueued_at,
        attempts,
        error,
        stamp,
        needs_attention,
    )


def remove(ticket: Ticket) -> None:
    """Take TICKET out of the queue (its session is safely uploaded)."""
    with contextlib.suppress(FileNotFoundError):
        ticket.path.unlink()
        fsync_dir(ticket.path.parent)
