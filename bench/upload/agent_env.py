"""A Python environment like the image's: the agent wheel plus its pinned dependencies, nothing else.

The image installs the agent from its wheel with agent_src/requirements.lock as
constraints into an environment of its own, where pip compiles the bytecode. The
project's .venv is not that: it also holds Ansible, moto, cryptography,
pyOpenSSL and awscrt, which botocore imports when they are present, and that
start-up cost is not the agent's. Every Python contender (the seeds' way,
s3transfer, ours) runs from this environment, so none pays for the others'.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build(dest: Path) -> Path:
    """Create the environment in DEST from the working tree; return its python."""
    uv = Path(sys.executable).with_name("uv")
    wheel = subprocess.run(
        [str(ROOT / "tools" / "build-agent-wheel.sh"), str(dest / "wheel")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(dest / "venv")], check=True)
    python = dest / "venv" / "bin" / "python"
    subprocess.run(
        [
            str(uv),
            "pip",
            "install",
            "--quiet",
            "--compile-bytecode",
            "--python",
            str(python),
            "--constraint",
            str(ROOT / "agent_src" / "requirements.lock"),
            wheel,
        ],
        check=True,
    )
    return python
