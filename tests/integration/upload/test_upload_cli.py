"""The ``ocap-agent upload`` contract, end to end against the local S3 server (versitygw)."""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
import zlib

import boto3
import botocore.config

from tests.integration.upload.conftest import UploadEnv
from tests.integration.upload.support import MIB, objects, run_agent, run_agent_inprocess, snapshot

META = {
    "session_id": "sess-meta-1",
    "user": "teacher",
    "instance_id": "i-0123456789abcdef0",
    "image_version": "1.2.3",
    "started_at": "2026-11-23T10:00:00Z",
    "stopped_at": "2026-11-23T10:30:00Z",
    "graceful_stop": True,
}
SID = "sess-a_20261123T100000Z"  # make_session's default folder name


def test_happy_path_uploads_every_file_verified_then_removes_local(u: UploadEnv) -> None:
    folder = u.make_session(meta=META)
    original = snapshot(folder)
    proc = u.upload(folder, env=u.env)  # a real process: exit code and stdout as a script sees them
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)

    stored = objects(u.s3, u.bucket)
    prefix = "recordings/sess-meta-1/"
    assert set(stored) == {prefix + n for n in original} | {prefix + "manifest.json"}
    for name, data in original.items():
        assert stored[prefix + name] == data, name

    manifest = json.loads(stored[prefix + "manifest.json"])
    assert manifest == out["manifest"]
    assert manifest["session_id"] == "sess-meta-1"
    assert (manifest["user"], manifest["instance_id"], manifest["image_version"]) == (
        "teacher",
        "i-0123456789abcdef0",
        "1.2.3",
    )
    assert (manifest["started_at"], manifest["stopped_at"], manifest["graceful_stop"]) == (
        META["started_at"],
        META["stopped_at"],
        True,
    )
    assert {f["name"]: f["size"] for f in manifest["files"]} == {n: len(d) for n, d in original.items()}
    mkv = next(f for f in manifest["files"] if f["name"] == "screen.mkv")
    assert mkv["parts"] == 3  # 12 MiB + 123 B in 5 MiB parts: multipart, not one PUT
    head = u.s3.head_object(Bucket=u.bucket, Key=mkv["key"], ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == mkv["checksum_crc32"]

    assert not folder.exists(), "local copy must go once every object is verified"
    assert out["local_removed"] is True


def test_folder_name_is_the_session_id_without_metadata(u: UploadEnv) -> None:
    folder = u.make_session(name="s-123_20261123T101500Z", files={"x.mkv": 1000})
    proc = u.upload(folder)
    assert proc.returncode == 0, proc.stderr
    assert set(objects(u.s3, u.bucket)) == {
        "recordings/s-123_20261123T101500Z/x.mkv",
        "recordings/s-123_20261123T101500Z/manifest.json",
    }
    assert json.loads(proc.stdout)["manifest"]["graceful_stop"] is None  # unknown, not claimed


def test_key_prefix_flag_and_keep_local_flag(u: UploadEnv) -> None:
    folder = u.make_session()
    original = snapshot(folder)
    proc = u.upload(folder, "--key-prefix", "site/a", "--keep-local")
    assert proc.returncode == 0, proc.stderr
    assert snapshot(folder) == original, "--keep-local keeps the folder untouched"
    assert {k.rsplit("/", 1)[0] for k in objects(u.s3, u.bucket)} == {f"site/a/{SID}"}


def test_keep_local_config_switch(u: UploadEnv) -> None:
    folder = u.make_session()
    proc = u.upload(folder, config=u.config(keep_local=True))
    assert proc.returncode == 0, proc.stderr
    assert (folder / "screen.mkv").exists()


def test_runs_without_a_config_file(u: UploadEnv) -> None:
    folder = u.make_session(files={"a.mkv": 2000})
    env = dict(u.env, HOME=str(u.tmp / "home"), OCAP_AGENT_CONFIG="")
    proc = run_agent(["upload", str(folder), "--bucket", u.bucket], env)
    assert proc.returncode == 0, proc.stderr
    assert f"recordings/{SID}/manifest.json" in objects(u.s3, u.bucket)


def test_folder_without_recording_is_an_error(u: UploadEnv) -> None:
    folder = u.make_session(files={"notes.txt": 10})
    proc = u.upload(folder)
    assert proc.returncode == 2
    assert "no recording" in proc.stderr and str(folder) in proc.stderr
    assert objects(u.s3, u.bucket) == {}
    assert (folder / "notes.txt").exists()


def test_missing_folder_is_an_error(u: UploadEnv) -> None:
    proc = u.upload(u.tmp / "nope")
    assert proc.returncode == 2
    assert "does not exist" in proc.stderr


def test_missing_bucket_is_a_clear_error_and_keeps_local(u: UploadEnv) -> None:
    folder = u.make_session()
    original = snapshot(folder)
    proc = run_agent(
        ["--config", str(u.config()), "upload", str(folder), "--bucket", "absent-bucket-x1"], u.env
    )
    assert proc.returncode == 3
    assert "bucket 'absent-bucket-x1' does not exist" in proc.stderr
    assert snapshot(folder) == original


def test_wrong_credentials_is_no_permission_and_keeps_local(u: UploadEnv) -> None:
    folder = u.make_session()
    original = snapshot(folder)
    proc = u.upload(
        folder, env=dict(u.env, AWS_ACCESS_KEY_ID="not-a-user", AWS_SECRET_ACCESS_KEY="wrong-secret")
    )
    assert proc.returncode == 3
    assert "no permission" in proc.stderr
    assert snapshot(folder) == original
    assert objects(u.s3, u.bucket) == {}


def test_no_bucket_anywhere_names_the_setting(u: UploadEnv) -> None:
    proc = run_agent_inprocess(["--config", str(u.config()), "upload", str(u.make_session())])
    assert proc.returncode == 2
    assert "upload.bucket" in proc.stderr


def test_bad_setting_names_the_key(u: UploadEnv) -> None:
    folder = u.make_session()
    proc = u.upload(folder, config=u.config(part_size_mb=1))
    assert proc.returncode == 2
    assert "upload.part_size_mb" in proc.stderr and "5" in proc.stderr
    assert folder.exists()


def test_presigned_links_download_the_objects(u: UploadEnv) -> None:
    folder = u.make_session()
    original = snapshot(folder)
    proc = u.upload(folder, config=u.config(presign_expiry_s=600))
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert "X-Amz-Expires=600" in out["manifest_link"]
    for f in out["manifest"]["files"]:
        with urllib.request.urlopen(out["links"][f["key"]], timeout=30) as resp:  # no credentials needed
            assert resp.read() == original[f["name"]]
    with urllib.request.urlopen(out["manifest_link"], timeout=30) as resp:
        assert json.loads(resp.read())["session_id"] == out["session_id"]


def test_archive_option_uploads_one_stored_zip(u: UploadEnv) -> None:
    folder = u.make_session(meta=dict(META, session_id="sess-zip"))
    original = snapshot(folder)
    proc = u.upload(folder, "--archive")
    assert proc.returncode == 0, proc.stderr
    stored = objects(u.s3, u.bucket)
    assert set(stored) == {"recordings/sess-zip/sess-zip.zip", "recordings/sess-zip/manifest.json"}
    with zipfile.ZipFile(io.BytesIO(stored["recordings/sess-zip/sess-zip.zip"])) as zf:
        assert {i.filename: zf.read(i) for i in zf.infolist()} == original
        assert all(i.compress_type == zipfile.ZIP_STORED for i in zf.infolist())
    manifest = json.loads(stored["recordings/sess-zip/manifest.json"])
    assert {m["name"] for m in manifest["archive"]["members"]} == set(original)
    assert not folder.exists()
    assert not list(u.journal_dir.glob("*.zip")), "the temporary archive is removed too"


def test_different_object_at_our_key_is_never_overwritten(u: UploadEnv) -> None:
    key = f"recordings/{SID}/screen.mkv"
    u.s3.put_object(Bucket=u.bucket, Key=key, Body=b"someone else's bytes")
    folder = u.make_session()
    original = snapshot(folder)
    proc = u.upload(folder)
    assert proc.returncode == 3
    assert "already exists with other content" in proc.stderr
    assert u.s3.get_object(Bucket=u.bucket, Key=key)["Body"].read() == b"someone else's bytes"
    assert snapshot(folder) == original


def test_reupload_of_identical_content_is_adopted(u: UploadEnv) -> None:
    """The journal was lost but S3 already holds our exact bytes: adopt them, no failure."""
    folder = u.make_session(files={"screen.mkv": 11 * MIB, "small.mcap": 1000})
    original = snapshot(folder)
    first = u.upload(folder, "--keep-local")
    assert first.returncode == 0, first.stderr
    for j in u.journal_dir.glob("*.jsonl"):
        j.unlink()  # journal lost
    u.s3.delete_object(Bucket=u.bucket, Key=f"recordings/{SID}/manifest.json")
    second = u.upload(folder)
    assert second.returncode == 0, second.stderr
    assert "not sent again" in second.stderr
    stored = objects(u.s3, u.bucket)
    for name, data in original.items():
        assert stored[f"recordings/{SID}/{name}"] == data


def test_composite_checksum_type_is_verified_too(u: UploadEnv) -> None:
    """COMPOSITE: HeadObject must report the CRC32 of our parts' CRC32s.

    Gap named: versitygw 1.0.14 reports a composite without its "-<parts>" suffix,
    so boto3's default download validation takes it for a whole-object CRC32 and
    fails; the bytes are compared here with that validation off."""
    folder = u.make_session(files={"screen.mkv": 12 * MIB})
    original = snapshot(folder)
    proc = u.upload(folder, config=u.config(checksum_type="COMPOSITE"))
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["manifest"]["files"]
    assert entry["checksum_type"] == "COMPOSITE" and entry["checksum_crc32"].endswith("-3")
    plain = boto3.client(
        "s3",
        endpoint_url=u.env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=u.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=u.env["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(response_checksum_validation="when_required"),
    )
    body = plain.get_object(Bucket=u.bucket, Key=entry["key"])["Body"].read()
    assert body == original["screen.mkv"]
    assert entry["crc32_hex"] == f"{zlib.crc32(body):08x}"


def test_bad_checksum_type_names_the_key(u: UploadEnv) -> None:
    proc = u.upload(u.make_session(), config=u.config(checksum_type="MD5"))
    assert proc.returncode == 2
    assert "upload.checksum_type" in proc.stderr and "FULL_OBJECT" in proc.stderr
