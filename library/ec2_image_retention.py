#!/usr/bin/python
"""Retire old images of one release line: deregister them and delete their snapshots."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_image_retention
short_description: Retire old AMIs of one release line
version_added: "1.0.0"
description:
  - Selects the images of one release line (by name prefix and/or tags, owned by
    this account) and deregisters those beyond the newest O(keep) or created before
    O(older_than), then deletes their EBS snapshots.
  - Never retires an image that any version of a launch template in the region still
    names, or that a pending, running, stopping or stopped instance runs; such images
    are reported in RV(skipped) with the reason.
  - Images with deregistration protection are skipped too (protection must be lifted
    first, and AWS may impose a cooldown).
  - Optionally sets a deprecation time and deregistration protection on the images it
    keeps. Where the endpoint does not implement those actions (some emulators), a
    warning says so and nothing is changed.
author:
  - ocap-workstations maintainers
options:
  name_prefix:
    description: Images whose name starts with this prefix belong to the line.
    type: str
  tags:
    description: Images carrying all of these tags belong to the line.
    type: dict
  keep:
    description: Number of newest images of the line to keep.
    type: int
    default: 3
  older_than:
    description:
      - Also retire images created before this date or time (ISO 8601, for example
        C(2026-01-31) or C(2026-01-31T12:00:00Z)), even among the newest O(keep).
      - Images still in use are never retired.
    type: str
  delete_snapshots:
    description: Delete the EBS snapshots of the images it deregisters.
    type: bool
    default: true
  deprecate_at:
    description:
      - Deprecation time to set on every image it keeps (ISO 8601, UTC), rounded down
        to the minute as EC2 stores it.
    type: str
  deregistration_protection:
    description:
      - Enable (V(true)) or disable (V(false)) deregistration protection on the images
        it keeps; unset leaves protection alone.
    type: bool
attributes:
  check_mode:
    support: full
    description: Lists what would be deregistered and deleted, and what would be kept and why.
  diff_mode:
    support: full
    description: Before and after lists of the line's images.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Images are only searched among those owned by this account (C(Owners=self)).
"""

EXAMPLES = r"""
- name: Keep the three newest workstation images, retire the rest
  ec2_image_retention:
    name_prefix: "ocap-workstation-"
    keep: 3

- name: Retire images older than the start of the year, protect the ones kept
  ec2_image_retention:
    tags:
      Project: ocap-workstations
    keep: 2
    older_than: "2026-01-01"
    deprecate_at: "2027-06-30T00:00:00Z"
    deregistration_protection: true
"""

RETURN = r"""
deregistered:
  description: Images deregistered (or that would be, in check mode).
  returned: always
  type: list
  elements: dict
  contains:
    image_id:
      description: AMI ID.
      type: str
    name:
      description: AMI name.
      type: str
    creation_date:
      description: When the image was created.
      type: str
    snapshots:
      description: Its EBS snapshot IDs.
      type: list
      elements: str
  sample: [{"image_id": "ami-0123456789abcdef0", "name": "ocap-workstation-1.0.0",
            "creation_date": "2026-01-02T03:04:05.000Z", "snapshots": ["snap-0123456789abcdef0"]}]
deleted_snapshots:
  description: Snapshot IDs deleted (or that would be).
  returned: always
  type: list
  elements: str
kept:
  description: IDs of the line's images that stay, newest first.
  returned: always
  type: list
  elements: str
skipped:
  description: Images selected for retirement but kept, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{"image_id": "ami-0123456789abcdef0", "reason": "used by launch template lt-0a (version 3)"}]
snapshots_left:
  description:
    - Snapshots of images this run deregistered that it could not delete, because
      the run failed half-way; delete them by hand (no later run can find them).
  returned: on failure after an image was deregistered
  type: list
  elements: str
updated:
  description: Kept images whose deprecation time or deregistration protection changed.
  returned: always
  type: list
  elements: str
"""

import contextlib
import datetime
from typing import Any

with contextlib.suppress(ImportError):  # AnsibleAWSModule reports a missing SDK
    from botocore.exceptions import ClientError

from ansible.module_utils.ocap_aws import (
    AWS_ERRORS,
    LIVE_INSTANCE_STATES,
    ModuleFailure,
    api_supported,
    chunks,
    ec2_client,
    error_code,
    is_unsupported,
    paginate,
    tag_filters,
)
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

ARGUMENT_SPEC: dict[str, Any] = dict(
    name_prefix=dict(type="str"),
    tags=dict(type="dict"),
    keep=dict(type="int", default=3),
    older_than=dict(type="str"),
    delete_snapshots=dict(type="bool", default=True),
    deprecate_at=dict(type="str"),
    deregistration_protection=dict(type="bool"),
)


