#!/usr/bin/python
"""Release an AMI as a launch template version, idempotently."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ec2_image_release
short_description: Release an AMI as a launch template version
version_added: "1.0.0"
description:
  - Makes an AMI the image a launch template launches, as one new template version
    labelled with a release version (for example C(1.4.0)).
  - Creates the launch template if it is missing. Creates a new version only when the
    data this release should carry differs from the version already labelled with
    the same release; the same label with different data is an error unless
    O(force=true).
  - Safe defaults are written into every version - IMDSv2 required with a hop limit of
    1, encrypted EBS volumes (optionally with a KMS key) and instance and volume tags
    C(Name), C(Version) and C(Pool).
  - Makes the release the default version and deletes versions beyond
    O(keep_versions), never the default version and never one that a pending,
    running, stopping or stopped instance was launched from.
  - Where the endpoint does not implement C(DeleteLaunchTemplateVersions) (some
    emulators), old versions are kept and a warning says so.
author:
  - ocap-workstations maintainers
options:
  name:
    description: Name of the launch template.
    type: str
    required: true
  state:
    description:
      - V(present) releases the image.
      - V(absent) with O(version) deletes the versions labelled with that release (never
        the default version, never one in use); without O(version) it deletes the whole
        launch template, refused while instances still use it unless O(force=true).
    type: str
    choices: [present, absent]
    default: present
  version:
    description:
      - Release label, written as the version description and the C(Version) tag of
        instances and volumes. Letters, digits and C(. _ + -), up to 128 characters.
      - Required when O(state=present).
    type: str
  image_id:
    description:
      - The AMI to release, as C(ami-...) or as the Packer manifest writes it,
        C(region:ami-...); a region other than the module's is an error.
      - Mutually exclusive with O(image_name) and O(image_tags).
    type: str
  image_name:
    description:
      - Select the newest available image whose name matches this pattern
        (C(*) and C(?) wildcards as in the EC2 C(name) filter).
    type: str
  image_tags:
    description: Select the newest available image carrying all of these tags.
    type: dict
  image_owners:
    description: Owners searched when selecting by O(image_name) or O(image_tags).
    type: list
    elements: str
    default: [self]
  wait:
    description:
      - Wait for a C(pending) image to become C(available). Without it, a pending image
        is an error.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait with O(wait=true).
    type: int
    default: 1800
  instance_type:
    description: Instance type. Required when O(state=present).
    type: str
  instance_profile:
    description: IAM instance profile, by name or ARN.
    type: str
  security_group_ids:
    description: Security group IDs (put on the network interface when O(subnet_id) is set).
    type: list
    elements: str
  subnet_id:
    description: Subnet for the primary network interface.
    type: str
  network_interfaces:
    description: Network interfaces, instead of O(subnet_id) and O(security_group_ids).
    type: list
    elements: dict
    suboptions:
      device_index:
        description: Device index.
        type: int
        default: 0
      subnet_id:
        description: Subnet ID.
        type: str
      security_group_ids:
        description: Security group IDs.
        type: list
        elements: str
      associate_public_ip_address:
        description: Whether to associate a public IPv4 address.
        type: bool
      delete_on_termination:
        description: Delete the interface when the instance terminates.
        type: bool
        default: true
  key_name:
    description: EC2 key pair name (optional; Windows workstations do not need one).
    type: str
  user_data:
    description: User data as plain text; the module base64-encodes it.
    type: str
  block_devices:
    description:
      - EBS volumes. Without them, the image's own EBS devices are restated with
        C(Encrypted=true) so every volume is encrypted.
    type: list
    elements: dict
    suboptions:
      device_name:
        description: Device name, for example C(/dev/sda1).
        type: str
        required: true
      volume_size:
        description: Size in GiB.
        type: int
      volume_type:
        description: Volume type.
        type: str
        choices: [gp2, gp3, io1, io2, st1, sc1, standard]
      iops:
        description: Provisioned IOPS.
        type: int
      throughput:
        description: Throughput in MiB/s (gp3).
        type: int
      delete_on_termination:
        description: Delete the volume when the instance terminates.
        type: bool
        default: true
      encrypted:
        description: Encrypt the volume.
        type: bool
        default: true
      kms_key_id:
        description: KMS key for this volume (default O(kms_key_id)).
        type: str
  kms_key_id:
    description: KMS key for encrypted volumes; without it, the account's default EBS key.
    type: str
  metadata_options:
    description: Instance metadata service settings.
    type: dict
    suboptions:
      http_tokens:
        description:
          - V(required) is IMDSv2 only, the one value accepted.
          - IMDSv1 (V(optional)) would let any process on the workstation that can be tricked into
            one GET read the instance role's credentials, so a release never turns it on.
        type: str
        choices: [required]
        default: required
      http_put_response_hop_limit:
        description: Hop limit for metadata responses (1 keeps tokens on the instance).
        type: int
        default: 1
      instance_metadata_tags:
        description: Expose instance tags through the metadata service.
        type: str
        choices: [enabled, disabled]
        default: disabled
  pool:
    description: Value of the C(Pool) tag; defaults to O(name).
    type: str
  instance_tags:
    description:
      - Extra tags for instances and volumes. C(Name) defaults to C(<pool>-<version>).
    type: dict
  tags:
    description: Tags for the launch template itself.
    type: dict
  purge_tags:
    description: Remove launch template tags not listed in O(tags).
    type: bool
    default: false
  keep_versions:
    description: Number of newest versions to keep (at least 1).
    type: int
    default: 5
  set_default:
    description: Make the release the template's default version.
    type: bool
    default: true
  force:
    description:
      - With O(state=present), create a new version even though the label is already
        used by a version with other data (the newest version with the label wins).
      - With O(state=absent) and no O(version), delete the template although instances use it.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports what would change, with the version number it would create.
  diff_mode:
    support: full
    description: Before and after of the default version's data, version list and tags.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - Instances are matched to versions by the C(aws:ec2launchtemplate:id) and
    C(aws:ec2launchtemplate:version) tags EC2 puts on instances launched from a template.
"""

