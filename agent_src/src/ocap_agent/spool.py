"""The durable upload spool: finished sessions waiting to be uploaded.

A queued session is a ticket file ``<spool_dir>/<enqueued-at>__<session-id>.json``
pointing at its session folder; tickets sort oldest first by name. The ticket
is written atomically, so a crash leaves a session either queued or not, never
half-queued; enqueueing the same folder twice keeps one ticket.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ocap_agent.fsutil import read_json, write_json_atomic
from ocap_agent.session_meta import session_id_of


@dataclass(frozen=True)
class Ticket:
    path: Path
    session_dir: Path
    session_id: str
    reason: str
    enqueued_at: str


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
            Ticket(p, Path(d["session_dir"]), d["session_id"], d.get("reason", ""), d.get("enqueued_at", ""))
        )
    return out
