"""Upload one finished session folder, durably, then and only then remove it.

The order of events is what makes a recording impossible to lose:

1. plan: the files (name, size, mtime) and the destination are fixed in the journal;
2. every file goes up (parts recorded as S3 acknowledges them) and is verified
   with HeadObject: size and whole-object CRC32;
3. the manifest goes up last and is verified the same way;
4. ``complete`` is journaled; the state table is told (best effort);
5. the local files are deleted, unless ``keep_local``; ``removed`` is journaled.

A crash anywhere resumes at the step it interrupted; the local files exist
until step 5, and step 5 only deletes files whose size and mtime are still
those of the plan.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import botocore.exceptions

from ocap_agent import session_meta
from ocap_agent.upload import (
    archive,
    checksum,
    errors,
    layout,
    lock,
    manifest,
    presign,
    s3client,
    state_update,
)
from ocap_agent.upload.journal import Journal
from ocap_agent.upload.options import Options
from ocap_agent.upload.progress import Progress
from ocap_agent.upload.transfer import FileJob, ObjectInfo, Transfer

log = logging.getLogger("ocap_agent.upload")


@dataclass
class Result:
    session_id: str
    bucket: str
    manifest_key: str
    manifest: dict[str, Any]
    links: dict[str, str] = field(default_factory=dict)
    local_removed: bool = False
    state_table: str = "skipped"
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "bucket": self.bucket,
            "manifest_key": self.manifest_key,
            "manifest_link": self.links.get(self.manifest_key, ""),
            "links": self.links,
            "local_removed": self.local_removed,
            "state_table": self.state_table,
            "seconds": round(self.seconds, 3),
            "manifest": self.manifest,
        }


def _plan(session: layout.Session, opts: Options) -> dict[str, Any]:
    return {
        "t": "plan",
        "bucket": opts.bucket,
        "prefix": opts.prefix,
        "part_size": opts.part_size,
        "checksum_type": opts.checksum_type,
        "archive": opts.archive,
        "folder": str(session.folder),
        "sources": [f.plan() for f in session.files],
    }


def _same_plan(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    if a is None:
        return False
    fields = ("bucket", "prefix", "part_size", "checksum_type", "archive", "sources")
    return all(a.get(k) == b.get(k) for k in fields)


def preflight(client: Any, bucket: str, prefix: str) -> None:
    """Fail early and clearly on a missing bucket or missing permission."""
    try:
        client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        raise errors.from_s3(exc, bucket=bucket, action="ListObjectsV2") from None


def _abort_superseded(transfer: Transfer, journal: Journal, prefix: str, session_id: str) -> None:
    for upload_id, name in journal.state.superseded.items():
        transfer.abort(layout.object_key(prefix, session_id, name), upload_id)


def _remove_local(folder: Path, session_id: str, plan: dict[str, Any], journal_dir: Path) -> bool:
    """Delete the planned files that are unchanged since the upload; True if the folder is gone.

    session.json goes last, so that until the very end the folder still names its session.
    """
    sources = sorted(plan.get("sources", []), key=lambda src: src["name"] == session_meta.FILENAME)
    for src in sources:
        p = folder / src["name"]
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        if st.st_size != src["size"] or st.st_mtime_ns != src["mtime_ns"]:
            log.warning("%s changed after its upload: kept", p)
            continue
        try:
            p.unlink()
        except OSError as exc:
            raise errors.from_local(exc, f"removing {p} after its verified upload") from None
    if plan.get("archive"):
        with contextlib.suppress(FileNotFoundError):
            archive.path_for(journal_dir, session_id).unlink()
    try:
        folder.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        log.warning("%s is not empty after the upload: kept", folder)
        return False
    return True


def _archive_for(session: layout.Session, opts: Options, journal: Journal) -> layout.LocalFile:
    """The session's archive: the one from an earlier attempt if it is whole, else a new one."""
    path = archive.path_for(opts.journal_dir, session.session_id)
    recorded = journal.state.archive_size
    if recorded is not None and path.exists():
        st = path.stat()
        if st.st_size == recorded:
            return layout.LocalFile(path.name, path, st.st_size, st.st_mtime_ns)
    built = archive.build(session, opts.journal_dir)
    journal.append({"t": "archive", "name": built.name, "size": built.size})
    return built


