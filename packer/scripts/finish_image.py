"""Finish a freshly built AMI with what the pinned amazon plugin cannot set.

Run by the build's shell-local post-processor, after the manifest is written:

- ImdsSupport = v2.0 on the image in every region it was registered or copied
  to, so instances launched from it refuse IMDSv1 whatever the launch template
  says;
- Windows Fast Launch (pre-provisioned snapshots) when OCAP_FAST_LAUNCH=1.

It reads the current run's artifact from the manifest (OCAP_MANIFEST), so it
touches only the images this build made. Both calls are safe to repeat.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import boto3


def this_run_images(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(region, ami-id) pairs of the newest build of the manifest's last run."""
    run = manifest.get("last_run_uuid")
    builds = [b for b in manifest.get("builds", []) if b.get("packer_run_uuid") == run]
    if not builds:
        raise SystemExit(f"finish_image: no build of run {run} in the manifest")
    pairs = []
    for part in str(builds[-1].get("artifact_id", "")).split(","):
        region, _, ami = part.partition(":")
        if not ami.startswith("ami-"):
            raise SystemExit(f"finish_image: unexpected artifact_id entry {part!r}")
        pairs.append((region, ami))
    return pairs


def finish(region: str, ami: str, fast_launch: bool, target: int, parallel: int) -> None:
    ec2 = boto3.client("ec2", region_name=region)
    ec2.get_waiter("image_available").wait(ImageIds=[ami])
    image = ec2.describe_images(ImageIds=[ami])["Images"][0]
    if image.get("ImdsSupport") != "v2.0":
        # One-way switch: EC2 does not allow turning it back off.
        ec2.modify_image_attribute(ImageId=ami, ImdsSupport={"Value": "v2.0"})
        print(f"{region} {ami}: ImdsSupport set to v2.0")
    else:
        print(f"{region} {ami}: ImdsSupport already v2.0")
    if fast_launch:
        ec2.enable_fast_launch(
            ImageId=ami,
            ResourceType="snapshot",
            SnapshotConfiguration={"TargetResourceCount": target},
            MaxParallelLaunches=parallel,
        )
        print(f"{region} {ami}: Fast Launch enabled ({target} snapshots, {parallel} parallel launches)")


def main() -> int:
    manifest_path = Path(os.environ.get("OCAP_MANIFEST", "manifest.json"))
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    fast_launch = os.environ.get("OCAP_FAST_LAUNCH", "0") == "1"
    target = int(os.environ.get("OCAP_FAST_LAUNCH_TARGET", "5"))
    parallel = int(os.environ.get("OCAP_FAST_LAUNCH_PARALLEL", "6"))
    for region, ami in this_run_images(manifest):
        finish(region, ami, fast_launch, target, parallel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
