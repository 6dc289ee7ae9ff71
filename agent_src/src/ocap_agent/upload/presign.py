"""Pre-signed download links: a time-limited URL per object instead of a public bucket.

A link is valid until the expiry or until the credentials that signed it
expire, whichever comes first: links signed with an instance role's
temporary credentials live at most as long as those credentials.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def links(client: Any, bucket: str, keys: Iterable[str], expiry_s: int) -> dict[str, str]:
    return {
        key: str(
            client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expiry_s
            )
        )
        for key in keys
    }
