"""CRC32 combination must equal a straight CRC32 of the bytes: the manifest's and S3's proof depend on it."""

from __future__ import annotations

import random
import zlib

import pytest

from ocap_agent.upload import checksum


@pytest.mark.parametrize(("size", "part"), [(1, 1), (10, 3), (1000, 1000), (100_003, 4096), (65_536, 8192)])
def test_combined_part_crcs_equal_the_whole_file_crc(size: int, part: int) -> None:
    data = random.Random(size).randbytes(size)
    parts = [data[i : i + part] for i in range(0, size, part)]
    combined = checksum.combine_parts([zlib.crc32(p) for p in parts], part, len(parts[-1]))
    assert combined == zlib.crc32(data)


def test_combine_two_pieces() -> None:
    assert checksum.combine(zlib.crc32(b"hello "), zlib.crc32(b"world"), 5) == zlib.crc32(b"hello world")
    assert checksum.combine(123, 0, 0) == 123


def test_base64_round_trip_matches_s3_encoding() -> None:
    # S3 sends the big-endian 4 bytes, base64: CRC32("abc") = 0x352441c2.
    assert checksum.to_b64(zlib.crc32(b"abc")) == "NSRBwg=="
    assert checksum.from_b64("NSRBwg==") == 0x352441C2
    with pytest.raises(ValueError, match="not a CRC32"):
        checksum.from_b64("AAAA")


def test_composite_is_crc_of_part_crcs_with_part_count() -> None:
    crcs = [zlib.crc32(b"a"), zlib.crc32(b"b")]
    raw = b"".join(c.to_bytes(4, "big") for c in crcs)
    assert checksum.composite(crcs) == checksum.to_b64(zlib.crc32(raw)) + "-2"


@pytest.mark.parametrize(
    ("reported", "expected", "same"),
    [
        ("NSRBwg==", "NSRBwg==", True),
        ("NSRBwg==-3", "NSRBwg==-3", True),
        ("NSRBwg==", "NSRBwg==-3", True),  # a server that drops the suffix
        ("NSRBwg==-2", "NSRBwg==-3", False),
        ("AAAAAA==", "NSRBwg==", False),
        (None, "NSRBwg==", False),
        ("", "NSRBwg==", False),
    ],
)
def test_same_s3_checksum(reported: str | None, expected: str, same: bool) -> None:
    assert checksum.same_s3_checksum(reported, expected) is same
