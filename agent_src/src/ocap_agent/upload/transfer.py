"""Upload files as S3 objects: parallel parts, a CRC32 on every part and on the whole
object, resumable from the journal, never overwriting a different object, verified.

Why our own part scheduler rather than s3transfer's ``upload_file``: s3transfer
hides the upload id and the parts it has sent, so an interrupted upload can
only start over, and it offers no hook to record each acknowledged part
durably. Here every part is recorded in the journal the moment S3 answers,
and a restart sends only what is missing (bench/upload compares the speed of
both on the same data).

S3 checks the CRC32 of every part on arrival. For the whole object there are
two checksum types (``upload.checksum_type``). FULL_OBJECT, the default, is
the plain CRC32 of the object: S3 checks it against ours at completion and
any client can recheck it on download. COMPOSITE is the CRC32 of the parts'
CRC32s ("<base64>-<parts>"); it costs a server nothing at completion, where
FULL_OBJECT may (versitygw 1.0.14 reads the object back: seconds per GiB),
but versitygw then reports it without the "-<parts>" suffix, which makes
boto3's download validation fail. Either way HeadObject must report exactly
the checksum we computed, and the manifest records each file's plain CRC32.

S3 supports ``If-None-Match: *`` on PutObject and CompleteMultipartUpload: we
send it so a retry can never replace a different object. Servers that ignore
the header (versitygw 1.0.14 does) are covered by a HeadObject before the
upload starts: an existing object is accepted only when its size and CRC32
are ours, otherwise the upload stops with ObjectConflict.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import botocore.exceptions

from ocap_agent.upload import checksum, errors, retry
from ocap_agent.upload.bandwidth import Limiter
from ocap_agent.upload.journal import FileProgress, Journal
from ocap_agent.upload.layout import LocalFile
from ocap_agent.upload.options import Options
from ocap_agent.upload.progress import Progress

log = logging.getLogger("ocap_agent.upload")

_CONTENT_TYPES = {
    ".mkv": "video/x-matroska",
    ".mcap": "application/octet-stream",
    ".json": "application/json",
}
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class FileJob:
    local: LocalFile
    key: str


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    key: str
    size: int
    crc32: int  # of the whole file, however it was uploaded
    s3_checksum: str  # as S3 reports it (base64; ``-<parts>`` for a composite)
    checksum_type: str  # FULL_OBJECT or COMPOSITE
    part_size: int
    parts: int


class _Cancelled(Exception):
    """Another file of the session failed: stop sending parts."""


class _SiblingFailed(errors.TransientError):
    """This file stopped only because another one failed (that one's error is reported)."""


def _first_cause(excs: list[BaseException]) -> BaseException:
    """The error that started a cascade, not the cancellations it caused."""
    for exc in excs:
        if not isinstance(exc, (_Cancelled, _SiblingFailed)):
            return exc
    return excs[0]


class UploadVanished(Exception):
    """The multipart upload no longer exists (aborted by recover or a lifecycle rule)."""


def content_type(name: str) -> str:
    ext = os.path.splitext(name)[1].lower()
    return _CONTENT_TYPES.get(ext) or mimetypes.guess_type(name)[0] or "application/octet-stream"


def read_range(path: os.PathLike[str] | str, offset: int, length: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(length)
    if len(data) != length:
        raise errors.LocalFileError(f"{path} is shorter than when the upload started: it changed meanwhile")
    return data


class _PartBuffers(threading.local):
    """One buffer per part worker, reused for every part of that size it sends.

    A fresh bytes object per 16 MiB part cost page faults on every part: about
    0.4 s of CPU per GiB, 10% of the client's work (measured with bench/upload).
    A buffer is only reused once the request that sent it has returned.
    """

    buf: bytearray | None = None

    def read(self, path: os.PathLike[str] | str, offset: int, length: int) -> bytearray:
        buf = self.buf
        if buf is None or len(buf) != length:
            buf = bytearray(length)
            if self.buf is None or length > len(self.buf):
                self.buf = buf  # keep the full-size one; a file's short last part takes its own
        with open(path, "rb") as f:
            f.seek(offset)
            got = f.readinto(buf)
        if got != length:
            raise errors.LocalFileError(
                f"{path} is shorter than when the upload started: it changed meanwhile"
            )
        return buf


def file_checksums(path: os.PathLike[str] | str, part_size: int) -> tuple[int, list[int]]:
    """The whole file's CRC32 and each PART_SIZE part's CRC32, in one read."""
    whole, parts = 0, []
    with open(path, "rb") as f:
        while part := f.read(part_size):
            whole = checksum.crc32(part, whole)
            parts.append(checksum.crc32(part))
    return whole, parts


def _code(exc: BaseException) -> str:
    return errors.error_code(exc)


class Transfer:
    """Uploads the files of one session, sharing one pool of part workers."""

    def __init__(
        self,
        client: Any,
        opts: Options,
        journal: Journal,
        progress: Progress,
        limiter: Limiter | None = None,
    ) -> None:
        self.client, self.opts, self.journal, self.progress = client, opts, journal, progress
        self.limiter = limiter or Limiter(opts.bandwidth_bytes_s)
        self.bucket = opts.bucket
        self.stop = threading.Event()
        self._parts_pool: ThreadPoolExecutor | None = None
        self._buffers = _PartBuffers()

    # -- the session -----------------------------------------------------
    def run(self, jobs: list[FileJob]) -> list[ObjectInfo]:
        """Upload and verify every job; raise the first UploadError after stopping the rest.

        Files go largest first, and a file's parts are queued only once the larger
        files' parts are: the completion of a big object (which S3 may take a while
        over, and versitygw spends a read of the whole object on) then overlaps the
        sending of the smaller files, instead of ending the upload with every
        connection idle. Results come back in the order of JOBS.
        """
        if not jobs:
            return []
        order = sorted(range(len(jobs)), key=lambda i: -jobs[i].local.size)
        queued = [threading.Event() for _ in order]
        with (
            ThreadPoolExecutor(self.opts.concurrency, thread_name_prefix="part") as parts,
            ThreadPoolExecutor(min(4, len(jobs)), thread_name_prefix="file") as files,
        ):
            self._parts_pool = parts
            futures: dict[int, Future[ObjectInfo]] = {}
            for rank, i in enumerate(order):
                after = queued[rank - 1] if rank else None
                futures[i] = files.submit(self._one, jobs[i], after, queued[rank])
            results: list[ObjectInfo] = []
            failures: list[BaseException] = []
            for i in range(len(jobs)):
                try:
                    results.append(futures[i].result())
                except BaseException as exc:
                    self.stop.set()
                    failures.append(exc)
        if failures:
            raise _first_cause(failures)
        return results

    def _one(self, job: FileJob, after: threading.Event | None, queued: threading.Event) -> ObjectInfo:
        """Upload JOB once AFTER is set (the larger files' parts are queued); set QUEUED when its are."""
        try:
            if after is not None:
                after.wait()
            return self._upload_and_verify(job, queued)
        except errors.UploadError:
            raise
        except _Cancelled:
            raise _SiblingFailed(f"{job.key}: stopped because another file of the session failed") from None
        except OSError as exc:
            raise errors.from_local(exc, f"reading {job.local.path}") from None
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise errors.from_s3(exc, bucket=self.bucket, key=job.key) from None
        finally:
            queued.set()  # done, failed or nothing to send: the next file must not wait

    def _upload_and_verify(self, job: FileJob, queued: threading.Event) -> ObjectInfo:
        fp = self.journal.state.file(job.local.name)
        if fp.crc32 is None:
            if job.local.size <= self.opts.part_size:
                queued.set()  # one request, no parts to queue
                self._single(job)
            else:
                for attempt in (1, 2):
                    try:
                        self._multipart(job, queued)
                        break
                    except UploadVanished:
                        self.journal.append(
                            {"t": "restart", "file": job.local.name, "reason": "upload vanished"}
                        )
                        if attempt == 2:
                            raise errors.TransientError(
                                f"{job.key}: the multipart upload vanished twice; will retry later"
                            ) from None
                        log.warning("multipart upload of %s vanished; starting it again", job.key)
        fp = self.journal.state.file(job.local.name)
        if not fp.verified:
            self.verify_object(job.key, job.local.size, fp.s3_checksum)
            self.journal.append({"t": "verified", "file": job.local.name})
        return self._info(job, fp)

    def _info(self, job: FileJob, fp: FileProgress) -> ObjectInfo:
        assert fp.crc32 is not None
        size = job.local.size
        multipart = bool(fp.upload_id) or "-" in fp.s3_checksum
        part_size = (fp.part_size or self.opts.part_size_for(size)) if multipart else size
        parts = max(1, -(-size // part_size)) if part_size else 1
        adopted_type = "COMPOSITE" if "-" in fp.s3_checksum else "FULL_OBJECT"
        ctype = fp.checksum_type if fp.upload_id else adopted_type
        return ObjectInfo(job.local.name, job.key, size, fp.crc32, fp.s3_checksum, ctype, part_size, parts)

    def _record_object(self, name: str, size: int, crc: int, s3_checksum: str) -> None:
        self.journal.append(
            {"t": "object", "file": name, "size": size, "crc32": crc, "s3_checksum": s3_checksum}
        )

    # -- object checks ---------------------------------------------------
    def head(self, key: str) -> dict[str, Any] | None:
        try:
            resp: dict[str, Any] = self.client.head_object(
                Bucket=self.bucket, Key=key, ChecksumMode="ENABLED"
            )
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise errors.from_s3(exc, bucket=self.bucket, key=key, action="HeadObject") from None
        return resp

    def _matches(self, head: dict[str, Any], size: int, s3_checksum: str) -> bool:
        return int(head.get("ContentLength", -1)) == size and checksum.same_s3_checksum(
            head.get("ChecksumCRC32"), s3_checksum
        )

    def _adopt_existing(self, job: FileJob, head: dict[str, Any]) -> None:
        """An object is already at our key before we sent anything: adopt it only if it is ours."""
        whole, parts = file_checksums(job.local.path, self.opts.part_size_for(job.local.size))
        composite = str(head.get("ChecksumType", "")) == "COMPOSITE" or "-" in str(
            head.get("ChecksumCRC32", "")
        )
        expected = checksum.composite(parts) if composite else checksum.to_b64(whole)
        self._accept_or_refuse(job.key, head, job.local.size, expected)
        self._record_object(job.local.name, job.local.size, whole, str(head.get("ChecksumCRC32")))
        self.progress.add(job.local.size)

    # -- one request -----------------------------------------------------
    def put_bytes(self, key: str, data: bytes, name: str) -> int:
        """PUT DATA at KEY unless that very content is there already; return its CRC32."""
        crc = checksum.crc32(data)
        existing = self.head(key)
        if existing is not None:
            self._accept_or_refuse(key, existing, len(data), checksum.to_b64(crc))
            return crc
        self.limiter.take(len(data))
        try:
            retry.call(
                lambda: self.client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ChecksumCRC32=checksum.to_b64(crc),
                    ContentType=content_type(name),
                    IfNoneMatch="*",
                ),
                what=f"PutObject {key}",
                attempts=self.opts.max_attempts,
            )
        except botocore.exceptions.ClientError as exc:
            if _code(exc) not in ("PreconditionFailed", "412"):
                raise
            existing = self.head(key)
            if existing is None:
                raise errors.from_s3(exc, bucket=self.bucket, key=key, action="PutObject") from None
            self._accept_or_refuse(key, existing, len(data), checksum.to_b64(crc))
        return crc

    def _accept_or_refuse(self, key: str, head: dict[str, Any], size: int, s3_checksum: str) -> None:
        if not self._matches(head, size, s3_checksum):
            raise errors.ObjectConflict(
                f"s3://{self.bucket}/{key} already exists with other content "
                f"(size {head.get('ContentLength')}, CRC32 {head.get('ChecksumCRC32', 'not reported')}); "
                "it is never overwritten: move it away or upload under another --key-prefix"
            )
        log.info("%s is already in S3 with the same size and CRC32: not sent again", key)

    def _single(self, job: FileJob) -> None:
        data = read_range(job.local.path, 0, job.local.size)
        crc = self.put_bytes(job.key, data, job.local.name)
        self._record_object(job.local.name, job.local.size, crc, checksum.to_b64(crc))
        self.progress.add(len(data))

    # -- multipart -------------------------------------------------------
    def _server_parts(self, key: str, upload_id: str) -> dict[int, tuple[str, str]] | None:
        """Parts S3 holds for UPLOAD_ID (number -> (ETag, CRC32)), or None if the upload is gone."""
        out: dict[int, tuple[str, str]] = {}
        try:
            pages = self.client.get_paginator("list_parts").paginate(
                Bucket=self.bucket, Key=key, UploadId=upload_id
            )
            for page in pages:
                for p in page.get("Parts", []):
                    out[int(p["PartNumber"])] = (str(p["ETag"]).strip('"'), str(p.get("ChecksumCRC32", "")))
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in ("NoSuchUpload", "404"):
                return None
            raise errors.from_s3(exc, bucket=self.bucket, key=key, action="ListParts") from None
        return out

    def _multipart(self, job: FileJob, queued: threading.Event) -> None:
        name, size = job.local.name, job.local.size
        fp = self.journal.state.file(name)
        keep: set[int] = set()
        if fp.upload_id:
            part_size = fp.part_size
            count = -(-size // part_size)
            server = self._server_parts(job.key, fp.upload_id)
            if server is None:
                # Completed before the journal heard of it, or aborted meanwhile.
                existing = self.head(job.key)
                if existing is not None and len(fp.parts) == count:
                    crc, expected = self._expected(fp, size)
                    if self._matches(existing, size, expected):
                        self._record_object(name, size, crc, expected)
                        return
                raise UploadVanished()
            for n, (etag, crc) in fp.parts.items():
                if server.get(n) == (etag.strip('"'), checksum.to_b64(crc)):
                    keep.add(n)
            log.info("resuming %s: %d of %d parts already in S3", job.key, len(keep), count)
        else:
            existing = self.head(job.key)
            if existing is not None:
                self._adopt_existing(job, existing)
                return
            part_size = self.opts.part_size_for(size)
            count = -(-size // part_size)
            resp = self.client.create_multipart_upload(
                Bucket=self.bucket,
                Key=job.key,
                ChecksumAlgorithm="CRC32",
                ChecksumType=self.opts.checksum_type,
                ContentType=content_type(name),
            )
            self.journal.append(
                {
                    "t": "mpu",
                    "file": name,
                    "upload_id": resp["UploadId"],
                    "part_size": part_size,
                    "checksum_type": self.opts.checksum_type,
                }
            )
        upload_id = self.journal.state.file(name).upload_id
        self.progress.add(sum(min(part_size, size - (n - 1) * part_size) for n in keep))
        missing = [n for n in range(1, count + 1) if n not in keep]
        self._send_parts(job, upload_id, part_size, missing, queued)
        self._complete(job, upload_id, part_size, count)

    def _send_parts(
        self, job: FileJob, upload_id: str, part_size: int, numbers: list[int], queued: threading.Event
    ) -> None:
        assert self._parts_pool is not None
        file_stop = threading.Event()
        futures: list[Future[None]] = [
            self._parts_pool.submit(self._send_part, job, upload_id, n, part_size, file_stop) for n in numbers
        ]
        queued.set()
        failures: list[BaseException] = []
        for fut in futures:
            try:
                fut.result()
            except BaseException as exc:
                file_stop.set()  # this file cannot finish now: free the workers early
                failures.append(exc)
        if failures:
            raise _first_cause(failures)

    def _send_part(
        self, job: FileJob, upload_id: str, n: int, part_size: int, file_stop: threading.Event
    ) -> None:
        if self.stop.is_set() or file_stop.is_set():
            raise _Cancelled()
        offset = (n - 1) * part_size
        length = min(part_size, job.local.size - offset)
        data = self._buffers.read(job.local.path, offset, length)
        crc = checksum.crc32(data)
        self.limiter.take(length)
        try:
            resp = retry.call(
                lambda: self.client.upload_part(
                    Bucket=self.bucket,
                    Key=job.key,
                    UploadId=upload_id,
                    PartNumber=n,
                    Body=data,
                    ChecksumCRC32=checksum.to_b64(crc),
                ),
                what=f"part {n} of {job.key}",
                attempts=self.opts.max_attempts,
            )
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in ("NoSuchUpload", "404"):
                raise UploadVanished() from None
            raise
        self.journal.append(
            {
                "t": "part",
                "file": job.local.name,
                "upload_id": upload_id,
                "n": n,
                "etag": resp["ETag"],
                "crc32": crc,
            }
        )
        self.progress.add(length)

    def _expected(self, fp: FileProgress, size: int) -> tuple[int, str]:
        """From the journaled parts: the whole file's CRC32 and the checksum S3 must report."""
        count = -(-size // fp.part_size)
        crcs = [fp.parts[n][1] for n in range(1, count + 1)]
        whole = checksum.combine_parts(crcs, fp.part_size, size - (count - 1) * fp.part_size)
        if fp.checksum_type == "COMPOSITE":
            return whole, checksum.composite(crcs)
        return whole, checksum.to_b64(whole)

    def _complete(self, job: FileJob, upload_id: str, part_size: int, count: int) -> None:
        st = os.stat(job.local.path)
        if st.st_size != job.local.size or st.st_mtime_ns != job.local.mtime_ns:
            self.journal.append(
                {"t": "restart", "file": job.local.name, "reason": "file changed during upload"}
            )
            self.abort(job.key, upload_id)
            raise errors.TransientError(
                f"{job.local.path} changed while it was being uploaded; will start it again"
            )
        self.finish_multipart(job.key, job.local.name, job.local.size, upload_id)

    def finish_multipart(self, key: str, name: str, size: int, upload_id: str) -> str:
        """Complete UPLOAD_ID from the parts the journal holds; return the checksum S3 must report.

        Also how ``uploads recover`` completes an upload whose parts the journal
        proves, without the local file.
        """
        fp = self.journal.state.file(name)
        count = -(-size // fp.part_size)
        missing = [n for n in range(1, count + 1) if n not in fp.parts]
        if missing:
            raise errors.TransientError(f"{key}: parts {missing[:5]} are not in the journal yet")
        crc, expected = self._expected(fp, size)
        whole = {"ChecksumCRC32": checksum.to_b64(crc)} if fp.checksum_type == "FULL_OBJECT" else {}
        parts = [
            {"PartNumber": n, "ETag": fp.parts[n][0], "ChecksumCRC32": checksum.to_b64(fp.parts[n][1])}
            for n in range(1, count + 1)
        ]
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                ChecksumType=fp.checksum_type,
                IfNoneMatch="*",
                **whole,
            )
        except botocore.exceptions.ClientError as exc:
            code = _code(exc)
            if code not in ("PreconditionFailed", "412", "NoSuchUpload"):
                raise
            existing = self.head(key)
            if existing is not None and self._matches(existing, size, expected):
                pass  # a retry of a completion that had succeeded
            elif code == "NoSuchUpload":
                raise UploadVanished() from None
            else:
                self.abort(key, upload_id)
                raise errors.ObjectConflict(
                    f"s3://{self.bucket}/{key} appeared with other content during the upload; "
                    "it is never overwritten"
                ) from None
        self._record_object(name, size, crc, expected)
        return expected

    def abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) not in ("NoSuchUpload", "404"):
                log.warning("could not abort multipart upload %s of %s: %s", upload_id, key, _code(exc))

    # -- verification ----------------------------------------------------
    def verify_object(self, key: str, size: int, s3_checksum: str) -> None:
        """Raise VerifyFailed unless KEY in S3 has exactly SIZE bytes and checksum S3_CHECKSUM."""
        head = self.head(key)
        if head is None:
            raise errors.VerifyFailed(f"s3://{self.bucket}/{key} is missing right after its upload")
        if int(head.get("ContentLength", -1)) != size:
            raise errors.VerifyFailed(
                f"s3://{self.bucket}/{key} has {head.get('ContentLength')} bytes, expected {size}"
            )
        reported = head.get("ChecksumCRC32")
        if reported is None:
            raise errors.VerifyFailed(
                f"s3://{self.bucket}/{key}: the server reports no CRC32, so the object cannot be verified; "
                "the local copy is kept"
            )
        if not checksum.same_s3_checksum(reported, s3_checksum):
            raise errors.VerifyFailed(
                f"s3://{self.bucket}/{key} has CRC32 {reported}, expected {s3_checksum}"
            )
