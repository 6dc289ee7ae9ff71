"""The machine "reboots" (the uploader dies) after the upload but before verification,
or after verification but before the local copy is removed: the journal survives,
the local copy is still there when it must be, and the next run finishes the job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocap_agent import spool
from tests.reliability.conftest import PrivateS3, local_intact, lost_or_corrupted, make_trial
from tests.reliability.test_upload_faults import drain

MIB = 1024 * 1024

# Runs the real CLI with one function replaced by an immediate process death (no cleanup,
# no flush: like pulling the plug as far as this process can tell).
CRASH_AT = """
import os, sys
import importlib
module, name = sys.argv[1].rsplit(".", 1)
owner = importlib.import_module(module)
cls_name, _, attr = name.partition(":")
def die(*args, **kwargs):
    os._exit(137)
if attr:
    setattr(getattr(owner, cls_name), attr, die)
else:
    setattr(owner, cls_name, die)
from ocap_agent import cli
sys.exit(cli.main(sys.argv[2:]))
"""


def run_until_crash(target: str, config: Path, env: dict[str, str]) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_AT, target, "--config", str(config), "uploads", "run"],
        env={**os.environ, **env},
        capture_output=True,
        timeout=300,
        check=False,
    )
    return proc.returncode


def journal_records(agent_dir: Path, session_id: str) -> list[dict[str, object]]:
    path = agent_dir / "uploads" / f"{session_id}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize(
    ("target", "local_must_remain"),
    [
        # After every object is complete in S3, before HeadObject verified it.
        ("ocap_agent.upload.transfer.Transfer:verify_object", True),
        # After the manifest is verified and `complete` is journaled, before the local copy goes.
        ("ocap_agent.upload.uploader._remove_local", True),
    ],
)
def test_reboot_between_steps_resumes_from_the_journal(
    private_s3: PrivateS3,
    s3_private_env: dict[str, str],
    tmp_path: Path,
    target: str,
    local_must_remain: bool,
) -> None:
    s3 = private_s3.client()
    bucket = f"reboot-{os.getpid()}-{abs(hash(target)) % 10000}"
    s3.create_bucket(Bucket=bucket)
    t = make_trial(tmp_path, "reboot_20261123T150000Z", {"screen.mkv": 12 * MIB, "screen.mcap": 4000}, bucket)
    spool.enqueue(t.agent_dir / "spool", t.folder)

    assert run_until_crash(target, t.config_path, s3_private_env) == 137
    records = journal_records(t.agent_dir, t.session_id)
    kinds = [r["t"] for r in records]
    assert kinds.count("object") >= 1, "the journal on disk remembers what S3 acknowledged"
    if target.endswith("verify_object"):
        assert "verified" not in kinds and "complete" not in kinds
    else:
        assert "complete" in kinds
    assert local_intact(t) == local_must_remain
    assert spool.tickets(t.agent_dir / "spool"), "the session is still queued"

    drain(t)
    assert lost_or_corrupted(s3, bucket, t) == []
    assert not t.folder.exists()
    assert not spool.tickets(t.agent_dir / "spool")
    assert journal_records(t.agent_dir, t.session_id)[-1]["t"] == "removed"


@pytest.mark.parametrize(
    "target",
    [
        # Every part is in S3, the upload is not completed yet.
        "ocap_agent.upload.transfer.Transfer:_complete",
        # CompleteMultipartUpload succeeded; the journal has not recorded the object yet.
        "ocap_agent.upload.transfer.Transfer:_record_object",
    ],
)
def test_power_cut_that_loses_the_unsynced_part_records_loses_nothing(
    private_s3: PrivateS3, s3_private_env: dict[str, str], tmp_path: Path, target: str
) -> None:
    """Part records are fsync'd in groups, so a power cut may take the newest ones with it.
    Worse than any real cut: every part record is dropped. The next run sends or adopts
    what the journal no longer proves, and the session arrives intact."""
    s3 = private_s3.client()
    bucket = f"powercut-{os.getpid()}-{abs(hash(target)) % 10000}"
    s3.create_bucket(Bucket=bucket)
    # One multipart file, so the crash point is reached by it and nothing else.
    t = make_trial(tmp_path, "powercut_20261123T150000Z", {"screen.mkv": 12 * MIB}, bucket)
    spool.enqueue(t.agent_dir / "spool", t.folder)

    assert run_until_crash(target, t.config_path, s3_private_env) == 137
    path = t.agent_dir / "uploads" / f"{t.session_id}.jsonl"
    records = journal_records(t.agent_dir, t.session_id)
    assert any(r["t"] == "part" for r in records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records if r["t"] != "part"))
    assert local_intact(t)

    drain(t)
    assert lost_or_corrupted(s3, bucket, t) == []
    assert not t.folder.exists()
    assert journal_records(t.agent_dir, t.session_id)[-1]["t"] == "removed"
