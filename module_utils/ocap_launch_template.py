"""Launch template data for a release: build it, compare it, choose versions to prune.

Pure functions over the EC2 API's own shapes (no client calls), imported by
``ec2_image_release`` and ``ec2_image_retention`` as
``ansible.module_utils.ocap_launch_template``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.module_utils.ocap_aws import ModuleFailure, tag_list

# A release label ends up in an AMI name, tag values and a version description:
# keep to characters all three accept.
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
IMAGE_ID_RE = re.compile(r"^(?:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+):)?(?P<image_id>ami-[0-9a-f]{8,17})$")

# Tag specifications belong in launch template data for these resource types only.
# (Some emulators copy the template's own "launch-template" tags into version 1's
# data; real EC2 never stores them there, so they are not part of the comparison.)
TAGGED_RESOURCE_TYPES = ("instance", "volume", "network-interface")


def check_label(label: str) -> str:
    if not LABEL_RE.match(label or ""):
        raise ModuleFailure(
            f"version: expected a release label of letters, digits and . _ + - "
            f"(up to 128 characters, starting with a letter or digit), got {label!r}"
        )
    return label


def parse_image_id(value: str, region: str | None) -> str:
    """``ami-…`` or Packer's ``region:ami-…``; a region other than the module's is an error."""
    match = IMAGE_ID_RE.match(value.strip())
    if not match:
        raise ModuleFailure(f"image_id: expected 'ami-<hex>' or '<region>:ami-<hex>', got {value!r}")
    image_region = match.group("region")
    if image_region and region and image_region != region:
        raise ModuleFailure(
            f"image_id: image {match.group('image_id')} is in region {image_region}, but this release "
            f"targets region {region}: copy the image to {region} or set region: {image_region}"
        )
    return match.group("image_id")


def release_tags(name_tag: str, label: str, pool: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    """Tags every instance and volume of the release carries: Name, Version, Pool (extra tags win)."""
    tags = {"Name": name_tag, "Version": label, "Pool": pool}
    tags.update({str(k): str(v) for k, v in (extra or {}).items()})
    return tags


def _ebs(device: Mapping[str, Any], kms_key_id: str | None) -> dict[str, Any]:
    ebs: dict[str, Any] = {
        "Encrypted": bool(device.get("encrypted", True)),
        "DeleteOnTermination": bool(device.get("delete_on_termination", True)),
    }
    for option, key in (
        ("volume_size", "VolumeSize"),
        ("volume_type", "VolumeType"),
        ("iops", "Iops"),
        ("throughput", "Throughput"),
    ):
        if device.get(option) is not None:
            ebs[key] = device[option]
    key_id = device.get("kms_key_id") or kms_key_id
    if ebs["Encrypted"] and key_id:
        ebs["KmsKeyId"] = key_id
    return ebs


def block_device_mappings(
    block_devices: Iterable[Mapping[str, Any]] | None,
    image: Mapping[str, Any],
    kms_key_id: str | None,
) -> list[dict[str, Any]]:
    """Explicit BLOCK_DEVICES, or else the image's EBS devices, encrypted (the safe default).

    Without a mapping, instances would inherit the image's (possibly unencrypted)
    settings; restating the image's devices with ``Encrypted`` keeps size and type
    and makes every volume encrypted.
    """
    if block_devices:
        return [{"DeviceName": d["device_name"], "Ebs": _ebs(d, kms_key_id)} for d in block_devices]
    mappings = []
    for mapping in image.get("BlockDeviceMappings", []):
        ebs = mapping.get("Ebs")
        if not ebs:
            continue  # instance-store and NoDevice entries are the image's business
        device = {
            "volume_size": ebs.get("VolumeSize"),
            "volume_type": ebs.get("VolumeType"),
            "iops": ebs.get("Iops"),
            "throughput": ebs.get("Throughput"),
            "delete_on_termination": True,
            "encrypted": True,
        }
        mappings.append({"DeviceName": mapping["DeviceName"], "Ebs": _ebs(device, kms_key_id)})
    return mappings


def _network_interfaces(
    interfaces: Iterable[Mapping[str, Any]] | None,
    subnet_id: str | None,
    security_group_ids: list[str] | None,
) -> list[dict[str, Any]]:
    # A launch template can only name a subnet inside a network interface, and then
    # security groups must sit on that interface too.
    if not interfaces and subnet_id:
        interfaces = [{"device_index": 0, "subnet_id": subnet_id, "security_group_ids": security_group_ids}]
    result = []
    for nic in interfaces or ():
        entry: dict[str, Any] = {
            "DeviceIndex": nic.get("device_index") or 0,
            "DeleteOnTermination": bool(nic.get("delete_on_termination", True)),
        }
        if nic.get("subnet_id"):
            entry["SubnetId"] = nic["subnet_id"]
        if nic.get("security_group_ids"):
            entry["Groups"] = list(nic["security_group_ids"])
        if nic.get("associate_public_ip_address") is not None:
            entry["AssociatePublicIpAddress"] = bool(nic["associate_public_ip_address"])
        result.append(entry)
    return result


def build_data(params: Mapping[str, Any], image: Mapping[str, Any], label: str) -> dict[str, Any]:
    """The launch template data this release should carry, from module PARAMS and the IMAGE."""
    pool = params.get("pool") or params["name"]
    extra = params.get("instance_tags") or {}
    name_tag = extra.get("Name") or f"{pool}-{label}"
    tags = release_tags(name_tag, label, pool, extra)
    metadata = params.get("metadata_options") or {}
    data: dict[str, Any] = {
        "ImageId": image["ImageId"],
        "InstanceType": params["instance_type"],
        "MetadataOptions": {
            "HttpEndpoint": "enabled",
            "HttpTokens": metadata.get("http_tokens") or "required",
            "HttpPutResponseHopLimit": metadata.get("http_put_response_hop_limit") or 1,
            "InstanceMetadataTags": metadata.get("instance_metadata_tags") or "disabled",
        },
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tag_list(tags)},
            {"ResourceType": "volume", "Tags": tag_list(tags)},
        ],
    }
    profile = params.get("instance_profile")
    if profile:
        data["IamInstanceProfile"] = {"Arn": profile} if profile.startswith("arn:") else {"Name": profile}
    nics = _network_interfaces(
        params.get("network_interfaces"), params.get("subnet_id"), params.get("security_group_ids")
    )
    if nics:
        data["NetworkInterfaces"] = nics
    elif params.get("security_group_ids"):
        data["SecurityGroupIds"] = list(params["security_group_ids"])
    if params.get("key_name"):
        data["KeyName"] = params["key_name"]
    if params.get("user_data"):
        data["UserData"] = base64.b64encode(params["user_data"].encode()).decode()
    mappings = block_device_mappings(params.get("block_devices"), image, params.get("kms_key_id"))
    if mappings:
        data["BlockDeviceMappings"] = mappings
    return normalize(data)


def _clean(value: Any) -> Any:
    if isinstance(value, Mapping):
        cleaned = {k: _clean(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None and v not in ([], {})}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def normalize(data: Mapping[str, Any]) -> dict[str, Any]:
    """DATA in one canonical form, so that equal launch configurations compare equal.

    Orders what EC2 treats as unordered (tags, security groups, devices), drops
    empty values, and keeps only tag specifications valid in launch template data.
    """
    out: dict[str, Any] = _clean(dict(data))
    specs = [s for s in out.get("TagSpecifications", []) if s.get("ResourceType") in TAGGED_RESOURCE_TYPES]
    if specs:
        out["TagSpecifications"] = sorted(
            (
                {"ResourceType": s["ResourceType"], "Tags": sorted(s.get("Tags", []), key=lambda t: t["Key"])}
                for s in specs
            ),
            key=lambda s: s["ResourceType"],
        )
    else:
        out.pop("TagSpecifications", None)
    if "SecurityGroupIds" in out:
        out["SecurityGroupIds"] = sorted(out["SecurityGroupIds"])
    if "NetworkInterfaces" in out:
        nics = [dict(n) for n in out["NetworkInterfaces"]]
        for nic in nics:
            if "Groups" in nic:
                nic["Groups"] = sorted(nic["Groups"])
        out["NetworkInterfaces"] = sorted(nics, key=lambda n: n.get("DeviceIndex", 0))
    if "BlockDeviceMappings" in out:
        out["BlockDeviceMappings"] = sorted(out["BlockDeviceMappings"], key=lambda m: m["DeviceName"])
    return out


def differences(current: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """Top-level keys whose values differ between two (normalized) launch template datas."""
    current, desired = normalize(current), normalize(desired)
    return sorted(k for k in set(current) | set(desired) if current.get(k) != desired.get(k))


def versions_to_prune(
    versions: Iterable[int], keep: int, default: int | None, in_use: Iterable[int]
) -> list[int]:
    """Version numbers beyond the newest KEEP, never the DEFAULT and never one IN_USE."""
    ordered = sorted(set(versions), reverse=True)
    protected = set(in_use) | ({default} if default is not None else set())
    return sorted(v for v in ordered[keep:] if v not in protected)
