"""The single-object option: the session as one zip archive.

Recordings are already compressed video and binary logs, so members are
*stored*, not deflated: deflate costs CPU for nothing (seed 001's way) and is
what made the old upload slow. The archive is built next to the journal
(temporary name, fsync, rename), so a crash leaves either no archive or a
whole one; member timestamps come from the files, so rebuilding it after a
crash gives the same bytes and the same checksum.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import zipfile
from pathlib import Path
from typing import Any

from ocap_agent.fsutil import fsync_dir
from ocap_agent.upload import errors
from ocap_agent.upload.layout import LocalFile, Session

COPY_BLOCK = 8 * 1024 * 1024


def path_for(journal_dir: Path, session_id: str) -> Path:
    return journal_dir / f"{session_id}.zip"


def _zip_time(mtime_ns: int) -> tuple[int, int, int, int, int, int]:
    t = time.gmtime(max(mtime_ns // 1_000_000_000, 315532800))  # zip dates start in 1980
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def members(path: Path) -> list[dict[str, Any]]:
    with zipfile.ZipFile(path) as zf:
        return [{"name": i.filename, "size": i.file_size, "crc32_hex": f"{i.CRC:08x}"} for i in zf.infolist()]


def build(session: Session, journal_dir: Path) -> LocalFile:
    """Write SESSION's files into one stored zip; return it as a file to upload."""
    dest = path_for(journal_dir, session.session_id)
    tmp = dest.with_name(f".{dest.name}.partial")
    try:
        journal_dir.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for f in session.files:
                info = zipfile.ZipInfo(f.name, _zip_time(f.mtime_ns))
                info.compress_type = zipfile.ZIP_STORED
                info.external_attr = 0o644 << 16
                with open(f.path, "rb") as src, zf.open(info, "w", force_zip64=True) as out:
                    shutil.copyfileobj(src, out, COPY_BLOCK)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
        fsync_dir(journal_dir)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise errors.from_local(exc, f"building the archive {dest}") from None
    st = dest.stat()
    return LocalFile(dest.name, dest, st.st_size, st.st_mtime_ns)
