"""Session builders and checks shared by the upload contract and reliability tests."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def write_session(
    root: Path,
    name: str,
    files: dict[str, int],
    meta: dict[str, Any] | None = None,
) -> Path:
    """A session folder with random (incompressible) files of the given sizes."""
    folder = root / name
    folder.mkdir(parents=True)
    for fname, size in files.items():
        (folder / fname).write_bytes(os.urandom(size))
    if meta is not None:
        (folder / "session.json").write_text(json.dumps(meta))
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def objects(s3: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


def run_agent_inprocess(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run the CLI in this process (the environment is the test's): same contract, no start-up cost."""
    from ocap_agent import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(args)
    logging.getLogger("ocap_agent").handlers.clear()
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def run_agent(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ocap_agent", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
