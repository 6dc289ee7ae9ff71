"""``ocap-agent uploads run|status|recover``: the durable spool and seed 002's recovery, automated."""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any

import pytest

from ocap_agent import spool
from ocap_agent.upload import journal, runner
from ocap_agent.upload.uploader import upload_session
from tests.integration.upload.conftest import UploadEnv, api_options
from tests.integration.upload.support import MIB, objects, run_agent_inprocess, snapshot
from tests.integration.upload.test_upload_resume import SimulatedCrash, counting_client


def uploads(u: UploadEnv, *args: str, **upload: Any) -> Any:
    return run_agent_inprocess(["--config", str(u.config(**upload)), "uploads", *args, "--bucket", u.bucket])


def test_run_drains_the_spool_oldest_first(u: UploadEnv) -> None:
    spool_dir = u.tmp / "agent" / "spool"
    folders = [u.make_session(name=f"s{i}_20261123T10000{i}Z", files={"r.mkv": 1000 + i}) for i in range(3)]
    originals = [snapshot(f) for f in folders]
    for f in folders:
        spool.enqueue(spool_dir, f, reason="session stop")
    proc = uploads(u, "run")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [x["session_id"] for x in lines] == [f.name for f in folders]
    assert {x["status"] for x in lines} == {"uploaded"}
    assert spool.tickets(spool_dir) == []
    stored = objects(u.s3, u.bucket)
    for f, orig in zip(folders, originals, strict=True):
        assert stored[f"recordings/{f.name}/r.mkv"] == orig["r.mkv"]
        assert not f.exists()
    status = uploads(u, "status", "--json")
    assert {r["session_id"]: r["state"] for r in json.loads(status.stdout)} == {
        f.name: "done" for f in folders
    }


def test_failure_keeps_the_session_queued_with_the_reason(u: UploadEnv) -> None:
    spool_dir = u.tmp / "agent" / "spool"
    folder = u.make_session(files={"r.mkv": 7 * MIB})
    original = snapshot(folder)
    spool.enqueue(spool_dir, folder)
    cfg = u.config()
    bad = run_agent_inprocess(["--config", str(cfg), "uploads", "run", "--bucket", "absent-bucket-zz9"])
    assert bad.returncode == 3
    (ticket,) = spool.tickets(spool_dir)
    assert ticket.attempts == 1 and ticket.needs_attention
    assert "absent-bucket-zz9" in ticket.last_error and "does not exist" in ticket.last_error
    assert snapshot(folder) == original

    status = run_agent_inprocess(["--config", str(cfg), "uploads", "status"])
    assert status.returncode == 0
    row = next(line for line in status.stdout.splitlines() if folder.name in line)
    assert "needs-attention" in row and "7.0 MiB" in row

    good = uploads(u, "run")
    assert good.returncode == 0, good.stderr
    assert spool.tickets(spool_dir) == []
    assert objects(u.s3, u.bucket)[f"recordings/{folder.name}/r.mkv"] == original["r.mkv"]


def test_run_resumes_an_interrupted_direct_upload(u: UploadEnv) -> None:
    """``ocap-agent upload`` died half way and nobody queued the session: ``uploads run`` finishes it."""
    folder = u.make_session(files={"r.mkv": 16 * MIB})
    original = snapshot(folder)
    opts = api_options(u, max_concurrency=1)
    client, _ = counting_client(opts, crash_on_part=2)
    with pytest.raises(SimulatedCrash):
        upload_session(folder, opts, client=client)
    proc = uploads(u, "run")
    assert proc.returncode == 0, proc.stderr
    assert objects(u.s3, u.bucket)[f"recordings/{folder.name}/r.mkv"] == original["r.mkv"]
    assert not folder.exists()


