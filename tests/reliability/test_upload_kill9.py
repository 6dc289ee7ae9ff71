"""kill -9 of the uploader at random moments, then ``uploads run`` again: nothing is ever lost.

Each trial queues a session (as ``session stop`` does), starts ``ocap-agent
uploads run`` in a process of its own and SIGKILLs it after a random delay
drawn over the whole length of an uninterrupted run (parts, completion,
manifest, removal). Right after the kill the local copy must be intact unless
S3 already holds every byte; then ``uploads run`` must finish the session.
The count of lost or corrupted sessions must be 0.

The killed processes are forked from the test process with the agent already
imported (a fresh interpreter spends most of a small upload importing boto3,
so kills would mostly land in start-up); the calibration run and the reboot
and server-restart tests use fresh interpreters.

    OCAP_RELIABILITY_KILLS=200 pytest tests/reliability/test_upload_kill9.py   # more trials
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.process
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocap_agent import cli, spool
from ocap_agent.upload import runner, s3client
from tests.reliability.conftest import (
    PrivateS3,
    Trial,
    local_intact,
    lost_or_corrupted,
    make_trial,
    trial_options,
)

MIB = 1024 * 1024
BATCH = 5  # trials killed side by side, to keep the wall time down on a small machine


def start_run(trial: Trial, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``ocap-agent uploads run`` in a fresh interpreter."""
    return subprocess.Popen(
        [sys.executable, "-m", "ocap_agent", "--config", str(trial.config_path), "uploads", "run"],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _child(config_path: str) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    code = 1
    try:
        code = cli.main(["--config", config_path, "uploads", "run"])
    finally:
        os._exit(code)


def fork_run(trial: Trial) -> multiprocessing.process.BaseProcess:
    """``ocap-agent uploads run`` in a forked process (the agent already imported)."""
    proc = multiprocessing.get_context("fork").Process(target=_child, args=(str(trial.config_path),))
    proc.start()
    return proc


def new_trial(tmp: Path, i: int, bucket: str, rng: random.Random) -> Trial:
    sizes = {
        "screen.mkv": rng.randint(6 * MIB, 14 * MIB),
        "screen.mcap": rng.randint(1, 600_000),
        "x.log": 100,
    }
    trial = make_trial(tmp, f"kill-{i:03d}_20261123T120000Z", sizes, bucket)
    spool.enqueue(trial.agent_dir / "spool", trial.folder, reason="session stop")
    return trial


def journal_lines(trial: Trial) -> int:
    path = trial.agent_dir / "uploads" / f"{trial.session_id}.jsonl"
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def run_kill_trials(n: int, private_s3: PrivateS3, env: dict[str, str], tmp: Path) -> None:
    s3 = private_s3.client()
    bucket = f"kill9-{os.getpid()}-{n}"
    s3.create_bucket(Bucket=bucket)
    rng = random.Random(int(os.environ.get("OCAP_RELIABILITY_SEED", "9")))

    # A fresh interpreter runs one session uninterrupted: how many journal records a run writes.
    calib = new_trial(tmp, 999, bucket, rng)
    assert start_run(calib, env).wait(timeout=300) == 0
    records = journal_lines(calib)

    trials = [new_trial(tmp, i, bucket, rng) for i in range(n)]
    lost: dict[str, list[str]] = {}
    stranded: list[str] = []
    killed = 0
    for start in range(0, n, BATCH):
        batch = trials[start : start + BATCH]
        # Kill each run once its journal holds a random number of records (0: at once), plus a
        # random few milliseconds: the moment falls anywhere from start-up to removal, however
        # fast or slow the machine is right now.
        running = [(t, fork_run(t), rng.randint(0, records), rng.uniform(0, 0.02)) for t in batch]
        deadline = time.monotonic() + 300
        while running and time.monotonic() < deadline:
            for item in list(running):
                t, proc, at_records, extra = item
                if not proc.is_alive():
                    running.remove(item)
                elif journal_lines(t) >= at_records:
                    time.sleep(extra)
                    if proc.is_alive():
                        assert proc.pid is not None
                        os.kill(proc.pid, signal.SIGKILL)
                        killed += 1
                    proc.join(timeout=60)
                    running.remove(item)
            time.sleep(0.002)
        assert not running, "a run neither finished nor reached its kill point"
        for t in batch:
            # The invariant right after the crash: a local copy, or every byte in S3.
            if not local_intact(t) and lost_or_corrupted(s3, bucket, t):
                stranded.append(t.session_id)
    client = None
    for t in trials:
        opts = trial_options(t)
        client = client or s3client.make(opts)
        for _ in range(3):  # a resumed run finishes; allow for a transient hiccup on a loaded machine
            if not spool.tickets(opts.spool_dir):
                break
            runner.run(opts, client=client, tty=False)
        problems = lost_or_corrupted(s3, bucket, t)
        if problems or spool.tickets(opts.spool_dir):
            lost[t.session_id] = problems or ["still queued"]
        elif t.folder.exists():
            lost[t.session_id] = ["local copy not removed after verification"]
    print(f"kill -9 trials: {n}, killed mid-run: {killed}, records per run: {records}, lost: {len(lost)}")
    assert stranded == [], f"local copy gone before S3 held every byte: {stranded}"
    assert lost == {}, lost
    assert killed >= n // 2, "most trials must actually be interrupted, or the test proves little"


def test_kill9_at_random_moments_loses_nothing(
    private_s3: PrivateS3, s3_private_env: dict[str, str], tmp_path: Path
) -> None:
    run_kill_trials(int(os.environ.get("OCAP_RELIABILITY_KILLS", "30")), private_s3, s3_private_env, tmp_path)


@pytest.mark.slow
def test_kill9_many_trials(private_s3: PrivateS3, s3_private_env: dict[str, str], tmp_path: Path) -> None:
    run_kill_trials(200, private_s3, s3_private_env, tmp_path)
