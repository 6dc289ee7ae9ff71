"""Fixtures for the agent's integration tests: a config file, the simulated recorder, the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocap_agent import cli, state

ROOT = Path(__file__).resolve().parents[3]
FAKE = ROOT / "tests" / "fakes" / "fake_ocap.py"
OCAP_AGENT = Path(sys.executable).parent / "ocap-agent"

# Tiny delays keep the suite fast; the behaviour under test does not depend on them.
QUICK = ["--start-delay", "0.05", "--write-interval", "0.01", "--chunk-bytes", "2048"]


def fake_command(*flags: str) -> list[str]:
    return [sys.executable, str(FAKE), *QUICK, *flags]


def wait_until(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    """Wait for something another process does in the background; fail naming it."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class Agent:
    """One agent installation under a temporary data dir, driven through its CLI."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        self.root = root
        self.config = config
        self.config_path = root / "agent.json"
        self.write()

    @property
    def data_dir(self) -> Path:
        return Path(self.config["paths"]["data_dir"])

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "sessions"

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    def write(self) -> None:
        self.config_path.write_text(json.dumps(self.config, indent=2))

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``ocap-agent --config CFG ARGS`` through its entry function, in this process.

        The console script is ``ocap_agent.cli:main``; calling it here skips
        only the interpreter start-up, which on a busy machine costs seconds
        per call. Recorders and supervisors are still real processes.
        """
        out, err = io.StringIO(), io.StringIO()
        saved = {k: os.environ.get(k) for k in env or {}}
        os.environ.update(env or {})
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(["--config", str(self.config_path), *args])
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            logging.getLogger("ocap_agent").handlers.clear()
        return subprocess.CompletedProcess(["ocap-agent", *args], code, out.getvalue(), err.getvalue())

    def run_process(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The installed ``ocap-agent`` console script, as Task Scheduler runs it."""
        return subprocess.run(
            [str(OCAP_AGENT), "--config", str(self.config_path), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(OCAP_AGENT), "--config", str(self.config_path), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def sessions(self, action: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run ``python -m ocap_agent.sessions ACTION`` (see popen_sessions) to completion."""
        return subprocess.run(
            [sys.executable, "-m", "ocap_agent.sessions", action, "--config", str(self.config_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen_sessions(self, action: str) -> subprocess.Popen[str]:
        """``python -m ocap_agent.sessions ACTION``: what ``ocap-agent session ACTION`` runs,
        without the CLI loading every other command first (seconds per call on a busy machine)."""
        return subprocess.Popen(
            [sys.executable, "-m", "ocap_agent.sessions", action, "--config", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def current(self) -> dict[str, Any] | None:
        p = self.data_dir / "current.json"
        return json.loads(p.read_text()) if p.exists() else None

    def session_dirs(self) -> list[Path]:
        return (
            sorted(p for p in self.sessions_dir.iterdir() if p.is_dir()) if self.sessions_dir.is_dir() else []
        )

    def tickets(self) -> list[dict[str, Any]]:
        if not self.spool_dir.is_dir():
            return []
        return [json.loads(p.read_text()) for p in sorted(self.spool_dir.glob("*__*.json"))]

    def meta(self, session_dir: Path) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((session_dir / "session.json").read_text())
        return data


@pytest.fixture()
def make_agent(tmp_path: Path) -> Callable[..., Agent]:
    """Agent(recorder flags..., table=..., **recorder config overrides)."""

    def make(
        *flags: str, table: str = "", instance_id: str = "i-0aaaaaaaaaaaaaaa1", **recorder: Any
    ) -> Agent:
        cfg: dict[str, Any] = {
            "paths": {"data_dir": str(tmp_path / "data")},
            "instance": {"instance_id": instance_id, "pool": "test-pool"},
            "state": {"table": table},
            "recorder": {
                "command": fake_command(*flags),
                "start_timeout_s": 20,
                "stop_grace_s": 10,
                **recorder,
            },
            "logging": {"level": "DEBUG"},
        }
        return Agent(tmp_path, cfg)

    return make


@pytest.fixture()
def state_table(ddb: Any, unique: str) -> state.StateTable:
    name = f"agent-state-{unique}"
    ddb.create_table(**state.table_definition(name))
    return state.StateTable(ddb, name)
