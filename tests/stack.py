"""The local rehearsal stack: real servers on free loopback ports.

- moto in server mode: every AWS API the project calls (EC2, DynamoDB, IAM,
  Route53, SSM, Secrets Manager, S3 for small things).
- versitygw: an S3 gateway over a directory, for uploads whose state must
  survive a server restart.
- Pebble (+ its challenge test server as DNS): see tests/stack_pebble.py.

Used once per test session by tests/conftest.py and by ``make demo``
(``python -m tests.stack``). Only loopback addresses, and every server is
stopped by whoever started it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS_BIN = ROOT / ".tools" / "bin"
VENV_BIN = Path(sys.executable).parent

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    # Never read the operator's own profiles or the instance metadata service.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
VERSITY_ACCESS = "ocaplocal"
VERSITY_SECRET = "ocaplocalsecret"  # a local test server's key, not a credential of any account


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until URL answers HTTP at all (any status), or fail naming the server."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except (urllib.error.URLError, ConnectionError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"server at {url} did not start within {timeout}s") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


@dataclass
class Server:
    name: str
    endpoint: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str] = field(default_factory=list)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def _spawn(
    name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    log.close()
    return proc, log_path


def start_moto(log_dir: Path, port: int | None = None) -> Server:
    port = port or free_port()
    exe = shutil.which("moto_server", path=str(VENV_BIN)) or "moto_server"
    argv = [exe, "-H", "127.0.0.1", "-p", str(port)]
    proc, log_path = _spawn("moto", argv, log_dir)
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(f"{endpoint}/moto-api/", proc=proc)
    return Server("moto", endpoint, proc, log_path, argv)


def versitygw_binary() -> Path:
    exe = TOOLS_BIN / "versitygw"
    if not exe.exists():
        raise RuntimeError(f"{exe} is missing: run `make tools` (tools/install-tools.sh servers)")
    return exe


def start_versitygw(data_dir: Path, log_dir: Path, port: int | None = None) -> Server:
    """An S3 server persisting to DATA_DIR/root (metadata in DATA_DIR/meta): restartable."""
    port = port or free_port()
    root, meta = data_dir / "root", data_dir / "meta"
    root.mkdir(parents=True, exist_ok=True)
    meta.mkdir(parents=True, exist_ok=True)
    argv = [
        str(versitygw_binary()),
        "--access",
        VERSITY_ACCESS,
        "--secret",
        VERSITY_SECRET,
        "--port",
        f"127.0.0.1:{port}",
        "posix",
        "--sidecar",
        str(meta),
        str(root),
    ]
    proc, log_path = _spawn("versitygw", argv, log_dir)
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(endpoint, proc=proc)
    return Server("versitygw", endpoint, proc, log_path, argv)


def restart(server: Server, log_dir: Path) -> Server:
    """Stop SERVER and start it again with the same argv (same port, same data)."""
    server.stop()
    proc, log_path = _spawn(server.name, server.argv, log_dir)
    wait_http(server.endpoint, proc=proc)
    return Server(server.name, server.endpoint, proc, log_path, server.argv)


def aws_env(endpoint: str) -> dict[str, str]:
    """Environment that points boto3, the AWS CLI and amazon.aws modules at ENDPOINT."""
    env = dict(FAKE_CREDENTIALS)
    env["AWS_ENDPOINT_URL"] = endpoint
    return env


def s3_env(endpoint: str) -> dict[str, str]:
    env = aws_env(endpoint)
    env.update(AWS_ACCESS_KEY_ID=VERSITY_ACCESS, AWS_SECRET_ACCESS_KEY=VERSITY_SECRET)
    env.pop("AWS_SESSION_TOKEN", None)
    return env


@contextlib.contextmanager
def running(work_dir: Path | None = None) -> Iterator[dict[str, Server]]:
    """Start moto and versitygw; stop them on exit."""
    work = work_dir or Path(tempfile.mkdtemp(prefix="ocap-stack-"))
    servers: dict[str, Server] = {}
    try:
        servers["moto"] = start_moto(work / "logs")
        servers["s3"] = start_versitygw(work / "s3", work / "logs")
        yield servers
    finally:
        for s in servers.values():
            s.stop()


def main() -> int:
    """``python -m tests.stack`` : run the stack in the foreground, print its env, stop on Ctrl-C."""
    with running() as servers:
        print(f"export AWS_ENDPOINT_URL={servers['moto'].endpoint}")
        print(f"export OCAP_S3_ENDPOINT_URL={servers['s3'].endpoint}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
