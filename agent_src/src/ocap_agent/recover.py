"""``ocap-agent recover`` (at boot): sessions left by a crash or power loss go to the spool.

A session folder whose ``session.json`` has no ``stopped_at`` never ended.
Recovery stops its recorder if that is somehow still running (gracefully
first: it may still finalize), marks the session ``recovered`` and, if its
files were not finalized, ``needs_repair``, and queues it for upload. Nothing
is deleted: a half-written recording is still most of a recording.

A session whose supervisor is alive is left alone. Recovery is idempotent:
queueing is per session id, and a finished ``session.json`` is not rewritten.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ocap_agent import proc, session_meta, sessions
from ocap_agent.config import Config
from ocap_agent.sessions import Outcome, finish_dir, finish_stale

log = logging.getLogger(__name__)


def unfinished(cfg: Config) -> list[Path]:
    """Session folders that never ended (no ``stopped_at``), oldest first."""
    root = cfg.paths.resolved("sessions_dir")
    if not root.is_dir():
        return []
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        meta = session_meta.read(d)
        if meta is None:
            if sessions.recording_files(d):
                out.append(d)
        elif not meta.stopped_at:
            out.append(d)
    return out


def recover(cfg: Config) -> list[Outcome]:
    """Finish and queue every session left unfinished; skip the one still recording."""
    outcomes: list[Outcome] = []
    with proc.exclusive_lock(sessions.lock_path(cfg), sessions.lock_timeout(cfg)):
        active: Path | None = None
        current = sessions.read_current(cfg)
        if current is not None:
            try:
                sessions.ask_supervisor(current, "ping", 10)
                active = Path(str(current["session_dir"]))
            except (OSError, ValueError):
                outcomes.append(finish_stale(cfg, current))
        for d in unfinished(cfg):
            if active is not None and d.resolve() == active.resolve():
                continue
            outcomes.append(finish_dir(cfg, d))
    return outcomes
