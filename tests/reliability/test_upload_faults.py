"""Uploads through a fault-injecting proxy (500/503, connection resets, stalls, corrupted
bytes) and across restarts of the S3 server itself: every session arrives byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from ocap_agent import spool
from ocap_agent.upload import runner, s3client
from tests.fakes.fault_proxy import FaultProxy
from tests.reliability.conftest import (
    PrivateS3,
    Trial,
    local_intact,
    lost_or_corrupted,
    make_trial,
    trial_options,
)

MIB = 1024 * 1024


def drain(trial: Trial, passes: int = 12, **override: object) -> None:
    """Run ``uploads run`` until the spool is empty (a bounded number of times), as the schedule would."""
    opts = trial_options(trial, **override)
    client = s3client.make(opts)
    for _ in range(passes):
        if not spool.tickets(opts.spool_dir):
            return
        runner.run(opts, client=client, tty=False)


def test_faulty_network_loses_nothing(
    private_s3: PrivateS3, s3_private_env: dict[str, str], tmp_path: Path
) -> None:
    s3 = private_s3.client()
    bucket = f"faults-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    rates = {"500": 0.06, "503": 0.06, "reset": 0.05, "reset_mid_body": 0.05, "stall": 0.02, "corrupt": 0.06}
    schedule = {12: "stall", 25: "corrupt", 40: "reset_mid_body", 55: "stall", 70: "corrupt"}
    with FaultProxy(private_s3.endpoint, rates=rates, schedule=schedule, seed=5, stall_s=2.5) as proxy:
        trials = []
        for i in range(6):
            t = make_trial(
                tmp_path,
                f"fault-{i}_20261123T130000Z",
                {"screen.mkv": 11 * MIB + i, "screen.mcap": 70_000 + i},
                bucket,
                endpoint_url=proxy.endpoint,
                read_timeout_s=1.0,
                connect_timeout_s=1.0,
            )
            spool.enqueue(t.agent_dir / "spool", t.folder)
            trials.append(t)
        for t in trials:
            drain(t)
            assert local_intact(t) or not lost_or_corrupted(s3, bucket, t)
        counts = dict(proxy.counts)
    lost = {t.session_id: p for t in trials if (p := lost_or_corrupted(s3, bucket, t))}
    print(f"fault proxy: {counts}; lost or corrupted sessions: {len(lost)}")
    assert lost == {}
    assert all(not t.folder.exists() for t in trials), "verified sessions are removed locally"
    for fault in ("500", "503", "reset", "reset_mid_body", "stall", "corrupt"):
        assert counts.get(fault, 0) > 0, f"no {fault} was injected: the test proved nothing about it"


def test_server_restarted_mid_upload_loses_nothing(
    private_s3: PrivateS3, s3_private_env: dict[str, str], tmp_path: Path
) -> None:
    """The S3 server is stopped and started again (once gracefully, once killed) during uploads."""
    s3 = private_s3.client()
    bucket = f"restart-{os.getpid()}"
    s3.create_bucket(Bucket=bucket)
    lost: dict[str, list[str]] = {}
    for i, kill in enumerate((False, True)):
        # A bandwidth limit makes the upload last long enough to be interrupted for sure.
        t = make_trial(
            tmp_path,
            f"restart-{i}_20261123T140000Z",
            {"screen.mkv": 24 * MIB},
            bucket,
            max_bandwidth_mbps=48.0,
        )
        spool.enqueue(t.agent_dir / "spool", t.folder)
        proc = subprocess.Popen(
            [sys.executable, "-m", "ocap_agent", "--config", str(t.config_path), "uploads", "run"],
            env={**os.environ, **s3_private_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        journal = t.agent_dir / "uploads" / f"{t.session_id}.jsonl"
        deadline = time.monotonic() + 120
        while '"t":"part"' not in (journal.read_text() if journal.exists() else ""):
            assert time.monotonic() < deadline and proc.poll() is None, "upload never started"
            time.sleep(0.05)
        restarter = threading.Thread(target=private_s3.restart, kwargs={"kill": kill})
        restarter.start()
        restarter.join()
        proc.wait(timeout=300)
        assert local_intact(t) or not lost_or_corrupted(s3, bucket, t)
        drain(t)  # whatever the interrupted run left is finished here
        if problems := lost_or_corrupted(s3, bucket, t):
            lost[t.session_id] = problems
    assert lost == {}
