"""Runs the molecule scenario tests/molecule/release against the moto server of this session.

converge, idempotence (a second converge must report changed=0), verify and
destroy are molecule's own steps; this test adds that destroy left nothing behind.
Same as ``cd tests && molecule test -s release`` with AWS_ENDPOINT_URL pointing at moto.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from tests.integration.release.harness import ROOT


def test_molecule_scenario_converges_idempotently_verifies_and_destroys(
    ec2: Any, tmp_path: Path, unique: str
) -> None:
    env = dict(
        os.environ,
        RELEASE_SUFFIX=unique,
        MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "molecule"),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        NO_COLOR="1",
        ANSIBLE_NOCOLOR="1",
    )
    proc = subprocess.run(
        ["molecule", "test", "-s", "release"],
        cwd=ROOT / "tests",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    for step in ("converge", "idempotence", "verify", "destroy"):
        assert f"{step}: Executed: Successful" in output, (
            f"molecule step {step} did not succeed:\n{output[-4000:]}"
        )
    template = f"molecule-release-{unique}"
    left = ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": [template]}])
    assert left["LaunchTemplates"] == [], "destroy left the launch template"
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [f"{template}-*"]}])
    assert images["Images"] == [], "destroy left the image"
