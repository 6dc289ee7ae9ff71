"""Demo step ``upload``: upload a finished recording session and show its manifest and link.

Uses the session another step recorded (``ctx.facts["session_dir"]``, with
``ctx.facts["agent_config"]``) when there is one, else writes a small
synthetic session (random .mkv and .mcap, plus the agent's session.json).
Then ``ocap-agent upload`` sends it to the rehearsal S3 server (versitygw,
bucket ``ctx.facts.get("bucket")`` or a demo bucket): parts in parallel,
CRC32 on every part and on each object, manifest last, local copy removed
after verification. Prints the manifest and the pre-signed download link,
fetches the link to prove it works, and leaves ``manifest`` (plus
``manifest_key`` and ``upload_link``) in ctx.facts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions

from tests import stack

MIB = 1024 * 1024


def _s3(endpoint: str) -> Any:
    env = stack.s3_env(endpoint)
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def _ensure_bucket(s3: Any, bucket: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
    except botocore.exceptions.ClientError:
        s3.create_bucket(Bucket=bucket)


def _synthetic_session(root: Path, version: str) -> Path:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    sid = f"demo-{now:%H%M%S}"
    folder = root / f"{sid}_{now:%Y%m%dT%H%M%SZ}"
    folder.mkdir(parents=True)
    (folder / f"{sid}.mkv").write_bytes(os.urandom(24 * MIB + 12345))  # 2 parts of 16 MiB
    (folder / f"{sid}.mcap").write_bytes(os.urandom(700_000))
    meta = {
        "session_id": sid,
        "user": "demo-user",
        "instance_id": "i-0demo000000000000",
        "image_version": version,
        "started_at": (now - dt.timedelta(minutes=15)).isoformat().replace("+00:00", "Z"),
        "stopped_at": now.isoformat().replace("+00:00", "Z"),
        "graceful_stop": True,
    }
    (folder / "session.json").write_text(json.dumps(meta, indent=2))
    return folder


def _config(ctx: Any, bucket: str) -> Path:
    """The agent config for this step: the one another step wrote, pointed at the S3 server."""
    base: dict[str, Any] = {}
    given = ctx.facts.get("agent_config")
    if given:
        base = json.loads(Path(given).read_text())
    else:
        base = {"paths": {"data_dir": str(ctx.work / "agent")}, "upload": {"update_state": False}}
    upload = base.setdefault("upload", {})
    upload.update(bucket=bucket, endpoint_url=ctx.s3.endpoint)
    path = ctx.work / "agent-upload.json"
    path.write_text(json.dumps(base, indent=2))
    return path


def run(ctx: Any) -> list[str]:
    bucket = ctx.facts.get("bucket") or "ocap-recordings-demo"
    s3 = _s3(ctx.s3.endpoint)
    _ensure_bucket(s3, bucket)
    given = ctx.facts.get("session_dir")
    folder = Path(given) if given else _synthetic_session(ctx.work / "sessions", ctx.version)
    config = _config(ctx, bucket)

    # The S3 server's keys (the AWS emulator takes any); the S3 endpoint comes from the
    # config (upload.endpoint_url), so AWS_ENDPOINT_URL keeps the state table on the emulator.
    s3_keys = stack.s3_env(ctx.s3.endpoint)
    env = {k: v for k, v in ctx.env.items() if k != "AWS_SESSION_TOKEN"}
    env.update({k: s3_keys[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    argv = ["ocap-agent", "--config", str(config), "upload", str(folder)]
    print(f"    $ {' '.join(argv)}", flush=True)
    proc = subprocess.run(argv, env=env, text=True, capture_output=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"demo step failed: ocap-agent upload exited {proc.returncode}")
    out = json.loads(proc.stdout)
    manifest = out["manifest"]
    link = out["manifest_link"]
    print("    manifest.json:")
    for line in json.dumps(manifest, indent=2, sort_keys=True).splitlines():
        print(f"      {line}")
    if not link.startswith(("http://", "https://")):
        raise SystemExit(f"demo step failed: unexpected link {link!r}")
    with urllib.request.urlopen(link, timeout=30) as resp:  # noqa: S310 - http(s) checked above; no credentials
        fetched = json.loads(resp.read())
    if fetched.get("session_id") != manifest["session_id"]:
        raise SystemExit("demo step failed: the pre-signed link did not return this session's manifest")

    ctx.facts.update(manifest=manifest, manifest_key=out["manifest_key"], upload_link=link)
    total = sum(f["size"] for f in manifest["files"])
    return [
        f"session {manifest['session_id']}: {len(manifest['files'])} files, {total / MIB:.1f} MiB "
        f"to s3://{bucket}/{manifest['prefix']} in {out['seconds']:.1f}s, verified (CRC32), manifest last",
        f"local copy removed: {out['local_removed']}; state table: {out['state_table']}",
        f"pre-signed link (fetched OK, expires in {_expiry(link)}): {link}",
    ]


def _expiry(link: str) -> str:
    for part in link.split("&"):
        if part.startswith("X-Amz-Expires="):
            seconds = int(part.split("=", 1)[1])
            return f"{seconds // 3600} h" if seconds >= 3600 else f"{seconds} s"
    return "?"