def test_recover_completes_what_the_journal_proves_and_aborts_the_rest(u: UploadEnv) -> None:
    folder = u.make_session(files={"r.mkv": 11 * MIB})
    original = snapshot(folder)
    opts = api_options(u)
    client, _ = counting_client(opts)

    def crash_before_complete(model: Any, **_: Any) -> None:
        if model.name == "CompleteMultipartUpload":
            raise SimulatedCrash("died before CompleteMultipartUpload")

    client.meta.events.register("before-parameter-build.s3", crash_before_complete)
    with pytest.raises(SimulatedCrash):
        upload_session(folder, opts, client=client)
    # The worst case of seed 002: the parts are in S3, the local file is gone.
    shutil.rmtree(folder)
    # An orphan of this agent's session (created, then the process died before journaling it)...
    own_orphan = u.s3.create_multipart_upload(Bucket=u.bucket, Key=f"recordings/{folder.name}/other.bin")
    # ...and a fresh upload of a session this agent does not know (another instance's).
    foreign = u.s3.create_multipart_upload(Bucket=u.bucket, Key="recordings/someone-else/x.mkv")

    proc = uploads(u, "recover")
    assert proc.returncode == 0, proc.stderr
    actions = {a["key"]: a for a in map(json.loads, proc.stdout.splitlines())}
    assert actions[f"recordings/{folder.name}/r.mkv"]["action"] == "completed"
    assert actions[own_orphan["Key"]]["action"] == "aborted"
    assert actions[foreign["Key"]]["action"] == "skipped"
    assert objects(u.s3, u.bucket)[f"recordings/{folder.name}/r.mkv"] == original["r.mkv"]
    left = u.s3.list_multipart_uploads(Bucket=u.bucket).get("Uploads", [])
    assert [x["Key"] for x in left] == ["recordings/someone-else/x.mkv"]
    u.s3.abort_multipart_upload(Bucket=u.bucket, Key=foreign["Key"], UploadId=foreign["UploadId"])


def test_recover_leaves_a_partial_upload_with_its_local_file_to_run(u: UploadEnv) -> None:
    folder = u.make_session(files={"r.mkv": 16 * MIB})
    opts = api_options(u, max_concurrency=1)
    client, _ = counting_client(opts, crash_on_part=2)
    with pytest.raises(SimulatedCrash):
        upload_session(folder, opts, client=client)
    proc = uploads(u, "recover")
    (action,) = [json.loads(x) for x in proc.stdout.splitlines()]
    assert action["action"] == "left" and "uploads run" in action["detail"]
    assert uploads(u, "run").returncode == 0


def test_direct_upload_of_a_queued_session_takes_it_off_the_queue(u: UploadEnv) -> None:
    spool_dir = u.tmp / "agent" / "spool"
    folder = u.make_session(files={"r.mkv": 3000})
    spool.enqueue(spool_dir, folder, reason="session stop")
    proc = u.upload(folder)
    assert proc.returncode == 0, proc.stderr
    assert spool.tickets(spool_dir) == []
    assert json.loads(uploads(u, "run").stdout or "[]") == []  # nothing left to do


def test_unreachable_s3_keeps_the_session_queued_for_a_later_run(u: UploadEnv) -> None:
    from tests.stack import free_port

    spool_dir = u.tmp / "agent" / "spool"
    folder = u.make_session(files={"r.mkv": 3000})
    original = snapshot(folder)
    spool.enqueue(spool_dir, folder)
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cfg = u.config(endpoint_url=dead, max_attempts=2, connect_timeout_s=0.5)
    proc = run_agent_inprocess(["--config", str(cfg), "uploads", "run", "--bucket", u.bucket])
    assert proc.returncode == 75  # try again later
    (ticket,) = spool.tickets(spool_dir)
    assert ticket.attempts == 1 and not ticket.needs_attention
    assert "Could not connect" in ticket.last_error
    assert snapshot(folder) == original
    assert uploads(u, "run").returncode == 0  # S3 is back
    assert spool.tickets(spool_dir) == []


def test_run_deletes_only_old_journals_of_finished_sessions(u: UploadEnv) -> None:
    opts = api_options(u, journal_retention_days=30)
    old_done = u.make_session(name="old-done_20261001T100000Z", files={"r.mkv": 1000})
    new_done = u.make_session(name="new-done_20261120T100000Z", files={"r.mkv": 1000})
    for folder in (old_done, new_done):
        upload_session(folder, opts, client=counting_client(opts)[0])
    # An interrupted one: its journal proves parts and must stay, however old.
    stuck = u.make_session(name="old-stuck_20261001T110000Z", files={"r.mkv": 12 * MIB})
    crashing, _ = counting_client(opts, crash_on_part=2)
    with pytest.raises(SimulatedCrash):
        upload_session(stuck, api_options(u, max_concurrency=1), client=crashing)
    month_ago = time.time() - 31 * 86400
    for sid in (old_done.name, stuck.name):
        os.utime(journal.path_for(opts.journal_dir, sid), (month_ago, month_ago))

    assert runner.prune_journals(api_options(u, journal_retention_days=0)) == [], "0 keeps every journal"
    assert runner.prune_journals(opts) == [old_done.name]
    assert sorted(journal.sessions(opts.journal_dir)) == sorted([new_done.name, stuck.name])
    assert not (opts.journal_dir / f"{old_done.name}.lock").exists()
    assert snapshot(stuck), "the interrupted session's files are untouched"


def test_journal_retention_is_checked(u: UploadEnv) -> None:
    proc = uploads(u, "run", journal_retention_days=-1)
    assert proc.returncode != 0
    assert "upload.journal_retention_days" in proc.stderr