def _send(session: layout.Session, opts: Options, journal: Journal, transfer: Transfer) -> str:
    """Steps 1-4 for SESSION: plan, files, manifest, complete. Returns the state-table outcome."""
    sid = session.session_id
    session_prefix = layout.session_prefix(opts.prefix, sid)
    manifest_key = layout.object_key(opts.prefix, sid, layout.MANIFEST_NAME)
    plan = _plan(session, opts)
    if not _same_plan(journal.state.plan, plan):
        if journal.state.plan is not None:
            log.info("session %s changed since its last attempt: planning it again", sid)
        journal.append(plan)
    preflight(transfer.client, opts.bucket, session_prefix)
    _abort_superseded(transfer, journal, opts.prefix, sid)
    if opts.archive:
        local = [_archive_for(session, opts, journal)]
        members: list[dict[str, Any]] | None = archive.members(local[0].path)
    else:
        local, members = list(session.files), None
    jobs = [FileJob(f, layout.object_key(opts.prefix, sid, f.name)) for f in local]
    progress = transfer.progress
    progress.total = sum(f.size for f in local)
    progress.set_done(sum(f.size for f in local if journal.state.file(f.name).crc32 is not None))
    log.info(
        "uploading session %s: %d file(s), %d bytes to s3://%s/%s",
        sid,
        len(jobs),
        progress.total,
        opts.bucket,
        session_prefix,
        extra={"session_id": sid},
    )
    objects: list[ObjectInfo] = transfer.run(jobs)
    progress.finish()
    if journal.state.manifest is None:
        doc = manifest.build(
            session,
            bucket=opts.bucket,
            session_prefix=session_prefix,
            objects=objects,
            archive_members=members,
        )
        journal.append({"t": "manifest", "body": manifest.dumps(doc)})
    body = (journal.state.manifest or "").encode("utf-8")
    if not journal.state.manifest_verified:
        crc = transfer.put_bytes(manifest_key, body, layout.MANIFEST_NAME)
        transfer.verify_object(manifest_key, len(body), checksum.to_b64(crc))
        journal.append({"t": "manifest_verified"})
    journal.append({"t": "complete"})
    log.info("session %s verified in S3", sid, extra={"session_id": sid, "manifest_key": manifest_key})
    return state_update.mark_uploaded(opts, sid, manifest_key)


def upload_session(
    folder: Path,
    opts: Options,
    *,
    client: Any | None = None,
    progress_stream: TextIO | None = None,
    tty: bool | None = None,
) -> Result:
    """Upload FOLDER; return when every object and the manifest are verified in S3."""
    started = time.monotonic()
    sid = layout.session_id_for(folder)
    client = client or s3client.make(opts)
    with lock.hold(opts.journal_dir, sid), Journal(opts.journal_dir, sid) as journal:
        result_state = "skipped"
        if not journal.state.complete:
            # Only now is the folder required to hold a recording: once complete, a crash
            # half way through removing it must not turn the session into an error.
            session = layout.discover(folder)
            progress = Progress(
                sid, session.total_bytes, stream=progress_stream, interval_s=opts.progress_interval_s, tty=tty
            )
            try:
                result_state = _send(session, opts, journal, Transfer(client, opts, journal, progress))
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                raise errors.from_s3(exc, bucket=opts.bucket, action=f"uploading session {sid}") from None
            except OSError as exc:
                raise errors.from_local(exc, f"uploading session {sid}") from None
        doc = json.loads(journal.state.manifest or "{}")
        plan = journal.state.plan or {}
        removed = False
        if not journal.state.removed:
            if opts.keep_local:
                journal.append({"t": "removed", "kept": True})
            else:
                removed = _remove_local(folder, sid, plan, opts.journal_dir)
                journal.append({"t": "removed", "kept": False})
    # Where it went, from the journal: a later call with other flags does not move it.
    bucket = str(plan.get("bucket", opts.bucket))
    manifest_key = layout.object_key(str(plan.get("prefix", opts.prefix)), sid, layout.MANIFEST_NAME)
    keys = [f["key"] for f in doc.get("files", [])] + [manifest_key]
    links = presign.links(client, bucket, keys, opts.presign_expiry_s)
    return Result(sid, bucket, manifest_key, doc, links, removed, result_state, time.monotonic() - started)
