"""Pure parts of a release: the data written, how it compares, which versions go."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from tests.integration.release import harness  # noqa: F401 - makes ansible.module_utils.ocap_* importable

from ansible.module_utils.ocap_aws import ModuleFailure, is_unsupported, tag_dict, tag_list  # isort: skip
from ansible.module_utils.ocap_launch_template import (  # isort: skip
    build_data,
    check_label,
    differences,
    normalize,
    parse_image_id,
    versions_to_prune,
)

IMAGE = {
    "ImageId": "ami-0123456789abcdef0",
    "BlockDeviceMappings": [
        {"DeviceName": "/dev/sda1", "Ebs": {"SnapshotId": "snap-1", "VolumeSize": 80, "VolumeType": "gp3"}},
        {"DeviceName": "xvdca", "VirtualName": "ephemeral0"},
    ],
}


def _params(**extra: Any) -> dict[str, Any]:
    return {"name": "ws", "instance_type": "g4dn.xlarge", **extra}


def test_defaults_are_imdsv2_and_encrypted_volumes_from_the_image() -> None:
    data = build_data(_params(), IMAGE, "1.0.0")
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert data["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/sda1",
            "Ebs": {"Encrypted": True, "DeleteOnTermination": True, "VolumeSize": 80, "VolumeType": "gp3"},
        }
    ]


def test_kms_key_and_explicit_devices() -> None:
    devices = [{"device_name": "/dev/sda1", "volume_size": 200, "encrypted": True}]
    data = build_data(_params(block_devices=devices, kms_key_id="alias/ocap"), IMAGE, "1.0.0")
    assert data["BlockDeviceMappings"][0]["Ebs"]["KmsKeyId"] == "alias/ocap"
    assert data["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 200


def test_release_tags_carry_name_version_and_pool() -> None:
    data = build_data(_params(pool="recording", instance_tags={"Team": "lab"}), IMAGE, "1.2.3")
    for spec in data["TagSpecifications"]:
        assert tag_dict(spec["Tags"]) == {
            "Name": "recording-1.2.3",
            "Version": "1.2.3",
            "Pool": "recording",
            "Team": "lab",
        }


def test_subnet_moves_security_groups_onto_the_interface() -> None:
    data = build_data(_params(subnet_id="subnet-1", security_group_ids=["sg-2", "sg-1"]), IMAGE, "1")
    assert "SecurityGroupIds" not in data
    assert data["NetworkInterfaces"] == [
        {"DeviceIndex": 0, "DeleteOnTermination": True, "SubnetId": "subnet-1", "Groups": ["sg-1", "sg-2"]}
    ]


def test_user_data_is_base64_and_profile_arn_or_name() -> None:
    by_arn = build_data(
        _params(user_data="hi", instance_profile="arn:aws:iam::1:instance-profile/p"), IMAGE, "1"
    )
    assert base64.b64decode(by_arn["UserData"]) == b"hi"
    assert by_arn["IamInstanceProfile"] == {"Arn": "arn:aws:iam::1:instance-profile/p"}
    assert build_data(_params(instance_profile="p"), IMAGE, "1")["IamInstanceProfile"] == {"Name": "p"}


def test_equal_configurations_in_another_order_compare_equal() -> None:
    a = {
        "SecurityGroupIds": ["sg-2", "sg-1"],
        "TagSpecifications": [
            {"ResourceType": "volume", "Tags": [{"Key": "B", "Value": "2"}, {"Key": "A", "Value": "1"}]},
            {"ResourceType": "instance", "Tags": [{"Key": "A", "Value": "1"}]},
            # The template's own tags, which an emulator copies into version 1's data.
            {"ResourceType": "launch-template", "Tags": [{"Key": "Project", "Value": "x"}]},
        ],
        "KeyName": None,
    }
    b = {
        "SecurityGroupIds": ["sg-1", "sg-2"],
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": [{"Key": "A", "Value": "1"}]},
            {"ResourceType": "volume", "Tags": [{"Key": "A", "Value": "1"}, {"Key": "B", "Value": "2"}]},
        ],
    }
    assert normalize(a) == normalize(b)
    assert differences(a, b) == []
    assert differences(a, dict(b, InstanceType="g5.xlarge")) == ["InstanceType"]


@pytest.mark.parametrize(
    ("versions", "keep", "default", "in_use", "expected"),
    [
        (range(1, 8), 3, 7, [], [1, 2, 3, 4]),
        (range(1, 8), 3, 2, [4], [1, 3]),  # an old default and an in-use version stay
        (range(1, 3), 5, 2, [], []),
        ([3, 5, 9], 1, 9, [], [3, 5]),  # numbers need not be contiguous
    ],
)
def test_versions_to_prune(
    versions: Any, keep: int, default: int, in_use: list[int], expected: list[int]
) -> None:
    assert versions_to_prune(versions, keep, default, in_use) == expected


def test_image_ids_from_packer_manifests() -> None:
    assert parse_image_id("us-east-1:ami-0123456789abcdef0", "us-east-1") == "ami-0123456789abcdef0"
    assert parse_image_id("ami-01234567", None) == "ami-01234567"
    with pytest.raises(
        ModuleFailure, match="is in region eu-west-1, but this release targets region us-east-1"
    ):
        parse_image_id("eu-west-1:ami-0123456789abcdef0", "us-east-1")
    with pytest.raises(ModuleFailure, match="image_id: expected"):
        parse_image_id("ami-XYZ", "us-east-1")


@pytest.mark.parametrize("label", ["1.0.0", "2026.11.23+build.5", "v1_rc-1"])
def test_labels_accepted(label: str) -> None:
    assert check_label(label) == label


@pytest.mark.parametrize("label", ["", "1.0 beta", "-1", "x" * 129, "1/2"])
def test_labels_refused(label: str) -> None:
    with pytest.raises(ModuleFailure, match="version: expected a release label"):
        check_label(label)


def test_tag_list_round_trip() -> None:
    assert tag_dict(tag_list({"b": "2", "a": "1"})) == {"a": "1", "b": "2"}
    assert tag_list({"b": "2", "a": "1"})[0]["Key"] == "a"


def _client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "DeleteLaunchTemplateVersions")


def test_telling_a_missing_action_from_a_failed_call() -> None:
    # AWS' answer to an unknown action, and an emulator's HTML error page.
    assert is_unsupported(_client_error("InvalidAction"))
    assert is_unsupported(
        ResponseParserError("Unable to parse response, invalid XML received: <!doctype html>")
    )
    # Real failures stay failures.
    for code in ("UnauthorizedOperation", "RequestLimitExceeded", "InvalidLaunchTemplateId.NotFound"):
        assert not is_unsupported(_client_error(code))