EXAMPLES = r"""
- name: Release the image Packer just built
  ec2_image_release:
    name: ocap-workstations-dev-workstation
    image_id: "us-east-1:ami-0123456789abcdef0"
    version: "1.4.0"
    instance_type: g4dn.xlarge
    instance_profile: ocap-workstation
    security_group_ids: [sg-0123456789abcdef0]
    subnet_id: subnet-0123456789abcdef0
    pool: recording
    tags:
      Project: ocap-workstations

- name: Release the newest image of the line once it is available
  ec2_image_release:
    name: ocap-workstations-dev-workstation
    image_name: "ocap-workstation-1.4.0"
    wait: true
    version: "1.4.0"
    instance_type: g4dn.xlarge
    block_devices:
      - device_name: /dev/sda1
        volume_size: 100
        volume_type: gp3
    kms_key_id: alias/ocap-ebs
    keep_versions: 3

- name: Remove the template
  ec2_image_release:
    name: ocap-workstations-dev-workstation
    state: absent
"""

RETURN = r"""
launch_template_id:
  description: ID of the launch template (empty in check mode before it exists).
  returned: always
  type: str
  sample: lt-0123456789abcdef0
launch_template_name:
  description: Name of the launch template.
  returned: always
  type: str
  sample: ocap-workstations-dev-workstation
version:
  description: The release label.
  returned: when O(state=present)
  type: str
  sample: "1.4.0"
version_number:
  description: Number of the template version carrying the release.
  returned: when O(state=present)
  type: int
  sample: 7
default_version:
  description: Default version number after the run (null when the template is gone).
  returned: always
  type: int
  sample: 7
latest_version:
  description: Latest version number after the run (null when the template is gone).
  returned: always
  type: int
  sample: 7
image_id:
  description: The released AMI.
  returned: when O(state=present)
  type: str
  sample: ami-0123456789abcdef0
image_name:
  description: Name of the released AMI.
  returned: when O(state=present)
  type: str
  sample: ocap-workstation-1.4.0
created_version:
  description: Whether this run created (or in check mode would create) a new version.
  returned: when O(state=present)
  type: bool
deleted_versions:
  description: Version numbers deleted (or that would be deleted in check mode).
  returned: always
  type: list
  elements: int
  sample: [1, 2]
kept_in_use:
  description: Versions beyond O(keep_versions) kept because instances use them.
  returned: always
  type: list
  elements: int
  sample: [2]
launch_template_data:
  description: The release version's launch template data, as EC2 stores it.
  returned: when O(state=present)
  type: dict
"""

