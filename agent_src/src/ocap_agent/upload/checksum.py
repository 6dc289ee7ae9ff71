"""CRC32 as S3 speaks it (base64 of the big-endian value), and combining part CRCs.

S3 checks the CRC32 we send with every part and, for a multipart upload of
checksum type FULL_OBJECT, the CRC32 of the whole object at completion. We
read each byte of a file once (in parallel parts), so the whole-file CRC is
computed by combining the parts' CRCs (zlib's ``crc32_combine``, which the
standard library does not expose) instead of reading the file again.
"""

from __future__ import annotations

import base64
import zlib

_POLY = 0xEDB88320  # reflected CRC-32 (the one zlib, S3 and zip use)


def crc32(data: bytes | bytearray | memoryview, value: int = 0) -> int:
    return zlib.crc32(data, value)


def to_b64(value: int) -> str:
    return base64.b64encode(value.to_bytes(4, "big")).decode("ascii")


def from_b64(text: str) -> int:
    raw = base64.b64decode(text.encode("ascii"), validate=True)
    if len(raw) != 4:
        raise ValueError(f"not a CRC32 checksum: {text!r}")
    return int.from_bytes(raw, "big")


def _times(mat: list[int], vec: int) -> int:
    total, i = 0, 0
    while vec:
        if vec & 1:
            total ^= mat[i]
        vec >>= 1
        i += 1
    return total


def _square(mat: list[int]) -> list[int]:
    return [_times(mat, mat[n]) for n in range(32)]


def shift_operator(length: int) -> list[int]:
    """The GF(2) matrix that appends LENGTH zero bytes to a CRC32 register."""
    # Start from the operator for one zero bit, square it up to one byte, then
    # build LENGTH bytes by binary exponentiation (as zlib's crc32_combine).
    one_bit = [_POLY] + [1 << n for n in range(31)]
    op = _square(_square(_square(one_bit)))  # 8 zero bits
    result: list[int] | None = None
    while length:
        if length & 1:
            result = op if result is None else [_times(op, result[n]) for n in range(32)]
        length >>= 1
        if length:
            op = _square(op)
    return result if result is not None else [1 << n for n in range(32)]


def combine(crc1: int, crc2: int, len2: int, operator: list[int] | None = None) -> int:
    """CRC32 of A+B from crc(A), crc(B) and len(B); pass OPERATOR for len2 to reuse it."""
    if len2 <= 0:
        return crc1
    op = operator if operator is not None else shift_operator(len2)
    return _times(op, crc1) ^ crc2


def combine_parts(part_crcs: list[int], part_size: int, last_size: int) -> int:
    """Whole-object CRC32 from equal-sized parts (the last one may be shorter)."""
    if not part_crcs:
        return 0
    full_op = shift_operator(part_size)
    total = part_crcs[0]
    for i, value in enumerate(part_crcs[1:], start=1):
        is_last = i == len(part_crcs) - 1
        size = last_size if is_last else part_size
        total = combine(total, value, size, full_op if size == part_size else None)
    return total


def composite(part_crcs: list[int]) -> str:
    """S3's COMPOSITE multipart checksum: the CRC32 of the parts' CRC32s, then ``-<parts>``."""
    raw = b"".join(c.to_bytes(4, "big") for c in part_crcs)
    return f"{to_b64(zlib.crc32(raw))}-{len(part_crcs)}"


def same_s3_checksum(reported: str | None, expected: str) -> bool:
    """Whether S3's reported checksum is EXPECTED. Some servers omit a composite's ``-<parts>``
    suffix (versitygw does); when both carry it, the part counts must agree too."""
    if not reported:
        return False
    r_base, _, r_parts = reported.partition("-")
    e_base, _, e_parts = expected.partition("-")
    return r_base == e_base and (not r_parts or not e_parts or r_parts == e_parts)
