"""Small policies of the uploader: retries, bandwidth, names, settings, error wording."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from ocap_agent import config
from ocap_agent.upload import bandwidth, errors, layout, options, retry


def client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "UploadPart",
    )


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (client_error("BadDigest", 400), True),
        (client_error("XAmzContentSHA256Mismatch", 400), True),
        (client_error("InternalError", 500), True),
        (client_error("SlowDown", 503), True),
        (client_error("AccessDenied", 403), False),
        (client_error("NoSuchBucket", 404), False),
        (client_error("NoSuchUpload", 404), False),
        (client_error("PreconditionFailed", 412), False),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), True),
        (ValueError("bug"), False),
    ],
)
def test_retry_classification(exc: Exception, retryable: bool) -> None:
    assert retry.is_retryable(exc) is retryable


def test_retry_call_retries_then_succeeds_and_is_bounded() -> None:
    sleeps: list[float] = []
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise client_error("BadDigest", 400)
        return "ok"

    assert retry.call(flaky, what="part", attempts=4, sleep=sleeps.append) == "ok"
    assert len(sleeps) == 2 and all(0 <= s <= 8 for s in sleeps)

    def always() -> str:
        raise client_error("InternalError", 500)

    with pytest.raises(botocore.exceptions.ClientError):
        retry.call(always, what="part", attempts=3, sleep=sleeps.append)
    assert len(sleeps) == 4  # 2 more waits, then it gives up

    def denied() -> str:
        raise client_error("AccessDenied", 403)

    with pytest.raises(botocore.exceptions.ClientError):
        retry.call(denied, what="part", attempts=5, sleep=sleeps.append)
    assert len(sleeps) == 4  # not retried at all


def test_bandwidth_limiter_keeps_the_average_rate() -> None:
    now = [0.0]
    waited: list[float] = []

    def sleep(s: float) -> None:
        waited.append(s)
        now[0] += s

    lim = bandwidth.Limiter(1000.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        lim.take(500)  # 5000 bytes at 1000 B/s: about 4 s after the first second's burst
    assert 3.9 <= now[0] <= 4.1
    assert bandwidth.Limiter(0).take(10**9) == 0.0  # unlimited never waits


def test_discover_requires_a_recording_and_skips_hidden_files(tmp_path: Path) -> None:
    folder = tmp_path / "s-1_20261123T000000Z"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    with pytest.raises(errors.InvalidSession, match=r"no recording \(no \*\.mkv or \*\.mcap"):
        layout.discover(folder)
    (folder / "a.mcap").write_bytes(b"1")
    (folder / ".a.mkv.partial").write_bytes(b"1")
    (folder / "sub").mkdir()
    session = layout.discover(folder)
    assert [f.name for f in session.files] == ["a.mcap", "notes.txt"]
    assert session.session_id == "s-1_20261123T000000Z"


def test_session_id_from_metadata_and_unsafe_names_refused(tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "a.mkv").write_bytes(b"1")
    (folder / "session.json").write_text(json.dumps({"session_id": "abc-123"}))
    assert layout.discover(folder).session_id == "abc-123"
    (folder / "session.json").write_text(json.dumps({"session_id": "../escape"}))
    with pytest.raises(errors.InvalidSession, match=r"session id '\.\./escape' cannot name an S3 object"):
        layout.discover(folder)
    (folder / "session.json").write_text("{not json")
    with pytest.raises(errors.InvalidSession, match="not valid session metadata"):
        layout.discover(folder)


def test_object_layout() -> None:
    assert layout.object_key("recordings", "s1", "a.mkv") == "recordings/s1/a.mkv"
    assert layout.object_key("", "s1", "a.mkv") == "s1/a.mkv"
    assert layout.normalize_prefix("/site//a/") == "site/a"
    with pytest.raises(errors.InvalidSetting, match=r"upload\.key_prefix"):
        layout.normalize_prefix("a/../b")


def cfg(**upload: Any) -> config.Config:
    return config.from_dict({"upload": {"bucket": "b", **upload}})


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ({"part_size_mb": 4}, "upload.part_size_mb"),
        ({"max_concurrency": 0}, "upload.max_concurrency"),
        ({"presign_expiry_s": 8 * 24 * 3600}, "upload.presign_expiry_s"),
        ({"max_attempts": 0}, "upload.max_attempts"),
        ({"checksum_type": "SHA1"}, "upload.checksum_type"),
        ({"bucket": " "}, "upload.bucket"),
    ],
)
def test_bad_settings_name_their_key(setting: dict[str, Any], key: str) -> None:
    with pytest.raises(errors.InvalidSetting, match=key.replace(".", r"\.")):
        options.from_config(cfg(**setting))


def test_flags_override_config_and_part_size_grows_for_huge_files() -> None:
    opts = options.from_config(cfg(keep_local=False), bucket="flag-bucket", key_prefix="x/", keep_local=True)
    assert (opts.bucket, opts.prefix, opts.keep_local) == ("flag-bucket", "x", True)
    assert opts.part_size_for(10 * 1024**3) == opts.part_size
    assert opts.part_size_for(10_000 * opts.part_size + 1) == 2 * opts.part_size  # S3 allows 10,000 parts


@pytest.mark.parametrize(
    ("code", "kind", "words"),
    [
        ("NoSuchBucket", errors.BucketMissing, "does not exist"),
        ("AccessDenied", errors.AccessDenied, "no permission"),
        ("InvalidAccessKeyId", errors.AccessDenied, "no permission"),
        ("PreconditionFailed", errors.ObjectConflict, "never overwritten"),
        ("InternalError", errors.TransientError, "InternalError"),
    ],
)
def test_s3_errors_become_actionable_messages(code: str, kind: type[errors.UploadError], words: str) -> None:
    err = errors.from_s3(client_error(code, 400), bucket="bkt", key="k")
    assert isinstance(err, kind)
    assert words in str(err) and "bkt" in str(err)


def test_missing_credentials_is_a_permission_problem_not_a_retry() -> None:
    err = errors.from_s3(botocore.exceptions.NoCredentialsError(), bucket="bkt")
    assert isinstance(err, errors.AccessDenied) and err.permanent
    assert "no AWS credentials" in str(err)
    unreachable = errors.from_s3(
        botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), bucket="b"
    )
    assert isinstance(unreachable, errors.TransientError) and not unreachable.permanent
