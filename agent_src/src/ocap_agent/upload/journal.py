"""The upload journal: an append-only, fsync'd log of what S3 has acknowledged.

One file per session, ``<journal_dir>/<session-id>.jsonl``. A record is appended
only after S3 answered, so after a crash (kill -9, power loss) the journal
never claims more than S3 has. It may claim less (the crash fell between S3's
answer and the append): those parts are simply sent again.

Every record is fsync'd before ``append`` returns, except part records: they
are written at once (a killed process loses none, the OS holds them) but
fsync'd in groups of ``PART_SYNC_EVERY``, and by the next other record, which
covers everything before it. A power cut can therefore cost at most that many
parts sent again; an fsync per part cost about 5% of the upload's wall time
(measured with bench/upload against versitygw on the same disk).

A torn last line (the crash fell inside a write) is cut off when the journal
is reopened. Records, in the order they usually appear:

- ``plan``: bucket, prefix, part size, source files (name, size, mtime): what is uploaded where
- ``archive``: the session's zip was built (archive option): its name and size
- ``mpu`` / ``part``: a multipart upload id, then each part's number, ETag, CRC32
- ``object``: a file's object completed (size, whole-object CRC32)
- ``verified``: HeadObject confirmed size and checksum
- ``manifest`` / ``manifest_verified``: the manifest's exact bytes, then its check
- ``complete``: the whole session is verified in S3
- ``removed``: the local copy was deleted (or kept by config)
- ``restart``: a file changed or its upload vanished; its earlier records no longer count
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocap_agent.fsutil import fsync_dir
from ocap_agent.upload import errors


@dataclass
class FileProgress:
    name: str
    size: int = 0
    upload_id: str = ""
    part_size: int = 0
    parts: dict[int, tuple[str, int]] = field(default_factory=dict)  # n -> (etag, crc32)
    checksum_type: str = "FULL_OBJECT"
    crc32: int | None = None  # of the whole file, once its object is complete
    s3_checksum: str = ""  # what S3 reports for the object (see transfer)
    verified: bool = False

    def bytes_done(self) -> int:
        if self.crc32 is not None:
            return self.size
        if not self.part_size:
            return 0
        last = max(1, (self.size + self.part_size - 1) // self.part_size)
        done = 0
        for n in self.parts:
            done += self.size - (last - 1) * self.part_size if n == last else self.part_size
        return done


@dataclass
class JournalState:
    session_id: str
    plan: dict[str, Any] | None = None
    files: dict[str, FileProgress] = field(default_factory=dict)
    manifest: str | None = None
    manifest_verified: bool = False
    complete: bool = False
    removed: bool = False
    archive_size: int | None = None
    # Upload ids abandoned by a restart or a new plan -> file name: safe to abort.
    superseded: dict[str, str] = field(default_factory=dict)

    def file(self, name: str) -> FileProgress:
        if name not in self.files:
            self.files[name] = FileProgress(name)
        return self.files[name]

    def apply(self, rec: dict[str, Any]) -> None:
        kind = rec.get("t")
        if kind == "plan":
            # A new plan starts over: unfinished uploads of the old one are superseded.
            superseded = dict(self.superseded)
            superseded.update({f.upload_id: f.name for f in self.files.values() if f.upload_id})
            self.plan, self.files, self.superseded = rec, {}, superseded
            self.manifest, self.manifest_verified, self.complete, self.removed = None, False, False, False
            self.archive_size = None
            if not rec.get("archive"):
                for f in rec.get("sources", []):
                    self.file(f["name"]).size = int(f["size"])
        elif kind == "archive":
            self.archive_size = int(rec["size"])
            self.file(rec["name"]).size = int(rec["size"])
        elif kind == "mpu":
            fp = self.file(rec["file"])
            fp.upload_id, fp.part_size, fp.parts = rec["upload_id"], int(rec["part_size"]), {}
            fp.checksum_type = str(rec.get("checksum_type", "FULL_OBJECT"))
        elif kind == "part":
            fp = self.file(rec["file"])
            if rec.get("upload_id", fp.upload_id) == fp.upload_id:
                fp.parts[int(rec["n"])] = (rec["etag"], int(rec["crc32"]))
        elif kind == "object":
            fp = self.file(rec["file"])
            fp.crc32, fp.size = int(rec["crc32"]), int(rec["size"])
            fp.s3_checksum = str(rec.get("s3_checksum", ""))
        elif kind == "verified":
            self.file(rec["file"]).verified = True
        elif kind == "restart":
            fp = self.file(rec["file"])
            if fp.upload_id:
                self.superseded[fp.upload_id] = fp.name
            fp.upload_id, fp.parts, fp.crc32, fp.s3_checksum, fp.verified = "", {}, None, "", False
        elif kind == "manifest":
            self.manifest = rec["body"]
        elif kind == "manifest_verified":
            self.manifest_verified = True
        elif kind == "complete":
            self.complete = True
        elif kind == "removed":
            self.removed = True

    def all_upload_ids(self) -> dict[str, str]:
        """Every upload id this journal ever started -> file name."""
        out = dict(self.superseded)
        out.update({f.upload_id: f.name for f in self.files.values() if f.upload_id})
        return out


def path_for(journal_dir: Path, session_id: str) -> Path:
    return journal_dir / f"{session_id}.jsonl"


def _read_records(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Records of PATH and the byte length of its intact prefix."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    records: list[dict[str, Any]] = []
    good = 0
    for line in raw.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break  # torn by a crash mid-write
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            break
        if isinstance(rec, dict):
            records.append(rec)
        good += len(line)
    return records, good


def load(journal_dir: Path, session_id: str) -> JournalState:
    state = JournalState(session_id)
    for rec in _read_records(path_for(journal_dir, session_id))[0]:
        state.apply(rec)
    return state


def sessions(journal_dir: Path) -> list[str]:
    if not journal_dir.is_dir():
        return []
    return sorted(p.stem for p in journal_dir.glob("*.jsonl"))


PART_SYNC_EVERY = 16  # part records; 16 parts of the default 16 MiB: 256 MiB to resend at most


class Journal:
    """An open journal: replayed state plus durable appends."""

    def __init__(self, journal_dir: Path, session_id: str) -> None:
        self.path = path_for(journal_dir, session_id)
        records, good = _read_records(self.path)
        self.state = JournalState(session_id)
        for rec in records:
            self.state.apply(rec)
        self._lock = threading.Lock()
        self._broken: errors.UploadError | None = None
        self._unsynced_parts = 0
        try:
            journal_dir.mkdir(parents=True, exist_ok=True)
            existed = self.path.exists()
            self._f = open(self.path, "ab")  # noqa: SIM115 - kept open for appends until close()
            if existed and self._f.tell() != good:
                self._f.truncate(good)  # drop a torn tail before appending after it
                self._f.flush()
                os.fsync(self._f.fileno())
            if not existed:
                fsync_dir(journal_dir)
        except OSError as exc:
            raise errors.from_local(exc, f"upload journal {self.path}") from None

    def append(self, rec: dict[str, Any]) -> None:
        """Write REC; return once it is durable (part records: see the module's doc)."""
        line = (json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            if self._broken:
                # After a failed write the file may end in a torn line: stop here,
                # the next run cuts it off and resumes from what is intact.
                raise type(self._broken)(str(self._broken))
            try:
                self._f.write(line)
                self._f.flush()
            except OSError as exc:
                self._broken = errors.from_local(exc, f"upload journal {self.path}")
                raise self._broken from None
            if rec.get("t") == "part":
                self._unsynced_parts += 1
                sync = self._unsynced_parts >= PART_SYNC_EVERY
            else:
                sync = True
            if sync:
                self._unsynced_parts = 0  # this fsync covers every record written so far
        # Outside the lock, so part workers do not queue behind each other's disk flush;
        # the caller still waits for its own record to be durable before going on.
        if sync:
            self._sync()
        with self._lock:
            self.state.apply(rec)

    def _sync(self) -> None:
        try:
            os.fsync(self._f.fileno())
        except OSError as exc:
            with self._lock:
                self._broken = errors.from_local(exc, f"upload journal {self.path}")
            raise self._broken from None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._unsynced_parts and not self._broken:
                os.fsync(self._f.fileno())
            self._f.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
