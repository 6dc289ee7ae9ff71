"""playbooks/release.yml end to end against the moto server: manifest in, release out."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.release.harness import ROOT

VERSION = (ROOT / "VERSION").read_text().strip()


def _playbook(*extra: str) -> tuple[int, dict[str, Any], str]:
    env = dict(
        os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg")
    )
    proc = subprocess.run(
        ["ansible-playbook", "playbooks/release.yml", *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report: dict[str, Any] = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report = {}
    return proc.returncode, report, proc.stdout + proc.stderr


def _task(report: dict[str, Any], name: str) -> dict[str, Any]:
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == name:
                result: dict[str, Any] = task["hosts"]["localhost"]
                return result
    raise AssertionError(f"task {name!r} did not run")


def test_releases_the_manifest_image_and_a_second_run_changes_nothing(
    ec2: Any, make_image: Callable[..., str], tmp_path: Path, unique: str
) -> None:
    environment = f"t{unique}"  # own template name and image line: nothing shared with other tests
    tags = {"Project": "ocap-workstations", "Environment": environment, "Version": VERSION}
    image = make_image(f"ocap-workstation-{VERSION}-{unique}", **tags)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "builds": [
                    {
                        "name": "workstation",
                        "builder_type": "amazon-ebs",
                        # Packer lists every region it copied to: the release takes this region's.
                        "artifact_id": f"us-west-2:ami-0123456789abcdef0,us-east-1:{image}",
                        "custom_data": {"version": VERSION},
                    }
                ],
                "last_run_uuid": "b1",
            }
        )
    )
    args = ["-e", f"ocap_environment={environment}", "-e", f"release_manifest={manifest}"]

    rc, report, output = _playbook(*args)
    assert rc == 0, output
    release = _task(report, "Release the image as a launch template version")
    assert release["changed"] is True
    assert (release["image_id"], release["version"], release["version_number"]) == (image, VERSION, 1)
    template_name = f"ocap-workstations-{environment}-workstation"
    [version] = ec2.describe_launch_template_versions(LaunchTemplateName=template_name)[
        "LaunchTemplateVersions"
    ]
    assert version["VersionDescription"] == VERSION
    assert version["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"
    shown = "\n".join(_task(report, "Show the release")["msg"])
    assert f"Released {VERSION}: {image}" in shown and "version 1 of launch template" in shown

    rc, report, output = _playbook(*args)
    assert rc == 0, output
    assert report["stats"]["localhost"]["changed"] == 0, output


def test_without_a_manifest_or_an_image_it_says_what_to_do(tmp_path: Path, aws_env: dict[str, str]) -> None:
    rc, _report, output = _playbook("-e", f"release_manifest={tmp_path}/none.json")
    assert rc != 0
    assert f"release_manifest: {tmp_path}/none.json does not exist" in output
    assert "-e release_image_id=ami-..." in output
