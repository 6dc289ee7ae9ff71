"""Run bootstrap.yml / teardown.yml against the moto server and read what they did."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests import stack

ROOT = Path(__file__).resolve().parents[3]
RECAP = re.compile(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


@dataclass
class Run:
    argv: list[str]
    returncode: int
    output: str

    @property
    def changed(self) -> int:
        match = RECAP.search(self.output)
        assert match, f"no play recap in:\n{self.output[-3000:]}"
        return int(match.group(2))

    def ok(self) -> Run:
        assert self.returncode == 0, f"{' '.join(self.argv)} failed:\n{self.output[-6000:]}"
        return self


def env_for(endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(stack.aws_env(endpoint))
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        PYTHONPATH=str(ROOT),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    return env


def playbook(env: dict[str, str], name: str, *extra: str, variables: dict[str, Any] | None = None) -> Run:
    argv = ["ansible-playbook", f"playbooks/{name}.yml", *extra]
    if variables:
        argv += ["-e", json.dumps(variables)]
    proc = subprocess.run(argv, cwd=ROOT, env=env, text=True, capture_output=True, check=False)
    return Run(argv, proc.returncode, proc.stdout + proc.stderr)
