"""One uploader per session at a time: an OS file lock the kernel drops when the process dies.

A kill -9 or a crash never leaves a stale lock behind, unlike a lock file
whose mere existence counts.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from ocap_agent.upload import errors

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def path_for(journal_dir: Path, session_id: str) -> Path:
    return journal_dir / f"{session_id}.lock"


@contextlib.contextmanager
def hold(journal_dir: Path, session_id: str) -> Iterator[None]:
    """Hold SESSION_ID's lock for the block, or raise Busy when another process holds it."""
    try:
        journal_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path_for(journal_dir, session_id), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise errors.from_local(exc, f"lock for session {session_id} in {journal_dir}") from None
    try:
        if not _try_lock(fd):
            raise errors.Busy(f"session {session_id} is being uploaded by another process right now")
        yield
    finally:
        os.close(fd)  # closing releases the lock


def is_held(journal_dir: Path, session_id: str) -> bool:
    if not path_for(journal_dir, session_id).exists():
        return False
    try:
        with hold(journal_dir, session_id):
            return False
    except errors.Busy:
        return True