import contextlib
from typing import Any

with contextlib.suppress(ImportError):  # AnsibleAWSModule reports a missing SDK
    from botocore.exceptions import ClientError, WaiterError

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
    tag_dict,
    tag_filters,
    tag_list,
)
from ansible.module_utils.ocap_launch_template import (
    build_data,
    check_label,
    differences,
    normalize,
    parse_image_id,
    versions_to_prune,
)
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

WAIT_DELAY = 15  # seconds between DescribeImages polls while an image is pending

ARGUMENT_SPEC: dict[str, Any] = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", choices=["present", "absent"], default="present"),
    version=dict(type="str"),
    image_id=dict(type="str"),
    image_name=dict(type="str"),
    image_tags=dict(type="dict"),
    image_owners=dict(type="list", elements="str", default=["self"]),
    wait=dict(type="bool", default=False),
    wait_timeout=dict(type="int", default=1800),
    instance_type=dict(type="str"),
    instance_profile=dict(type="str"),
    security_group_ids=dict(type="list", elements="str"),
    subnet_id=dict(type="str"),
    network_interfaces=dict(
        type="list",
        elements="dict",
        options=dict(
            device_index=dict(type="int", default=0),
            subnet_id=dict(type="str"),
            security_group_ids=dict(type="list", elements="str"),
            associate_public_ip_address=dict(type="bool"),
            delete_on_termination=dict(type="bool", default=True),
        ),
    ),
    key_name=dict(type="str"),
    user_data=dict(type="str"),
    block_devices=dict(
        type="list",
        elements="dict",
        options=dict(
            device_name=dict(type="str", required=True),
            volume_size=dict(type="int"),
            volume_type=dict(type="str", choices=["gp2", "gp3", "io1", "io2", "st1", "sc1", "standard"]),
            iops=dict(type="int"),
            throughput=dict(type="int"),
            delete_on_termination=dict(type="bool", default=True),
            encrypted=dict(type="bool", default=True),
            kms_key_id=dict(type="str"),
        ),
    ),
    kms_key_id=dict(type="str"),
    metadata_options=dict(
        type="dict",
        options=dict(
            http_tokens=dict(type="str", choices=["required"], default="required"),
            http_put_response_hop_limit=dict(type="int", default=1),
            instance_metadata_tags=dict(type="str", choices=["enabled", "disabled"], default="disabled"),
        ),
    ),
    pool=dict(type="str"),
    instance_tags=dict(type="dict"),
    tags=dict(type="dict"),
    purge_tags=dict(type="bool", default=False),
    keep_versions=dict(type="int", default=5),
    set_default=dict(type="bool", default=True),
    force=dict(type="bool", default=False),
)


# -- read -------------------------------------------------------------------------


def describe_template(client: Any, name: str) -> dict[str, Any] | None:
    try:
        found = client.describe_launch_templates(LaunchTemplateNames=[name], aws_retry=True)
    except ClientError as exc:
        if error_code(exc).startswith("InvalidLaunchTemplateName.NotFound"):
            return None
        raise
    templates: list[dict[str, Any]] = found.get("LaunchTemplates", [])
    if not templates:
        return None
    template = templates[0]
    # Tags from DescribeTags: some emulators answer DescribeLaunchTemplates with the
    # tags the template was created with, never the current ones.
    template["Tags"] = [
        {"Key": t["Key"], "Value": t["Value"]}
        for t in paginate(
            client,
            "describe_tags",
            "Tags",
            Filters=[{"Name": "resource-id", "Values": [template["LaunchTemplateId"]]}],
        )
    ]
    return template


