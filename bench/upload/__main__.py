"""``python -m bench.upload``: one run, one local S3 server, one synthetic session, every contender.

    python -m bench.upload                      # 1 GiB .mkv + 64 MiB .mcap, 1 round
    python -m bench.upload --mkv-mib 256 --mcap-mib 16 --rounds 3

Starts a private versitygw over a temp dir, writes an incompressible session
(random bytes, like encoded video), builds an environment like the image's
for the Python contenders (agent_env), runs each contender on it in turn
(round robin, starting one further each round, so a noisy neighbour hurts
all alike), deletes what each uploaded, and prints wall time, throughput,
client and server CPU, ours/each ratios (median of the rounds) and ours'
peak memory. Everything it creates is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from bench.upload import agent_env
from bench.upload.peers import Contender, contenders, env_for
from tests import stack

MIB = 1024 * 1024


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 8 * MIB)
            f.write(os.urandom(n))
            left -= n


def run_one(c: Contender, env: dict[str, str]) -> tuple[float, int, float]:
    """Wall seconds, peak RSS (bytes) and CPU seconds of one contender run; fail loudly if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(c.argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{c.name} failed ({proc.returncode}): {err[-2000:]}")
    return seconds, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """User+system CPU seconds used so far by process PID (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def empty_bucket(s3: Any, bucket: str) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=o["Key"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--mkv-mib", type=int, default=1024)
    ap.add_argument("--mcap-mib", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--part-mb", type=int, default=16, help="part size for ours and the s3transfer variant")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--only", nargs="*", help="contender names to run (default: all)")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    server = None
    try:
        python = agent_env.build(work / "agent-env")
        server = stack.start_versitygw(work / "s3", work / "logs")
        env = env_for(server.endpoint, stack.VERSITY_ACCESS, stack.VERSITY_SECRET)
        s3 = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id=stack.VERSITY_ACCESS,
            aws_secret_access_key=stack.VERSITY_SECRET,
        )
        bucket = "bench-upload"
        s3.create_bucket(Bucket=bucket)
        folder = work / "session" / "bench-session_20261123T000000Z"
        folder.mkdir(parents=True)
        write_random(folder / "screen.mkv", args.mkv_mib * MIB)
        write_random(folder / "screen.mcap", args.mcap_mib * MIB)
        total = (args.mkv_mib + args.mcap_mib) * MIB
        print(
            f"session: {args.mkv_mib} MiB .mkv + {args.mcap_mib} MiB .mcap (random bytes); server versitygw"
        )
        tuning = f"{args.part_mb} MiB parts, {args.concurrency} in parallel"
        print(f"ours and s3transfer: {tuning}; rounds: {args.rounds}")

        times: dict[str, list[float]] = {}
        labels: dict[str, str] = {}
        cpu: dict[str, list[float]] = {}
        server_cpu: dict[str, list[float]] = {}
        peak_ours = 0
        for rnd in range(args.rounds):
            round_contenders = contenders(
                folder,
                bucket,
                server.endpoint,
                f"r{rnd}",
                part_mb=args.part_mb,
                concurrency=args.concurrency,
                work=work,
                python=str(python),
            )
            chosen = [c for c in round_contenders if not args.only or c.name in args.only]
            # The order rotates each round: no contender always runs right after the
            # same one (whose writeback and garbage the server may still be working off).
            shift = rnd % len(chosen) if chosen else 0
            for c in chosen[shift:] + chosen[:shift]:
                if why := c.available():
                    print(f"  skip {c.name}: {why}")
                    continue
                server_before = process_cpu(server.proc.pid)
                seconds, rss, cpu_s = run_one(c, env)
                server_cpu.setdefault(c.name, []).append(process_cpu(server.proc.pid) - server_before)
                times.setdefault(c.name, []).append(seconds)
                cpu.setdefault(c.name, []).append(cpu_s)
                labels[c.name] = c.label
                if c.ours:
                    peak_ours = max(peak_ours, rss)
                print(
                    f"  round {rnd + 1} {c.name:<11} {seconds:7.2f}s  {total / MIB / seconds:8.1f} MiB/s",
                    flush=True,
                )
                empty_bucket(s3, bucket)

        med = {name: statistics.median(ts) for name, ts in times.items()}
        # Client and server share the machine's cores, so the server's CPU per
        # contender (what that client's requests made it do) is reported too.
        print("\n| contender | median wall time | throughput | client CPU (user+sys) | server CPU |")
        print("|---|---:|---:|---:|---:|")
        for name, secs in med.items():
            cpu_med, srv_med = statistics.median(cpu[name]), statistics.median(server_cpu[name])
            print(
                f"| {labels[name]} | {secs:.2f} s | {total / MIB / secs:.0f} MiB/s"
                f" | {cpu_med:.1f} s | {srv_med:.1f} s |"
            )
        if "ours" in med:
            print(f"\npeak memory of ours (max RSS): {peak_ours / MIB:.0f} MiB")
            fastest = min(med.values())
            print("\nratios (ours / each, wall time; below 1.0 means ours is faster):")
            for name, secs in med.items():
                if name != "ours":
                    print(f"  ours/{name:<11} {med['ours'] / secs:5.2f}")
            print(f"  ours/fastest     {med['ours'] / fastest:5.2f}")
    finally:
        if server:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
