"""The session manifest: what was recorded, by whom, and the proof of every byte uploaded.

Written last, as ``<key-prefix>/<session-id>/manifest.json``: a reader that
finds it knows every file beside it is complete and verified. Its bytes are
fixed in the journal before the first attempt, so a retry sends the very
same document.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from ocap_agent import __version__
from ocap_agent.upload import checksum
from ocap_agent.upload.layout import Session
from ocap_agent.upload.transfer import ObjectInfo

FORMAT_VERSION = 1


def file_entry(info: ObjectInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "key": info.key,
        "size": info.size,
        "checksum_algorithm": "CRC32",
        "checksum_type": info.checksum_type,
        "checksum_crc32": info.s3_checksum,  # as S3 reports it (HeadObject, ChecksumMode=ENABLED)
        "crc32": checksum.to_b64(info.crc32),  # of the whole file, whatever the checksum type
        "crc32_hex": f"{info.crc32:08x}",  # the same, as zip, 7z and crc32(1) print it
        "part_size": info.part_size,
        "parts": info.parts,
    }


def build(
    session: Session,
    *,
    bucket: str,
    session_prefix: str,
    objects: Sequence[ObjectInfo],
    archive_members: Sequence[dict[str, Any]] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    meta = session.meta
    stamp = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
    doc: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "session_id": session.session_id,
        "user": meta.user if meta else "",
        "instance_id": meta.instance_id if meta else "",
        "image_version": meta.image_version if meta else "",
        "started_at": meta.started_at if meta else "",
        "stopped_at": meta.stopped_at if meta else "",
        # None: the folder had no session metadata, so nobody knows.
        "graceful_stop": meta.graceful_stop if meta else None,
        "needs_repair": meta.needs_repair if meta else None,
        "recovered": meta.recovered if meta else None,
        "recorder_exit_code": meta.recorder_exit_code if meta else None,
        "notes": list(meta.notes) if meta else ["no session.json: session id taken from the folder name"],
        # Links later recordings of one claim (the user unlocked again) to the first.
        "claim_session_id": getattr(meta, "claim_session_id", "") if meta else "",
        "bucket": bucket,
        "prefix": session_prefix,
        "files": [file_entry(o) for o in objects],
        "archive": None,
        "total_bytes": sum(o.size for o in objects),
        "uploaded_at": stamp.replace("+00:00", "Z"),
        "uploader": f"ocap-agent/{__version__}",
    }
    if archive_members is not None:
        doc["archive"] = {"members": list(archive_members), "compression": "stored"}
    return doc


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"
