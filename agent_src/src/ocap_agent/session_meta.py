"""The agent's own metadata for a recording session: ``session.json`` in the session folder.

Written by ``session start`` (and updated by ``session stop`` and ``recover``);
read by the uploader to name objects and fill the manifest. A folder without
it is still uploadable: its session id is then the folder's name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocap_agent.fsutil import read_json, write_json_atomic

FILENAME = "session.json"


@dataclass
class SessionMeta:
    session_id: str
    user: str = ""
    instance_id: str = ""
    image_version: str = ""
    started_at: str = ""  # UTC ISO 8601
    stopped_at: str = ""
    # True only when the recorder finalized its files on a graceful stop.
    graceful_stop: bool = False
    # Set when the recorder was killed or the machine crashed: files may need repair.
    needs_repair: bool = False
    recovered: bool = False
    recorder_exit_code: int | None = None
    notes: list[str] = field(default_factory=list)
    # The broker's session id when this recording is a later one of the same
    # claim (the user unlocked again after a lock): links the recordings.
    claim_session_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def path_in(session_dir: Path) -> Path:
    return session_dir / FILENAME


def read(session_dir: Path) -> SessionMeta | None:
    """The session's metadata, or None when the folder has none."""
    p = path_in(session_dir)
    if not p.exists():
        return None
    data = read_json(p)
    known = {f.name for f in dataclasses.fields(SessionMeta)}
    return SessionMeta(**{k: v for k, v in data.items() if k in known})


def write(session_dir: Path, meta: SessionMeta) -> None:
    write_json_atomic(path_in(session_dir), meta.to_dict())


def session_id_of(session_dir: Path) -> str:
    meta = read(session_dir)
    return meta.session_id if meta else session_dir.name
