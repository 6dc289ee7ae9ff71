"""The spool's worker: drain the queue, report its status, recover multipart uploads.

- ``run``: every queued session, oldest first, each resumed from its journal.
  A session that fails keeps its ticket with the reason; a failure that looks
  like the network or S3 being down ends the pass (the next scheduled run picks
  up), one that needs a person (no bucket, no permission) lets the others go on.
  Then the journals of sessions finished longer than ``upload.journal_retention_days``
  ago are deleted, so a workstation's data folder does not grow without end.
- ``status``: what is queued, in flight, done or failed, with sizes.
- ``recover``: seed 002's manual list-multipart-uploads / list-parts /
  complete-multipart-upload, done only where the journal proves every part.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import botocore.exceptions

from ocap_agent import spool
from ocap_agent.upload import errors, journal, lock
from ocap_agent.upload.journal import Journal, JournalState
from ocap_agent.upload.options import Options
from ocap_agent.upload.progress import Progress
from ocap_agent.upload.transfer import Transfer, UploadVanished
from ocap_agent.upload.uploader import upload_session

log = logging.getLogger("ocap_agent.upload")


@dataclass
class Outcome:
    session_id: str
    status: str  # uploaded | failed | busy
    detail: str = ""
    exit_code: int = 0


def _requeue_interrupted(opts: Options) -> None:
    """Queue sessions whose upload began (e.g. by ``ocap-agent upload``) but never finished."""
    queued = {t.session_id for t in spool.tickets(opts.spool_dir)}
    for sid in journal.sessions(opts.journal_dir):
        if sid in queued:
            continue
        st = journal.load(opts.journal_dir, sid)
        folder = Path(str((st.plan or {}).get("folder", "")))
        if st.plan and not st.complete and folder.is_dir():
            spool.enqueue(opts.spool_dir, folder, reason="resume interrupted upload")


def run(
    opts: Options, *, client: Any, progress_stream: TextIO | None = None, tty: bool | None = None
) -> list[Outcome]:
    _requeue_interrupted(opts)
    outcomes: list[Outcome] = []
    for ticket in spool.tickets(opts.spool_dir):
        sid = ticket.session_id
        if not ticket.session_dir.exists():
            if journal.load(opts.journal_dir, sid).complete:
                spool.remove(ticket)  # uploaded and removed; only the ticket was left
                outcomes.append(Outcome(sid, "uploaded", "already verified in S3"))
            else:
                msg = f"session folder {ticket.session_dir} is missing and was never uploaded"
                spool.record_failure(ticket, msg, needs_attention=True)
                outcomes.append(Outcome(sid, "failed", msg, errors.EXIT_INPUT))
            continue
        try:
            result = upload_session(
                ticket.session_dir, opts, client=client, progress_stream=progress_stream, tty=tty
            )
        except errors.Busy as exc:
            outcomes.append(Outcome(sid, "busy", str(exc)))
            continue
        except errors.UploadError as exc:
            spool.record_failure(ticket, str(exc), needs_attention=exc.permanent)
            log.error("upload of session %s failed: %s", sid, exc, extra={"session_id": sid})
            outcomes.append(Outcome(sid, "failed", str(exc), exc.exit_code))
            if not exc.permanent:
                break  # S3 or the disk is in trouble: the next run resumes
            continue
        spool.remove(ticket)
        outcomes.append(Outcome(sid, "uploaded", result.manifest_key))
    prune_journals(opts)
    return outcomes


def prune_journals(opts: Options, *, now: float | None = None) -> list[str]:
    """Delete the journals of finished sessions older than the retention; return their ids.

    Finished: verified in S3 and the local copy removed (or kept by config). A
    queued, interrupted or locked session keeps its journal, whatever its age:
    the journal is what proves its parts.
    """
    if opts.journal_retention_s <= 0:
        return []
    cutoff = (now if now is not None else time.time()) - opts.journal_retention_s
    queued = {t.session_id for t in spool.tickets(opts.spool_dir)}
    pruned: list[str] = []
    for sid in journal.sessions(opts.journal_dir):
        path = journal.path_for(opts.journal_dir, sid)
        try:
            old = path.stat().st_mtime < cutoff
        except FileNotFoundError:
            continue
        if not old or sid in queued:
            continue
        try:
            with lock.hold(opts.journal_dir, sid):
                st = journal.load(opts.journal_dir, sid)
                if not (st.complete and st.removed):
                    continue
                path.unlink()
                # While held, so no other process holds it: one that opens the name
                # afterwards gets a new file. Windows refuses to delete an open file: kept.
                with contextlib.suppress(OSError):
                    lock.path_for(opts.journal_dir, sid).unlink()
        except errors.Busy:
            continue  # being uploaded again right now
        except (OSError, errors.UploadError) as exc:
            log.warning("could not delete the old upload journal %s: %s", path, exc)
            continue
        pruned.append(sid)
        log.info("deleted the upload journal of session %s (finished, older than the retention)", sid)
    return pruned


# -- status ---------------------------------------------------------------
@dataclass
class StatusRow:
    session_id: str
    state: str  # queued | uploading | partial | failed | needs-attention | done
    bytes_total: int
    bytes_done: int
    attempts: int = 0
    last_error: str = ""
    folder: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sizes(st: JournalState, folder: Path) -> tuple[int, int]:
    if st.plan:
        total = sum(int(f["size"]) for f in st.plan.get("sources", []))
        done = sum(f.bytes_done() for f in st.files.values())
        if st.plan.get("archive") and st.archive_size:
            total = st.archive_size
        return total, min(done, total) if not st.complete else total
    try:
        return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()), 0
    except OSError:
        return 0, 0


def status(opts: Options) -> list[StatusRow]:
    rows: list[StatusRow] = []
    seen: set[str] = set()
    for t in spool.tickets(opts.spool_dir):
        seen.add(t.session_id)
        st = journal.load(opts.journal_dir, t.session_id)
        total, done = _sizes(st, t.session_dir)
        if lock.is_held(opts.journal_dir, t.session_id):
            state = "uploading"
        elif t.needs_attention:
            state = "needs-attention"
        elif t.attempts:
            state = "failed"
        elif done:
            state = "partial"
        else:
            state = "queued"
        rows.append(StatusRow(t.session_id, state, total, done, t.attempts, t.last_error, str(t.session_dir)))
    for sid in journal.sessions(opts.journal_dir):
        if sid in seen:
            continue
        st = journal.load(opts.journal_dir, sid)
        folder = Path(str((st.plan or {}).get("folder", "")))
        total, done = _sizes(st, folder)
        if st.complete:
            state = "done"
        elif lock.is_held(opts.journal_dir, sid):
            state = "uploading"
        else:
            state = "partial"
        rows.append(StatusRow(sid, state, total, done, folder=str(folder)))
    return rows


# -- recover --------------------------------------------------------------
@dataclass
class RecoverAction:
    key: str
    upload_id: str
    action: str  # completed | aborted | left | skipped
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _index(opts: Options) -> dict[str, tuple[str, str, bool]]:
    """Every upload id a journal here knows -> (session id, file name, still current)."""
    out: dict[str, tuple[str, str, bool]] = {}
    for sid in journal.sessions(opts.journal_dir):
        st = journal.load(opts.journal_dir, sid)
        for uid, name in st.superseded.items():
            out[uid] = (sid, name, False)
        for f in st.files.values():
            if f.upload_id:
                out[f.upload_id] = (sid, f.name, f.crc32 is None)
    return out


def _list_uploads(client: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    uploads: list[dict[str, Any]] = []
    try:
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
            uploads.extend(page.get("Uploads", []))
    except botocore.exceptions.ClientError as exc:
        raise errors.from_s3(exc, bucket=bucket, action="ListMultipartUploads") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise errors.TransientError(f"s3://{bucket}: cannot reach S3: {exc}") from None
    return uploads


def _complete_from_journal(
    client: Any, opts: Options, *, sid: str, name: str, key: str, upload_id: str
) -> RecoverAction:
    with lock.hold(opts.journal_dir, sid), Journal(opts.journal_dir, sid) as j:
        fp = j.state.file(name)
        count = -(-fp.size // fp.part_size) if fp.part_size else 0
        if fp.upload_id != upload_id or fp.crc32 is not None:
            return RecoverAction(key, upload_id, "skipped", "the journal moved on meanwhile")
        missing = count - len(fp.parts)
        local = Path(str((j.state.plan or {}).get("folder", ""))) / name
        if missing:
            if local.is_file():
                return RecoverAction(
                    key,
                    upload_id,
                    "left",
                    f"{missing} of {count} parts to send; `ocap-agent uploads run` resumes it",
                )
            return RecoverAction(
                key,
                upload_id,
                "left",
                f"{missing} of {count} parts missing and {local} is gone: needs a person (nothing deleted)",
            )
        transfer = Transfer(client, opts, j, Progress(sid, fp.size, interval_s=opts.progress_interval_s))
        try:
            expected = transfer.finish_multipart(key, name, fp.size, upload_id)
        except UploadVanished:
            return RecoverAction(key, upload_id, "skipped", "the upload vanished meanwhile")
        transfer.verify_object(key, fp.size, expected)
        j.append({"t": "verified", "file": name})
        return RecoverAction(
            key, upload_id, "completed", f"{count} parts proven by the journal; object verified"
        )


def recover(opts: Options, *, client: Any, now: dt.datetime | None = None) -> list[RecoverAction]:
    now = now or dt.datetime.now(dt.UTC)
    index = _index(opts)
    ours = set(journal.sessions(opts.journal_dir)) | {t.session_id for t in spool.tickets(opts.spool_dir)}
    prefix = f"{opts.prefix}/" if opts.prefix else ""
    actions: list[RecoverAction] = []
    for up in _list_uploads(client, opts.bucket, prefix):
        key, uid = str(up["Key"]), str(up["UploadId"])
        sid = key[len(prefix) :].split("/", 1)[0]
        if sid and lock.is_held(opts.journal_dir, sid):
            actions.append(RecoverAction(key, uid, "skipped", f"session {sid} is being uploaded right now"))
            continue
        known = index.get(uid)
        if known is not None and known[2]:
            try:
                actions.append(
                    _complete_from_journal(client, opts, sid=known[0], name=known[1], key=key, upload_id=uid)
                )
            except errors.Busy:
                actions.append(
                    RecoverAction(key, uid, "skipped", f"session {sid} is being uploaded right now")
                )
            continue
        initiated = up.get("Initiated")
        age = (now - initiated).total_seconds() if isinstance(initiated, dt.datetime) else float("inf")
        if known is None and sid not in ours and age < opts.orphan_age_s:
            actions.append(
                RecoverAction(
                    key, uid, "skipped", "not this agent's session (and younger than upload.orphan_age_h)"
                )
            )
            continue
        why = "superseded by a later attempt" if known else "no journal knows it: nothing proves its parts"
        try:
            client.abort_multipart_upload(Bucket=opts.bucket, Key=key, UploadId=uid)
        except botocore.exceptions.ClientError as exc:
            if errors.error_code(exc) not in ("NoSuchUpload", "404"):
                raise errors.from_s3(
                    exc, bucket=opts.bucket, key=key, action="AbortMultipartUpload"
                ) from None
        actions.append(RecoverAction(key, uid, "aborted", why))
    return actions
