"""What can go wrong with an upload, in words an operator can act on.

Every failure is an :class:`UploadError` whose message names the session, the
object or the config key involved, and whose ``exit_code`` tells scripts what
to do next: fix the input (2), fix the bucket or the role (3), free disk (4), or
simply try again later (75, the session stays queued).
"""

from __future__ import annotations

import errno
from typing import Any

EXIT_OK = 0
EXIT_INPUT = 2
EXIT_REFUSED = 3
EXIT_DISK = 4
EXIT_RETRY_LATER = 75  # sysexits EX_TEMPFAIL

# Codes S3 (and S3-compatible servers) use when the caller may not do this.
_ACCESS_CODES = {
    "AccessDenied",
    "AllAccessDisabled",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "AccountProblem",
    "XAdminUserNotFound",  # versitygw's answer to an unknown access key
    "403",
}
# Data that arrived damaged: resend the same bytes (botocore does not, by design).
INTEGRITY_CODES = {"BadDigest", "InvalidDigest", "IncompleteBody", "XAmzContentSHA256Mismatch"}


class UploadError(Exception):
    exit_code = EXIT_RETRY_LATER
    # A permanent error needs a person; a transient one is retried by the next run.
    permanent = False


class InvalidSession(UploadError):
    """The folder is not an uploadable session (no recording, bad name...)."""

    exit_code = EXIT_INPUT
    permanent = True


class InvalidSetting(UploadError):
    """A setting or flag has a value the uploader cannot use."""

    exit_code = EXIT_INPUT
    permanent = True


class BucketMissing(UploadError):
    exit_code = EXIT_REFUSED
    permanent = True


class AccessDenied(UploadError):
    exit_code = EXIT_REFUSED
    permanent = True


class ObjectConflict(UploadError):
    """A different object already exists where ours belongs: never overwritten."""

    exit_code = EXIT_REFUSED
    permanent = True


class DiskFull(UploadError):
    exit_code = EXIT_DISK


class LocalFileError(UploadError):
    exit_code = EXIT_DISK


class VerifyFailed(UploadError):
    """The object in S3 is not byte-for-byte what we sent (size or checksum differ)."""


class TransientError(UploadError):
    """Network, throttling or server trouble that outlasted the retries."""


class Busy(UploadError):
    """Another uploader holds this session right now."""


def error_code(exc: BaseException) -> str:
    response: Any = getattr(exc, "response", None)
    if isinstance(response, dict):
        err = response.get("Error") or {}
        code = str(err.get("Code") or "")
        if code:
            return code
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return str(status or "")
    return ""


def from_local(exc: OSError, what: str) -> UploadError:
    """Turn an OSError on local disk into a clear error naming WHAT failed."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(
            f"{what}: the disk is full ({exc.strerror}); free space and run `ocap-agent uploads run`"
        )
    return LocalFileError(f"{what}: {exc.strerror or exc}")


def from_s3(exc: BaseException, *, bucket: str, key: str = "", action: str = "") -> UploadError:
    """Classify a botocore error into an UploadError with an actionable message."""
    code = error_code(exc)
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    doing = f" ({action})" if action else ""
    if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError", "NoAuthTokenError"):
        return AccessDenied(
            f"no AWS credentials for {where}{doing}: {exc}; on an instance, check its instance profile"
        )
    if code in ("NoSuchBucket", "404") and not key:
        return BucketMissing(f"bucket {bucket!r} does not exist (or this endpoint does not serve it){doing}")
    if code == "NoSuchBucket":
        return BucketMissing(f"bucket {bucket!r} does not exist{doing}")
    if code in _ACCESS_CODES:
        return AccessDenied(
            f"no permission for {where}{doing}: {code}; "
            "check the credentials and the instance role's S3 policy"
        )
    if code in ("PreconditionFailed", "412"):
        return ObjectConflict(f"{where} already exists with other content{doing}; it is never overwritten")
    if code in ("InvalidBucketName", "KeyTooLongError", "InvalidArgument"):
        return InvalidSetting(f"{where} was refused{doing}: {code}: {exc}")
    return TransientError(f"{where}{doing}: {code or type(exc).__name__}: {exc}")