def describe_versions(client: Any, template_id: str) -> list[dict[str, Any]]:
    versions = paginate(
        client,
        "describe_launch_template_versions",
        "LaunchTemplateVersions",
        LaunchTemplateId=template_id,
        PaginationConfig={"PageSize": 200},  # fewest calls; also what emulators without NextToken need
    )
    return sorted(versions, key=lambda v: int(v["VersionNumber"]))


def versions_in_use(client: Any, template_id: str) -> set[int]:
    """Version numbers that live instances were launched from (EC2's own aws:ec2launchtemplate tags)."""
    reservations = paginate(
        client,
        "describe_instances",
        "Reservations",
        Filters=[
            {"Name": "tag:aws:ec2launchtemplate:id", "Values": [template_id]},
            {"Name": "instance-state-name", "Values": list(LIVE_INSTANCE_STATES)},
        ],
    )
    used = set()
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            number = tag_dict(instance.get("Tags")).get("aws:ec2launchtemplate:version", "")
            if number.isdigit():
                used.add(int(number))
    return used


def resolve_image(module: Any, client: Any) -> dict[str, Any]:
    """The image to release: by id, or the newest match of name/tags; waits if asked."""
    params = module.params
    if params["image_id"]:
        image_id = parse_image_id(params["image_id"], module.region)
        try:
            images = client.describe_images(ImageIds=[image_id], aws_retry=True).get("Images", [])
        except ClientError as exc:
            if not error_code(exc).startswith("InvalidAMIID"):
                raise
            images = []
        if not images:
            raise ModuleFailure(
                f"image_id: image {image_id} not found in region {module.region} "
                "(AMIs are regional; it may also have been deregistered)"
            )
        image: dict[str, Any] = images[0]
    else:
        filters = tag_filters(params["image_tags"])
        if params["image_name"]:
            filters.append({"Name": "name", "Values": [params["image_name"]]})
        matches = paginate(
            client, "describe_images", "Images", Owners=params["image_owners"], Filters=filters
        )
        wanted = ("available", "pending") if params["wait"] else ("available",)
        candidates = [i for i in matches if i.get("State") in wanted]
        selector = {"image_name": params["image_name"], "image_tags": params["image_tags"]}
        if not candidates:
            states = sorted({f"{i['ImageId']}={i.get('State')}" for i in matches})
            raise ModuleFailure(
                f"no available image matches {_describe_selector(selector)} in region {module.region}"
                + (f" (found, not available: {', '.join(states)}; set wait: true to wait)" if states else ""),
            )
        image = max(candidates, key=lambda i: (i.get("CreationDate", ""), i["ImageId"]))
    state = image.get("State")
    if state == "pending" and params["wait"]:
        image = wait_available(client, image["ImageId"], params["wait_timeout"])
    elif state != "available":
        hint = "; set wait: true to wait for it" if state == "pending" else ""
        raise ModuleFailure(f"image {image['ImageId']} is {state}, not available{hint}")
    return image


def _describe_selector(selector: dict[str, Any]) -> str:
    return " and ".join(f"{k}={v!r}" for k, v in selector.items() if v)


