"""What the image build hands the agent role: pinned dependencies, and the names bootstrap created."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)$")


def pins(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = PIN.match(line)
        assert m, f"{path.relative_to(ROOT)}: '{line}' is not an exact pin (name==version)"
        out[m.group(1).lower()] = m.group(2)
    return out


def requirement_name(spec: str) -> str:
    return re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower()


def test_agent_lock_pins_every_dependency_at_the_project_version() -> None:
    agent = pins(ROOT / "agent_src" / "requirements.lock")
    project = pins(ROOT / "requirements.lock")
    declared = tomllib.loads((ROOT / "agent_src" / "pyproject.toml").read_text())["project"]["dependencies"]
    for spec in declared:
        assert requirement_name(spec) in agent, (
            f"agent_src/requirements.lock does not pin {spec}: run `make lock`"
        )
    differ = {n: (v, project.get(n)) for n, v in agent.items() if project.get(n) != v}
    assert not differ, f"agent pins differ from requirements.lock (agent, project): {differ}; run `make lock`"


def build_var(name: str) -> object:
    """NAME as the playbooks see it (playbooks/group_vars applied)."""
    # Ad-hoc runs load the JSON callback only when asked to.
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
    }
    argv = ["ansible", "--playbook-dir", str(ROOT / "playbooks"), "localhost"]
    out = subprocess.run(
        [*argv, "-m", "ansible.builtin.debug", "-a", f"var={name}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return json.loads(out)["plays"][0]["tasks"][0]["hosts"]["localhost"][name]


def test_image_build_installs_the_agent_lock() -> None:
    lock = pins(ROOT / "agent_src" / "requirements.lock")
    assert build_var("agent_pip_constraints") == [f"{n}=={v}" for n, v in lock.items()]


def test_agent_uploads_under_the_prefix_bootstrap_grants() -> None:
    assert build_var("agent_upload_key_prefix") == build_var("ocap_recordings_prefix") == "recordings"
