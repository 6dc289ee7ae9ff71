"""What a session folder holds and where each file goes in the bucket.

A session folder is any folder holding recorder output (``*.mkv``, ``*.mcap``)
plus whatever else is in it; hidden files (leading dot: temp files, our own
markers) and sub-folders are not part of the session. Objects are laid out as
``<key-prefix>/<session-id>/<file name>``, with ``manifest.json`` beside them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ocap_agent import session_meta
from ocap_agent.upload import errors

RECORDING_SUFFIXES = (".mkv", ".mcap")
MANIFEST_NAME = "manifest.json"
# Session ids and file names become S3 keys and local file names: keep them plain.
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


@dataclass(frozen=True)
class LocalFile:
    name: str
    path: Path
    size: int
    mtime_ns: int

    def plan(self) -> dict[str, object]:
        return {"name": self.name, "size": self.size, "mtime_ns": self.mtime_ns}


@dataclass(frozen=True)
class Session:
    session_id: str
    folder: Path
    meta: session_meta.SessionMeta | None
    files: tuple[LocalFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def check_name(value: str, what: str) -> str:
    if not _SAFE.match(value):
        raise errors.InvalidSession(
            f"{what} {value!r} cannot name an S3 object: expected letters, digits, '.', '_' or '-' "
            "(at most 200, not starting with a symbol)"
        )
    return value


def normalize_prefix(prefix: str) -> str:
    cleaned = "/".join(part for part in prefix.strip().split("/") if part)
    if any(part in (".", "..") for part in cleaned.split("/")):
        raise errors.InvalidSetting(f"upload.key_prefix: expected a plain key prefix, got {prefix!r}")
    return cleaned


def object_key(prefix: str, session_id: str, name: str) -> str:
    return "/".join(p for p in (prefix, session_id, name) if p)


def session_prefix(prefix: str, session_id: str) -> str:
    return object_key(prefix, session_id, "") + "/"


def read_meta(folder: Path) -> session_meta.SessionMeta | None:
    try:
        return session_meta.read(folder)
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as exc:
        raise errors.InvalidSession(
            f"{session_meta.path_in(folder)} is not valid session metadata: {exc}"
        ) from None


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise errors.InvalidSession(f"session folder {folder} does not exist")
    if not folder.is_dir():
        raise errors.InvalidSession(
            f"{folder} is not a folder: expected a session folder holding *.mkv/*.mcap"
        )


def session_id_for(folder: Path) -> str:
    """The session id of FOLDER: from the agent's session.json, else the folder's name."""
    _check_folder(folder)
    meta = read_meta(folder)
    return check_name(meta.session_id if meta and meta.session_id else folder.name, "session id")


def discover(folder: Path) -> Session:
    """The uploadable files of FOLDER, or a clear error saying why it is not a session."""
    session_id = session_id_for(folder)
    meta = read_meta(folder)
    files: list[LocalFile] = []
    try:
        entries = sorted(folder.iterdir())
        for p in entries:
            if p.name.startswith(".") or not p.is_file():
                continue
            st = p.stat()
            files.append(LocalFile(check_name(p.name, "file name"), p, st.st_size, st.st_mtime_ns))
    except OSError as exc:
        raise errors.from_local(exc, f"reading session folder {folder}") from None
    if not any(f.name.lower().endswith(RECORDING_SUFFIXES) for f in files):
        raise errors.InvalidSession(
            f"{folder} holds no recording (no *.mkv or *.mcap file): refusing an empty upload"
        )
    if any(f.name == MANIFEST_NAME for f in files):
        raise errors.InvalidSession(
            f"{folder} holds a file named {MANIFEST_NAME}, a name the uploader reserves"
        )
    return Session(session_id, folder, meta, tuple(files))
