"""Interruptions at chosen points: resume from the journal, full disk, manifest last."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ocap_agent.upload import errors, s3client
from ocap_agent.upload.uploader import upload_session
from tests.integration.upload.conftest import UploadEnv, api_options
from tests.integration.upload.support import MIB, objects, run_agent_inprocess, snapshot

SID = "sess-a_20261123T100000Z"


class SimulatedCrash(Exception):
    """Raised from inside the S3 client, as if the process died at that call."""


def counting_client(opts: Any, crash_on_part: int | None = None) -> tuple[Any, list[tuple[str, str]]]:
    """A real client that records each S3 write (operation, key) and may 'crash' at the Nth part."""
    client = s3client.make(opts)
    calls: list[tuple[str, str]] = []

    def before(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload"):
            calls.append((model.name, params.get("Key", "")))
            parts = sum(1 for op, _ in calls if op == "UploadPart")
            if crash_on_part is not None and model.name == "UploadPart" and parts == crash_on_part:
                raise SimulatedCrash(f"crash at part call {parts}")

    client.meta.events.register("before-parameter-build.s3", before)
    return client, calls


def test_resume_after_interruption_sends_only_missing_parts(u: UploadEnv) -> None:
    folder = u.make_session(files={"screen.mkv": 26 * MIB, "screen.mcap": 1000})  # 6 parts of 5 MiB
    original = snapshot(folder)
    opts = api_options(u, max_concurrency=1)
    crashing, _ = counting_client(opts, crash_on_part=4)
    with pytest.raises(SimulatedCrash):
        upload_session(folder, opts, client=crashing)
    assert snapshot(folder) == original, "an interrupted upload leaves the local copy alone"
    assert not any(k.endswith("screen.mkv") for k in objects(u.s3, u.bucket)), "no half object is visible"
    journal = (opts.journal_dir / f"{SID}.jsonl").read_text().splitlines()
    journaled = {json.loads(line)["n"] for line in journal if '"t":"part"' in line}
    assert 3 <= len(journaled) < 6  # parts 1-3 before the crash (a worker may finish one more)

    client, calls = counting_client(opts)
    result = upload_session(folder, opts, client=client)
    mkv = f"recordings/{SID}/screen.mkv"
    assert ("CreateMultipartUpload", mkv) not in calls, "the journal's upload id is reused"
    sent_again = [op for op, key in calls if key == mkv].count("UploadPart")
    assert sent_again == 6 - len(journaled), "only the parts the journal lacks are sent again"
    stored = objects(u.s3, u.bucket)
    assert stored[mkv] == original["screen.mkv"]
    assert result.local_removed and not folder.exists()


def test_manifest_is_written_last(u: UploadEnv) -> None:
    folder = u.make_session(files={"a.mkv": 11 * MIB, "b.mcap": 2 * MIB, "c.log": 10})
    opts = api_options(u)
    client, calls = counting_client(opts)
    upload_session(folder, opts, client=client)
    writes = [(op, key) for op, key in calls if op in ("PutObject", "CompleteMultipartUpload")]
    assert writes[-1] == ("PutObject", f"recordings/{SID}/manifest.json")
    assert {key.rsplit("/", 1)[1] for _, key in writes[:-1]} == {"a.mkv", "b.mcap", "c.log"}


def test_full_disk_is_a_clear_error_keeps_local_and_resumes(
    u: UploadEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal cannot be written (ENOSPC): stop with exit 4, lose nothing, resume later."""
    folder = u.make_session(files={"screen.mkv": 16 * MIB, "screen.mcap": 5000})
    original = snapshot(folder)
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync_fills_disk(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] > 4:  # plan and the first few records fit, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr("ocap_agent.upload.journal.os.fsync", fsync_fills_disk)
    proc = u.upload(folder)
    assert proc.returncode == errors.EXIT_DISK
    assert "disk is full" in proc.stderr and "journal" in proc.stderr
    assert snapshot(folder) == original

    monkeypatch.setattr("ocap_agent.upload.journal.os.fsync", real_fsync)
    proc = u.upload(folder)
    assert proc.returncode == 0, proc.stderr
    stored = objects(u.s3, u.bucket)
    for name, data in original.items():
        assert stored[f"recordings/{SID}/{name}"] == data


def test_torn_journal_tail_is_ignored_and_upload_completes(u: UploadEnv) -> None:
    """A crash in the middle of a journal write leaves half a line: the next run cuts it off."""
    folder = u.make_session(files={"screen.mkv": 11 * MIB})
    original = snapshot(folder)
    opts = api_options(u, max_concurrency=1)
    crashing, _ = counting_client(opts, crash_on_part=2)
    with pytest.raises(SimulatedCrash):
        upload_session(folder, opts, client=crashing)
    journal = opts.journal_dir / f"{SID}.jsonl"
    with open(journal, "ab") as f:
        f.write(b'{"t":"part","file":"screen.mkv","n":2,"et')  # torn write
    proc = run_agent_inprocess(["--config", str(u.config()), "upload", str(folder), "--bucket", u.bucket])
    assert proc.returncode == 0, proc.stderr
    assert objects(u.s3, u.bucket)[f"recordings/{SID}/screen.mkv"] == original["screen.mkv"]
    assert all(json.loads(line) for line in journal.read_text().splitlines())


def test_crash_while_removing_the_local_copy_is_finished_by_the_next_run(
    u: UploadEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recordings already deleted, session.json not yet: the next run must finish, not call it empty."""
    folder = u.make_session(meta={"session_id": "sess-rm", "user": "u1"})
    opts = api_options(u)
    real_unlink = Path.unlink
    deleted: list[str] = []

    def unlink_then_die(self: Path, missing_ok: bool = False) -> None:
        if self.name == "session.json":
            raise SimulatedCrash("died while removing the local copy")
        deleted.append(self.name)
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink_then_die)
    with pytest.raises(SimulatedCrash):
        upload_session(folder, opts, client=s3client.make(opts))
    monkeypatch.setattr(Path, "unlink", real_unlink)
    assert sorted(deleted) == ["screen.mcap", "screen.mkv"]
    assert [p.name for p in folder.iterdir()] == ["session.json"]

    proc = u.upload(folder)
    assert proc.returncode == 0, proc.stderr
    assert not folder.exists()
    assert json.loads(proc.stdout)["manifest"]["user"] == "u1"


def test_larger_files_parts_go_first_so_their_completion_overlaps_the_rest(u: UploadEnv) -> None:
    # Listed small first on purpose: the order comes from the sizes, not the listing.
    folder = u.make_session(files={"a.mcap": 11 * MIB, "b.mkv": 21 * MIB, "c.json": 10})
    original = snapshot(folder)
    opts = api_options(u, max_concurrency=2)
    client, calls = counting_client(opts)
    result = upload_session(folder, opts, client=client)

    parts = [key.rsplit("/", 1)[1] for op, key in calls if op == "UploadPart"]
    # Workers take parts in queue order; one may record its last part of b.mkv
    # just after another records a.mcap's first, never more than one.
    assert parts[:4] == ["b.mkv"] * 4, f"the larger file's parts are sent first: {parts}"
    assert sorted(parts) == ["a.mcap"] * 3 + ["b.mkv"] * 5
    stored = objects(u.s3, u.bucket)
    assert all(stored[f"recordings/{SID}/{name}"] == data for name, data in original.items())
    assert [f["name"] for f in result.manifest["files"]] == sorted(original)