def wait_available(client: Any, image_id: str, timeout: int) -> dict[str, Any]:
    attempts = max(1, -(-timeout // WAIT_DELAY))
    try:
        client.get_waiter("image_available").wait(
            ImageIds=[image_id], WaiterConfig={"Delay": WAIT_DELAY, "MaxAttempts": attempts}
        )
    except WaiterError as exc:
        response: dict[str, Any] = getattr(exc, "last_response", None) or {}
        last: dict[str, Any] = (response.get("Images") or [{}])[0]
        reason = last.get("StateReason", {}).get("Message", "")
        raise ModuleFailure(
            f"image {image_id} did not become available within {timeout}s "
            f"(state {last.get('State', 'unknown')}{': ' + reason if reason else ''})"
        ) from None
    image: dict[str, Any] = client.describe_images(ImageIds=[image_id], aws_retry=True)["Images"][0]
    return image


# -- ensure ----------------------------------------------------------------------


def _snapshot(template: dict[str, Any] | None, versions: list[dict[str, Any]]) -> dict[str, Any]:
    """What a user sees of a template: default version's data, the version list, tags."""
    if template is None:
        return {}
    default = int(template["DefaultVersionNumber"])
    default_data: dict[str, Any] = next(
        (v["LaunchTemplateData"] for v in versions if v["VersionNumber"] == default), {}
    )
    return {
        "launch_template": template["LaunchTemplateName"],
        "default_version": default,
        "default_version_data": normalize(default_data),
        "versions": {str(v["VersionNumber"]): v.get("VersionDescription", "") for v in versions},
        "tags": tag_dict(template.get("Tags")),
    }


def ensure_tags(
    module: Any, client: Any, template: dict[str, Any], desired: dict[str, str], purge: bool
) -> tuple[bool, dict[str, str]]:
    current = tag_dict(template.get("Tags"))
    wanted = {str(k): str(v) for k, v in desired.items()}
    to_set = {k: v for k, v in wanted.items() if current.get(k) != v}
    to_unset = sorted(k for k in current if k not in wanted and not k.startswith("aws:")) if purge else []
    after = {k: v for k, v in current.items() if k not in to_unset}
    after.update(to_set)
    if not (to_set or to_unset):
        return False, after
    if not module.check_mode:
        resource = [template["LaunchTemplateId"]]
        if to_set:
            client.create_tags(Resources=resource, Tags=tag_list(to_set), aws_retry=True)
        if to_unset:
            client.delete_tags(Resources=resource, Tags=[{"Key": k} for k in to_unset], aws_retry=True)
    return True, after


def ensure_pruned(
    module: Any, client: Any, template_id: str, numbers: list[int]
) -> tuple[list[int], list[str]]:
    """Delete version NUMBERS in batches; returns (deleted, warnings)."""
    if not numbers:
        return [], []
    if not api_supported(
        module, "delete_launch_template_versions", LaunchTemplateId=template_id, Versions=[str(numbers[0])]
    ):
        return [], [
            "this endpoint does not implement DeleteLaunchTemplateVersions: versions "
            f"{', '.join(map(str, numbers))} of {module.params['name']} were kept"
        ]
    if module.check_mode:
        return list(numbers), []
    deleted: list[int] = []
    warnings: list[str] = []
    for batch in chunks(numbers):
        result = client.delete_launch_template_versions(
            LaunchTemplateId=template_id, Versions=[str(n) for n in batch], aws_retry=True
        )
        deleted += [
            int(v["VersionNumber"]) for v in result.get("SuccessfullyDeletedLaunchTemplateVersions", [])
        ]
        for failed in result.get("UnsuccessfullyDeletedLaunchTemplateVersions", []):
            error = failed.get("ResponseError", {})
            warnings.append(
                f"version {failed.get('VersionNumber')} was not deleted: "
                f"{error.get('Code', '')} {error.get('Message', '')}".strip()
            )
    return sorted(deleted), warnings


def ensure_version(
    module: Any,
    client: Any,
    template: dict[str, Any] | None,
    versions: list[dict[str, Any]],
    *,
    desired: dict[str, Any],
    label: str,
) -> tuple[bool, dict[str, Any], list[dict[str, Any]], int]:
    """The template version carrying LABEL with DESIRED data: reuse it, or create it (and the template).

    Returns (created, template, versions, version number); in check mode the template
    and versions are what they would be.
    """
    params = module.params
    labelled = [v for v in versions if v.get("VersionDescription") == label]
    current = labelled[-1] if labelled else None  # with force, the newest one with the label wins
    if current is not None:
        diff_keys = differences(current.get("LaunchTemplateData", {}), desired)
        if not diff_keys:
            return False, dict(template or {}), versions, int(current["VersionNumber"])
        if not params["force"]:
            raise ModuleFailure(
                f"version: release {label} is already version {current['VersionNumber']} of "
                f"{params['name']} with other data ({', '.join(diff_keys)} differ): use a new "
                "release version, or force: true to supersede it",
                differing_keys=diff_keys,
            )

    if template is None:
        template = {
            "LaunchTemplateId": "",
            "LaunchTemplateName": params["name"],
            "DefaultVersionNumber": 1,
            "LatestVersionNumber": 1,
            "Tags": tag_list(params["tags"]),
        }
        if not module.check_mode:
            tagging = (
                {"TagSpecifications": [{"ResourceType": "launch-template", "Tags": tag_list(params["tags"])}]}
                if params["tags"]
                else {}
            )
            created = client.create_launch_template(
                LaunchTemplateName=params["name"],
                VersionDescription=label,
                LaunchTemplateData=desired,
                aws_retry=True,
                **tagging,
            )["LaunchTemplate"]
            template.update(created, Tags=tag_list(params["tags"]))
        return (
            True,
            template,
            [{"VersionNumber": 1, "VersionDescription": label, "LaunchTemplateData": desired}],
            1,
        )

    template = dict(template)
    number = int(template["LatestVersionNumber"]) + 1  # what EC2 will assign; the real run reports it
    if not module.check_mode:
        made = client.create_launch_template_version(
            LaunchTemplateId=template["LaunchTemplateId"],
            VersionDescription=label,
            LaunchTemplateData=desired,
            aws_retry=True,
        )["LaunchTemplateVersion"]
        number = int(made["VersionNumber"])
    template["LatestVersionNumber"] = number
    new = {"VersionNumber": number, "VersionDescription": label, "LaunchTemplateData": desired}
    return True, template, [*versions, new], number


def ensure_default(module: Any, client: Any, template: dict[str, Any], number: int) -> bool:
    if not module.params["set_default"] or int(template["DefaultVersionNumber"]) == number:
        return False
    if not module.check_mode:
        client.modify_launch_template(
            LaunchTemplateId=template["LaunchTemplateId"], DefaultVersion=str(number), aws_retry=True
        )
    template["DefaultVersionNumber"] = number
    return True


def ensure_release(module: Any, client: Any) -> tuple[bool, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Returns (changed, result, before, after) for state=present."""
    params = module.params
    label = check_label(params["version"])
    image = resolve_image(module, client)
    image_version = tag_dict(image.get("Tags")).get("Version")
    if image_version is not None and image_version != label:
        raise ModuleFailure(
            f"version: image {image['ImageId']} is tagged Version={image_version}, "
            f"but the release label is {label}: release it under its own version"
        )
    desired = build_data(params, image, label)

    found = describe_template(client, params["name"])
    versions = describe_versions(client, found["LaunchTemplateId"]) if found else []
    before = _snapshot(found, versions)

    created, template, versions, number = ensure_version(
        module, client, found, versions, desired=desired, label=label
    )
    changed = created
    changed |= ensure_default(module, client, template, number)
    if found is not None and params["tags"] is not None:
        tags_changed, tags_after = ensure_tags(module, client, template, params["tags"], params["purge_tags"])
        changed |= tags_changed
        template["Tags"] = tag_list(tags_after)

    # Pruning: a template that does not exist yet (check mode) has nothing to prune.
    template_id = template["LaunchTemplateId"]
    in_use = versions_in_use(client, template_id) if template_id else set()
    numbers = [int(v["VersionNumber"]) for v in versions]
    default = int(template["DefaultVersionNumber"])
    prune = versions_to_prune(numbers, params["keep_versions"], default, in_use)
    held = sorted(set(versions_to_prune(numbers, params["keep_versions"], default, ())) - set(prune))
    deleted, warnings = ensure_pruned(module, client, template_id, prune) if template_id else ([], [])
    for warning in warnings:
        module.warn(warning)
    changed |= bool(deleted)
    versions = [v for v in versions if int(v["VersionNumber"]) not in deleted]

    result = {
        "launch_template_id": template_id,
        "launch_template_name": params["name"],
        "version": label,
        "version_number": number,
        "default_version": default,
        "latest_version": int(template["LatestVersionNumber"]),
        "image_id": image["ImageId"],
        "image_name": image.get("Name", ""),
        "created_version": created,
        "deleted_versions": deleted,
        "kept_in_use": held,
        "launch_template_data": desired,
    }
    return changed, result, before, _snapshot(template, versions)


def ensure_absent(module: Any, client: Any) -> tuple[bool, dict[str, Any], dict[str, Any], dict[str, Any]]:
    params = module.params
    template = describe_template(client, params["name"])
    result: dict[str, Any] = {
        "launch_template_id": template["LaunchTemplateId"] if template else "",
        "launch_template_name": params["name"],
        "default_version": None,
        "latest_version": None,
        "deleted_versions": [],
        "kept_in_use": [],
    }
    if template is None:
        return False, result, {}, {}
    versions = describe_versions(client, template["LaunchTemplateId"])
    before = _snapshot(template, versions)
    in_use = versions_in_use(client, template["LaunchTemplateId"])
    default = int(template["DefaultVersionNumber"])

    if params["version"] is None:
        if in_use and not params["force"]:
            raise ModuleFailure(
                f"name: launch template {params['name']} is still used by instances launched from "
                f"versions {', '.join(map(str, sorted(in_use)))}: stop them first, or force: true",
                versions_in_use=sorted(in_use),
            )
        if not module.check_mode:
            client.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"], aws_retry=True)
        result["deleted_versions"] = [int(v["VersionNumber"]) for v in versions]
        return True, result, before, {}

    label = check_label(params["version"])
    labelled = [int(v["VersionNumber"]) for v in versions if v.get("VersionDescription") == label]
    if default in labelled:
        raise ModuleFailure(
            f"version: release {label} is the default version ({default}) of {params['name']}: "
            "release another version first"
        )
    if in_use & set(labelled):
        raise ModuleFailure(
            f"version: release {label} (versions {', '.join(map(str, labelled))}) is still used by "
            f"instances launched from versions {', '.join(map(str, sorted(in_use & set(labelled))))}"
        )
    deleted, warnings = ensure_pruned(module, client, template["LaunchTemplateId"], labelled)
    for warning in warnings:
        module.warn(warning)
    remaining = [v for v in versions if int(v["VersionNumber"]) not in deleted]
    result.update(
        default_version=default,
        latest_version=max(int(v["VersionNumber"]) for v in remaining),
        deleted_versions=deleted,
    )
    return bool(deleted), result, before, _snapshot(template, remaining)


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[
            ("state", "present", ("version", "instance_type")),
            ("state", "present", ("image_id", "image_name", "image_tags"), True),
        ],
        mutually_exclusive=[
            ("image_id", "image_name"),
            ("image_id", "image_tags"),
            ("network_interfaces", "subnet_id"),
            ("network_interfaces", "security_group_ids"),
        ],
        supports_check_mode=True,
    )
    params = module.params
    hop_limit = (params["metadata_options"] or {}).get("http_put_response_hop_limit", 1)
    if not 1 <= hop_limit <= 64:
        module.fail_json(
            msg=f"metadata_options.http_put_response_hop_limit: expected 1 to 64, got {hop_limit}"
        )
    if params["keep_versions"] < 1:
        module.fail_json(
            msg=f"keep_versions: expected an integer of at least 1, got {params['keep_versions']}"
        )
    if params["wait_timeout"] < 1:
        module.fail_json(
            msg=f"wait_timeout: expected a positive number of seconds, got {params['wait_timeout']}"
        )

    client = ec2_client(module)
    try:
        if params["state"] == "present":
            changed, result, before, after = ensure_release(module, client)
        else:
            changed, result, before, after = ensure_absent(module, client)
    except ModuleFailure as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    except AWS_ERRORS as exc:
        if is_unsupported(exc):
            module.fail_json_aws(exc, msg="this endpoint does not implement an EC2 action the release needs")
        module.fail_json_aws(exc, msg=f"EC2 call failed while releasing to launch template {params['name']}")
    module.exit_json(changed=changed, diff={"before": before, "after": after}, **result)


if __name__ == "__main__":
    main()
