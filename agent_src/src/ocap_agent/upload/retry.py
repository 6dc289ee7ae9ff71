"""Our one retry layer, on top of botocore's.

botocore (``standard`` mode) already retries throttling, 5xx and connection
errors with jittered backoff. It deliberately does not resend a request the
server rejected as damaged (``BadDigest``: the bytes did not match our CRC32),
nor does it retry once its per-client retry quota is spent during a long
outage. For a part we can always read the same bytes again from disk, so this
layer retries those cases too, a bounded number of times with full jitter.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import botocore.exceptions

from ocap_agent.upload import errors

log = logging.getLogger("ocap_agent.upload")
T = TypeVar("T")

_PERMANENT_CODES = {
    "NoSuchBucket",
    "NoSuchUpload",
    "NoSuchKey",
    "PreconditionFailed",
    "InvalidPart",
    "InvalidPartOrder",
    "EntityTooSmall",
    "InvalidRequest",
    "InvalidArgument",
    "MalformedXML",
    "MethodNotAllowed",
    "NotImplemented",
    "404",
    "412",
}


def is_retryable(exc: BaseException) -> bool:
    code = errors.error_code(exc)
    if code in errors.INTEGRITY_CODES:
        return True
    if isinstance(exc, botocore.exceptions.ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in _PERMANENT_CODES or code in errors._ACCESS_CODES:
            return False
        return status >= 500 or status in (408, 429) or code in ("RequestTimeout", "SlowDown", "Throttling")
    return isinstance(exc, (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError))


def call(
    fn: Callable[[], T],
    *,
    what: str,
    attempts: int = 4,
    base_s: float = 0.5,
    cap_s: float = 8.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run FN; on a retryable error wait a jittered, growing delay and run it again (ATTEMPTS in all)."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt >= attempts or not is_retryable(exc):
                raise
            delay = random.uniform(0, min(cap_s, base_s * 2**attempt))  # noqa: S311 - jitter, not crypto
            log.warning(
                "retrying %s after %s (attempt %d of %d, waiting %.1fs)",
                what,
                errors.error_code(exc) or type(exc).__name__,
                attempt,
                attempts,
                delay,
            )
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
