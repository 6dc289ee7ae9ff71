"""Demo step: release a stand-in workstation image as the launch template's default version.

Registers two images in the emulator the way Packer names and tags them (an older
release and this VERSION), writes a Packer-style manifest for the new one, runs
``playbooks/release.yml`` on it (keeping one image, so the older one is retired
with its snapshot), then runs it again to show that nothing changes.

Uses, when an earlier step left them: facts ``security_group_id``,
``instance_profile``, ``subnet_id``. Leaves: ``image_id``, ``launch_template``
(name), ``template_version``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import boto3

from tools.demo import DemoContext

PROJECT = "ocap-workstations"
ENVIRONMENT = "dev"


def _register(ec2: Any, version: str, stamp: str) -> str:
    """A stand-in for a Packer-built AMI: same name pattern, same tags."""
    name = f"ocap-workstation-{version}-{stamp}"
    image_id: str = ec2.register_image(
        Name=name,
        Description=f"OCAP recording workstation {version} (stand-in)",
        RootDeviceName="/dev/sda1",
        Architecture="x86_64",
    )["ImageId"]
    tags = {
        "Name": name,
        "Version": version,
        "Project": PROJECT,
        "Environment": ENVIRONMENT,
        "Role": "ocap-workstation",
    }
    ec2.create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return image_id


def _json_run(ctx: DemoContext, *extra: str) -> dict[str, Any]:
    out = ctx.run(
        ["ansible-playbook", "playbooks/release.yml", *extra],
        env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
    )
    report: dict[str, Any] = json.loads(out)
    return report


def _result(report: dict[str, Any], task_name: str) -> dict[str, Any]:
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == task_name:
                result: dict[str, Any] = task["hosts"]["localhost"]
                return result
    raise SystemExit(f"demo step release: task {task_name!r} did not run")


def run(ctx: DemoContext) -> list[str]:
    ec2 = boto3.client(
        "ec2",
        endpoint_url=ctx.moto.endpoint,
        region_name=ctx.env.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=ctx.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=ctx.env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=ctx.env.get("AWS_SESSION_TOKEN"),
    )
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    older = _register(ec2, "0.9.0", stamp)
    time.sleep(1.1)  # the emulator dates images to the second: keep "newest" unambiguous
    image_id = _register(ec2, ctx.version, stamp)

    manifest = ctx.work / "packer-manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "builds": [
                    {
                        "name": "workstation",
                        "builder_type": "amazon-ebs",
                        "build_time": int(time.time()),
                        "artifact_id": f"{ec2.meta.region_name}:{image_id}",
                        "packer_run_uuid": "demo",
                        "custom_data": {"version": ctx.version, "environment": ENVIRONMENT},
                    }
                ],
                "last_run_uuid": "demo",
            },
            indent=2,
        )
    )
    extra: dict[str, Any] = {
        "release_manifest": str(manifest),
        "ocap_environment": ENVIRONMENT,
        "release_keep_images": 1,
    }
    if ctx.facts.get("security_group_id"):
        extra["release_security_group_ids"] = [ctx.facts["security_group_id"]]
    if ctx.facts.get("instance_profile"):
        extra["release_instance_profile"] = ctx.facts["instance_profile"]
    if ctx.facts.get("subnet_id"):
        extra["release_subnet_id"] = ctx.facts["subnet_id"]
    args = ("-e", json.dumps(extra))

    first = _json_run(ctx, *args)
    release = _result(first, "Release the image as a launch template version")
    retired = _result(first, "Retire old images of the line")
    second = _json_run(ctx, *args)
    changed_again = int(second["stats"]["localhost"]["changed"])
    if changed_again:
        raise SystemExit(f"demo step release: the second run changed {changed_again} things, expected none")

    template = ec2.describe_launch_template_versions(
        LaunchTemplateName=release["launch_template_name"], Versions=[str(release["version_number"])]
    )["LaunchTemplateVersions"][0]
    metadata = template["LaunchTemplateData"]["MetadataOptions"]

    ctx.facts["image_id"] = release["image_id"]
    ctx.facts["launch_template"] = release["launch_template_name"]
    ctx.facts["template_version"] = release["version_number"]
    retired_ids = [i["image_id"] for i in retired["deregistered"]]
    return [
        f"released {release['version']}: {release['image_id']} -> {release['launch_template_name']} "
        f"version {release['version_number']} (default {release['default_version']})",
        f"version description {template['VersionDescription']!r}; IMDSv2 {metadata['HttpTokens']}, "
        f"hop limit {metadata['HttpPutResponseHopLimit']}",
        f"retired images: {', '.join(retired_ids) or 'none'} (older release {older}); "
        f"snapshots deleted: {', '.join(retired['deleted_snapshots']) or 'none'}",
        f"second run: changed={changed_again}",
        f"manifest: {os.path.relpath(manifest, ctx.work)} in the demo work directory",
    ]
