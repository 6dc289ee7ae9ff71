"""Fixtures of the pool tests: their own moto server with atomic DynamoDB writes.

See serial_moto.py for why: the broker's guarantee rests on DynamoDB's atomic
conditional writes, which the plain moto server does not provide under
concurrency. Everything else is the same emulator, started once per session
on a free loopback port and stopped after.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import stack


@pytest.fixture(scope="session")
def serial_moto(stack_dir: Path) -> Iterator[stack.Server]:
    port = stack.free_port()
    log_dir = stack_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "serial-moto.log"
    argv = [sys.executable, "-m", "tests.integration.pool.serial_moto", str(port)]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, cwd=stack.ROOT, start_new_session=True
        )
    endpoint = f"http://127.0.0.1:{port}"
    stack.wait_http(f"{endpoint}/moto-api/", proc=proc)
    server = stack.Server("serial-moto", endpoint, proc, log_path, argv)
    yield server
    server.stop()


@pytest.fixture()
def aws_env(serial_moto: stack.Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This folder's tests (and their subprocesses) talk to the serialized server."""
    env = stack.aws_env(serial_moto.endpoint)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env
