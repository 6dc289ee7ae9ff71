"""Run the molecule `windows` scenario on real EC2, or say why not.

The scenario launches a Windows Server 2022 instance, applies the image roles
(playbooks/build.yml without the seal), runs them again (idempotence), verifies
and terminates the instance. It needs real AWS credentials, which this suite
deliberately never has (tests/conftest.py replaces them with fakes), so it runs
only when asked: OCAP_MOLECULE_AWS_PROFILE names the profile to use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PROFILE = os.environ.get("OCAP_MOLECULE_AWS_PROFILE", "")
MOLECULE = shutil.which("molecule") or str(Path(sys.executable).parent / "molecule")


def _skip_reason() -> str | None:
    if not PROFILE:
        return (
            "needs real EC2: set OCAP_MOLECULE_AWS_PROFILE to an AWS profile that may run instances "
            "(about 45 minutes and ~$0.40 per run; see docs/operations.md)"
        )
    if not Path(MOLECULE).exists():
        return "molecule is not installed in this environment"
    return None


@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
def test_windows_scenario_converges_idempotently_and_verifies() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_PROFILE=PROFILE,
        AWS_REGION=os.environ.get("OCAP_MOLECULE_AWS_REGION", "us-east-1"),
        OCAP_REPO_ROOT=str(ROOT),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
    )
    proc = subprocess.run(
        [MOLECULE, "test", "--scenario-name", "windows"],
        cwd=ROOT / "tests",
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=3 * 3600,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