def parse_time(option: str, value: str) -> datetime.datetime:
    """ISO 8601 date or time; naive values are UTC."""
    text = value.strip()
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ModuleFailure(
            f"{option}: expected an ISO 8601 date or time such as 2026-01-31 or 2026-01-31T12:00:00Z, "
            f"got {value!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _created(image: dict[str, Any]) -> datetime.datetime:
    return parse_time("CreationDate", image.get("CreationDate") or "1970-01-01")


def _snapshots(image: dict[str, Any]) -> list[str]:
    return [
        m["Ebs"]["SnapshotId"]
        for m in image.get("BlockDeviceMappings", [])
        if m.get("Ebs", {}).get("SnapshotId")
    ]


def line_images(client: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The line's images, newest first."""
    filters = tag_filters(params["tags"])
    if params["name_prefix"]:
        filters.append({"Name": "name", "Values": [params["name_prefix"] + "*"]})
    images = paginate(client, "describe_images", "Images", Owners=["self"], Filters=filters)
    prefix = params["name_prefix"] or ""
    # The name filter's "*" also matches inside names on some endpoints: hold to a true prefix.
    images = [i for i in images if i.get("Name", "").startswith(prefix)]
    return sorted(images, key=lambda i: (i.get("CreationDate", ""), i["ImageId"]), reverse=True)


def images_in_templates(client: Any) -> dict[str, str]:
    """Image ID -> first launch template version (in any template of the region) that names it."""
    users: dict[str, str] = {}
    # The largest page EC2 allows: fewer calls, and emulators that ignore NextToken still answer in full.
    templates = paginate(
        client, "describe_launch_templates", "LaunchTemplates", PaginationConfig={"PageSize": 200}
    )
    for template in templates:
        versions = paginate(
            client,
            "describe_launch_template_versions",
            "LaunchTemplateVersions",
            LaunchTemplateId=template["LaunchTemplateId"],
            PaginationConfig={"PageSize": 200},
        )
        for version in versions:
            image_id = version.get("LaunchTemplateData", {}).get("ImageId")
            if image_id and image_id not in users:
                users[image_id] = (
                    f"used by launch template {template['LaunchTemplateName']} "
                    f"(version {version['VersionNumber']})"
                )
    return users


def images_in_instances(client: Any, image_ids: list[str]) -> dict[str, str]:
    users: dict[str, str] = {}
    for batch in chunks(image_ids):
        reservations = paginate(
            client,
            "describe_instances",
            "Reservations",
            Filters=[
                {"Name": "image-id", "Values": batch},
                {"Name": "instance-state-name", "Values": list(LIVE_INSTANCE_STATES)},
            ],
        )
        for reservation in reservations:
            for instance in reservation.get("Instances", []):
                users.setdefault(
                    instance["ImageId"],
                    f"used by instance {instance['InstanceId']} ({instance['State']['Name']})",
                )
    return users


def plan(
    images: list[dict[str, Any]], keep: int, older_than: datetime.datetime | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(candidates, kept): beyond the newest KEEP, or created before OLDER_THAN."""
    candidates: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    for rank, image in enumerate(images):
        old = older_than is not None and _created(image) < older_than
        (candidates if rank >= keep or old else kept).append(image)
    return candidates, kept


def _summary(image: dict[str, Any]) -> dict[str, Any]:
    return {
        "image_id": image["ImageId"],
        "name": image.get("Name", ""),
        "creation_date": image.get("CreationDate", ""),
        "snapshots": _snapshots(image),
    }


def ensure_retired(
    module: Any, client: Any, retire: list[dict[str, Any]], progress: dict[str, list[str]]
) -> tuple[list[str], list[str]]:
    """Deregister RETIRE, then delete their snapshots. Returns (deregistered ids, deleted snapshots).

    PROGRESS records each step as it happens, so that a failure half-way can report
    which images are gone and which of their snapshots are left to delete by hand
    (a deregistered image no longer leads a later run to its snapshots).
    """
    if module.check_mode:
        return [i["ImageId"] for i in retire], [s for i in retire for s in _snapshots(i)]
    for image in retire:
        client.deregister_image(ImageId=image["ImageId"], aws_retry=True)
        progress["deregistered"].append(image["ImageId"])
        if not module.params["delete_snapshots"]:
            continue
        progress["snapshots_left"].extend(_snapshots(image))
        for snapshot_id in _snapshots(image):
            try:
                client.delete_snapshot(SnapshotId=snapshot_id, aws_retry=True)
                progress["deleted_snapshots"].append(snapshot_id)
            except ClientError as exc:
                if error_code(exc) != "InvalidSnapshot.NotFound":
                    raise
                # already gone: nothing left to delete
            progress["snapshots_left"].remove(snapshot_id)
    return list(progress["deregistered"]), list(progress["deleted_snapshots"])


def _minute(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:00.000Z")


def settings(image: dict[str, Any]) -> dict[str, Any]:
    """The retention-managed settings of IMAGE, as the diff shows them."""
    deprecation = image.get("DeprecationTime")
    return {
        "name": image.get("Name", ""),
        "deprecation_time": _minute(parse_time("DeprecationTime", deprecation)) if deprecation else None,
        "deregistration_protection": str(image.get("DeregistrationProtection") or "disabled"),
    }


def ensure_kept_settings(
    module: Any, client: Any, kept: list[dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Deprecation time and deregistration protection on KEPT; returns (new settings by id, warnings)."""
    params = module.params
    calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for image in kept:
        current = settings(image)
        if params["deprecate_at"]:
            when = _minute(parse_time("deprecate_at", params["deprecate_at"]))
            if current["deprecation_time"] != when:
                calls.append(
                    (
                        "enable_image_deprecation",
                        {"ImageId": image["ImageId"], "DeprecateAt": when},
                        {"deprecation_time": when},
                    )
                )
        enabled = current["deregistration_protection"].startswith("enabled")
        if params["deregistration_protection"] is True and not enabled:
            calls.append(
                (
                    "enable_image_deregistration_protection",
                    {"ImageId": image["ImageId"]},
                    {"deregistration_protection": "enabled"},
                )
            )
        elif params["deregistration_protection"] is False and enabled:
            calls.append(
                (
                    "disable_image_deregistration_protection",
                    {"ImageId": image["ImageId"]},
                    {"deregistration_protection": "disabled"},
                )
            )
    changes: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    for operation in sorted({op for op, _, _ in calls}):
        todo = [(kwargs, change) for op, kwargs, change in calls if op == operation]
        if not api_supported(module, operation, **todo[0][0]):
            warnings.append(
                f"this endpoint does not implement {_api_name(operation)}: "
                f"{', '.join(k['ImageId'] for k, _ in todo)} left unchanged"
            )
            continue
        for kwargs, change in todo:
            if not module.check_mode:
                getattr(client, operation)(aws_retry=True, **kwargs)
            changes.setdefault(kwargs["ImageId"], {}).update(change)
    return changes, warnings


def _api_name(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=ARGUMENT_SPEC,
        required_one_of=[("name_prefix", "tags")],
        supports_check_mode=True,
    )
    params = module.params
    if params["keep"] < 0:
        module.fail_json(msg=f"keep: expected an integer of at least 0, got {params['keep']}")
    if params["name_prefix"] is not None and not params["name_prefix"].strip():
        module.fail_json(
            msg="name_prefix: expected a non-empty prefix (an empty one would select every image)"
        )

    client = ec2_client(module)
    progress: dict[str, list[str]] = {"deregistered": [], "deleted_snapshots": [], "snapshots_left": []}
    try:
        older_than = parse_time("older_than", params["older_than"]) if params["older_than"] else None
        if params["deprecate_at"]:
            parse_time("deprecate_at", params["deprecate_at"])
        images = line_images(client, params)
        candidates, kept = plan(images, params["keep"], older_than)
        users: dict[str, str] = {}
        if candidates:
            users = images_in_templates(client)
            users.update(
                {k: v for k, v in images_in_instances(client, [i["ImageId"] for i in candidates]).items()}
            )
        skipped = []
        retire = []
        for image in candidates:
            reason = users.get(image["ImageId"])
            if reason is None and str(image.get("DeregistrationProtection", "")).startswith("enabled"):
                reason = "deregistration protection is enabled"
            if reason is None:
                retire.append(image)
            else:
                skipped.append({"image_id": image["ImageId"], "reason": reason})
                kept.append(image)
        deregistered, deleted_snapshots = ensure_retired(module, client, retire, progress)
        kept_sorted = sorted(kept, key=lambda i: (i.get("CreationDate", ""), i["ImageId"]), reverse=True)
        changes, warnings = ensure_kept_settings(module, client, kept_sorted)
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    except AWS_ERRORS as exc:
        done = {
            "changed": bool(progress["deregistered"]),
            "deregistered": [{"image_id": i} for i in progress["deregistered"]],
            "deleted_snapshots": progress["deleted_snapshots"],
            "snapshots_left": progress["snapshots_left"],
        }
        if is_unsupported(exc):
            module.fail_json_aws(
                exc, msg="this endpoint does not implement an EC2 action retention needs", **done
            )
        left = (
            f"; snapshots left to delete: {', '.join(progress['snapshots_left'])}"
            if progress["snapshots_left"]
            else ""
        )
        module.fail_json_aws(exc, msg=f"EC2 call failed while retiring images{left}", **done)
    for warning in warnings:
        module.warn(warning)

    # The diff shows the line's images (id -> name and kept settings) before and after.
    gone = set(deregistered)
    before = {"images": {i["ImageId"]: settings(i) for i in images}}
    after = {
        "images": {
            image_id: {**values, **changes.get(image_id, {})}
            for image_id, values in before["images"].items()
            if image_id not in gone
        }
    }
    module.exit_json(
        changed=bool(deregistered or changes),
        diff={"before": before, "after": after},
        deregistered=[_summary(i) for i in retire if i["ImageId"] in gone],
        deleted_snapshots=deleted_snapshots,
        kept=[i["ImageId"] for i in kept_sorted],
        skipped=skipped,
        updated=sorted(changes),
    )


if __name__ == "__main__":
    main()
