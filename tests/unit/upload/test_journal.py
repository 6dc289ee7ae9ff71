"""The journal replays to exactly what S3 acknowledged, survives torn writes, fails loudly on a full disk."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from ocap_agent.upload import errors, journal

PLAN = {"t": "plan", "bucket": "b", "prefix": "p", "sources": [{"name": "a.mkv", "size": 25, "mtime_ns": 1}]}


def test_replay_rebuilds_parts_objects_and_completion(tmp_path: Path) -> None:
    with journal.Journal(tmp_path, "s1") as j:
        j.append(PLAN)
        j.append({"t": "mpu", "file": "a.mkv", "upload_id": "u1", "part_size": 10})
        j.append({"t": "part", "file": "a.mkv", "upload_id": "u1", "n": 1, "etag": '"e1"', "crc32": 11})
        j.append({"t": "part", "file": "a.mkv", "upload_id": "u1", "n": 3, "etag": '"e3"', "crc32": 33})
    state = journal.load(tmp_path, "s1")
    fp = state.files["a.mkv"]
    assert (fp.upload_id, fp.part_size, fp.parts) == ("u1", 10, {1: ('"e1"', 11), 3: ('"e3"', 33)})
    assert fp.bytes_done() == 15  # part 1 (10 B) + last part 3 (5 B)
    assert not state.complete


def test_torn_last_line_is_dropped_and_appends_continue_cleanly(tmp_path: Path) -> None:
    with journal.Journal(tmp_path, "s1") as j:
        j.append(PLAN)
    path = journal.path_for(tmp_path, "s1")
    with open(path, "ab") as f:
        f.write(b'{"t":"mpu","file":"a.mkv","upl')  # the crash came mid-write
    with journal.Journal(tmp_path, "s1") as j:
        assert j.state.files["a.mkv"].upload_id == ""
        j.append({"t": "mpu", "file": "a.mkv", "upload_id": "u2", "part_size": 10})
    lines = path.read_text().splitlines()
    assert [json.loads(x)["t"] for x in lines] == ["plan", "mpu"]
    assert journal.load(tmp_path, "s1").files["a.mkv"].upload_id == "u2"


def test_restart_and_new_plan_mark_old_uploads_superseded(tmp_path: Path) -> None:
    with journal.Journal(tmp_path, "s1") as j:
        j.append(PLAN)
        j.append({"t": "mpu", "file": "a.mkv", "upload_id": "u1", "part_size": 10})
        j.append({"t": "restart", "file": "a.mkv", "reason": "changed"})
        j.append({"t": "mpu", "file": "a.mkv", "upload_id": "u2", "part_size": 10})
        j.append(dict(PLAN, bucket="other"))
    state = journal.load(tmp_path, "s1")
    assert state.superseded == {"u1": "a.mkv", "u2": "a.mkv"}
    assert state.files["a.mkv"].upload_id == ""


def test_parts_of_an_old_upload_id_do_not_count(tmp_path: Path) -> None:
    with journal.Journal(tmp_path, "s1") as j:
        j.append(PLAN)
        j.append({"t": "mpu", "file": "a.mkv", "upload_id": "u2", "part_size": 10})
        j.append({"t": "part", "file": "a.mkv", "upload_id": "u1", "n": 1, "etag": "x", "crc32": 1})
    assert journal.load(tmp_path, "s1").files["a.mkv"].parts == {}


def test_full_disk_raises_disk_full_and_stays_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j = journal.Journal(tmp_path, "s1")
    j.append(PLAN)

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(journal.os, "fsync", no_space)
    with pytest.raises(errors.DiskFull, match="disk is full"):
        j.append({"t": "complete"})
    monkeypatch.undo()
    with pytest.raises(errors.DiskFull):  # no further writes after a failed one
        j.append({"t": "complete"})
    j.close()
    # A record is appended only after the fact it states happened, so one whose fsync
    # failed may survive and is still true; what must not happen is a write after the failure.
    kinds = [json.loads(x)["t"] for x in journal.path_for(tmp_path, "s1").read_text().splitlines()]
    assert kinds.count("complete") <= 1


def test_sessions_lists_journals(tmp_path: Path) -> None:
    for sid in ("b", "a"):
        with journal.Journal(tmp_path, sid) as j:
            j.append(PLAN)
    assert journal.sessions(tmp_path) == ["a", "b"]
    assert journal.sessions(tmp_path / "missing") == []


def test_part_records_are_synced_in_groups_and_everything_else_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = journal.Journal(tmp_path, "s1")
    j.append(PLAN)
    j.append({"t": "mpu", "file": "a.mkv", "upload_id": "u1", "part_size": 8, "checksum_type": "FULL_OBJECT"})
    synced: list[int] = []
    monkeypatch.setattr(journal.os, "fsync", lambda fd: synced.append(len(j.path.read_bytes())))

    def part(n: int) -> None:
        j.append({"t": "part", "file": "a.mkv", "upload_id": "u1", "n": n, "etag": f"e{n}", "crc32": n})

    for n in range(1, journal.PART_SYNC_EVERY):
        part(n)
    assert synced == []  # written (a killed process loses none) but not yet fsync'd
    part(journal.PART_SYNC_EVERY)
    assert len(synced) == 1
    part(journal.PART_SYNC_EVERY + 1)
    j.append({"t": "object", "file": "a.mkv", "size": 8, "crc32": 1, "s3_checksum": "x"})
    # The object record's fsync covers the part written before it.
    assert len(synced) == 2 and synced[-1] == len(j.path.read_bytes())
    part(journal.PART_SYNC_EVERY + 2)
    j.close()  # what is still unsynced is synced on close
    assert len(synced) == 3
    state = journal.load(tmp_path, "s1")
    assert len(state.file("a.mkv").parts) == journal.PART_SYNC_EVERY + 2
