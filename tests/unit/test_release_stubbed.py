"""The release modules' paths the moto server cannot exercise, against botocore's Stubber.

Gaps of the emulator (moto 5.2) covered here, with response shapes from the EC2 API
reference (and validated by Stubber against botocore's service model):
- DeleteLaunchTemplateVersions is not implemented: version pruning, its partial
  failures, and the DryRun probe that tells an implementing endpoint apart.
- Images are never "pending": waiting for an image, and timing out.
- EnableImageDeprecation / EnableImageDeregistrationProtection are not implemented
  and DescribeImages omits DeprecationTime / DeregistrationProtection.
Every expected call is asserted (Stubber fails on an unexpected or missing call), so
these tests also pin down that check mode makes no write call.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from botocore.stub import ANY, Stubber

from tests.integration.release import harness

TEMPLATE_ID = "lt-0abcdef1234567890"
IMAGE_ID = "ami-0123456789abcdef0"
NAME = "ocap-dev-workstation"


@pytest.fixture()
def stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """Every client a module creates is this one stubbed EC2 client."""
    client = boto3.client(
        "ec2", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    stubber = Stubber(client)

    def fake_client(self: Any, service: str, retry_decorator: Any = None, **extra: Any) -> Any:
        assert service == "ec2"
        return RetryingBotoClientWrapper(client, retry_decorator) if retry_decorator else client

    monkeypatch.setattr(AnsibleAWSModule, "client", fake_client)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setattr("botocore.waiter.time.sleep", lambda _s: None)
    with stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def _image(state: str = "available", **extra: Any) -> dict[str, Any]:
    image = {
        "ImageId": IMAGE_ID,
        "Name": "ocap-workstation-1.4.0",
        "State": state,
        "CreationDate": "2026-11-20T10:00:00.000Z",
        "OwnerId": "123456789012",
        "RootDeviceName": "/dev/sda1",
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/sda1",
                "Ebs": {
                    "SnapshotId": "snap-0123456789abcdef0",
                    "VolumeSize": 100,
                    "VolumeType": "gp3",
                    "DeleteOnTermination": True,
                    "Encrypted": False,
                },
            }
        ],
        "Tags": [{"Key": "Version", "Value": "1.4.0"}],
    }
    image.update(extra)
    return image


RELEASE_ARGS = {"name": NAME, "image_id": IMAGE_ID, "version": "1.4.0", "instance_type": "g4dn.xlarge"}


def _desired_data() -> dict[str, Any]:
    from ansible.module_utils.ocap_launch_template import build_data

    data: dict[str, Any] = build_data(RELEASE_ARGS, _image(), "1.4.0")
    return data


def _expect_tags(stub: Stubber) -> None:
    stub.add_response(
        "describe_tags",
        {
            "Tags": [
                {
                    "Key": "Project",
                    "Value": "ocap",
                    "ResourceId": TEMPLATE_ID,
                    "ResourceType": "launch-template",
                }
            ]
        },
        {"Filters": [{"Name": "resource-id", "Values": [TEMPLATE_ID]}]},
    )


def _expect_release_reads(stub: Stubber, *, versions: int, default: int) -> None:
    stub.add_response("describe_images", {"Images": [_image()]}, {"ImageIds": [IMAGE_ID]})
    stub.add_response(
        "describe_launch_templates",
        {
            "LaunchTemplates": [
                {
                    "LaunchTemplateId": TEMPLATE_ID,
                    "LaunchTemplateName": NAME,
                    "DefaultVersionNumber": default,
                    "LatestVersionNumber": versions,
                    "Tags": [],
                }
            ]
        },
        {"LaunchTemplateNames": [NAME]},
    )
    _expect_tags(stub)
    old = {"ImageId": "ami-0fedcba9876543210", "InstanceType": "g4dn.xlarge"}
    stub.add_response(
        "describe_launch_template_versions",
        {
            "LaunchTemplateVersions": [
                {
                    "LaunchTemplateId": TEMPLATE_ID,
                    "LaunchTemplateName": NAME,
                    "VersionNumber": n,
                    "VersionDescription": "1.4.0" if n == versions else f"1.{n - 1}.0",
                    "DefaultVersion": n == default,
                    "LaunchTemplateData": _desired_data() if n == versions else old,
                }
                for n in range(1, versions + 1)
            ]
        },
        {"LaunchTemplateId": TEMPLATE_ID, "MaxResults": 200},
    )
    # One stopped pool instance still runs version 2.
    stub.add_response(
        "describe_instances",
        {
            "Reservations": [
                {
                    "Instances": [
                        {
                            "InstanceId": "i-0123456789abcdef0",
                            "State": {"Code": 80, "Name": "stopped"},
                            "Tags": [
                                {"Key": "aws:ec2launchtemplate:id", "Value": TEMPLATE_ID},
                                {"Key": "aws:ec2launchtemplate:version", "Value": "2"},
                            ],
                        }
                    ]
                }
            ]
        },
        {
            "Filters": [
                {"Name": "tag:aws:ec2launchtemplate:id", "Values": [TEMPLATE_ID]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ]
        },
    )


def _expect_dry_run(stub: Stubber, operation: str, params: dict[str, Any]) -> None:
    stub.add_client_error(
        operation,
        service_error_code="DryRunOperation",
        service_message="Request would have succeeded, but DryRun flag is set.",
        http_status_code=412,
        expected_params={"DryRun": True, **params},
    )


def test_pruning_deletes_old_versions_but_not_the_default_or_one_in_use(stub: Stubber) -> None:
    _expect_release_reads(stub, versions=5, default=5)
    _expect_dry_run(
        stub, "delete_launch_template_versions", {"LaunchTemplateId": TEMPLATE_ID, "Versions": ["1"]}
    )
    stub.add_response(
        "delete_launch_template_versions",
        {
            "SuccessfullyDeletedLaunchTemplateVersions": [
                {"LaunchTemplateId": TEMPLATE_ID, "LaunchTemplateName": NAME, "VersionNumber": 1}
            ],
            "UnsuccessfullyDeletedLaunchTemplateVersions": [
                {
                    "LaunchTemplateId": TEMPLATE_ID,
                    "LaunchTemplateName": NAME,
                    "VersionNumber": 3,
                    "ResponseError": {
                        "Code": "launchTemplateVersionDoesNotExist",
                        "Message": "The specified launch template version does not exist.",
                    },
                }
            ],
        },
        {"LaunchTemplateId": TEMPLATE_ID, "Versions": ["1", "3"]},
    )
    result = harness.run(harness.load("ec2_image_release"), dict(RELEASE_ARGS, keep_versions=2))
    assert result["changed"] is True and not result.get("failed"), result
    assert result["deleted_versions"] == [1]
    assert result["kept_in_use"] == [2]
    assert result["created_version"] is False
    assert list(result["diff"]["after"]["versions"]) == ["2", "3", "4", "5"]
    assert any(
        "version 3 was not deleted: launchTemplateVersionDoesNotExist" in w for w in harness.warnings(result)
    )


def test_pruning_in_check_mode_probes_and_deletes_nothing(stub: Stubber) -> None:
    _expect_release_reads(stub, versions=5, default=5)
    _expect_dry_run(
        stub, "delete_launch_template_versions", {"LaunchTemplateId": TEMPLATE_ID, "Versions": ["1"]}
    )
    result = harness.run(harness.load("ec2_image_release"), dict(RELEASE_ARGS, keep_versions=2), check=True)
    assert result["changed"] is True
    assert result["deleted_versions"] == [1, 3]
    assert list(result["diff"]["after"]["versions"]) == ["2", "4", "5"]


def test_an_endpoint_without_the_action_is_detected_and_named(stub: Stubber) -> None:
    _expect_release_reads(stub, versions=5, default=5)
    stub.add_client_error(
        "delete_launch_template_versions",
        service_error_code="InvalidAction",
        service_message="The action DeleteLaunchTemplateVersions is not valid for this web service.",
        http_status_code=400,
        expected_params={"DryRun": True, "LaunchTemplateId": TEMPLATE_ID, "Versions": ["1"]},
    )
    result = harness.run(harness.load("ec2_image_release"), dict(RELEASE_ARGS, keep_versions=2))
    assert result["changed"] is False and result["deleted_versions"] == []
    assert any("does not implement DeleteLaunchTemplateVersions" in w for w in harness.warnings(result))


def _expect_new_template_after_wait(stub: Stubber, polls: list[str]) -> None:
    stub.add_response("describe_images", {"Images": [_image("pending")]}, {"ImageIds": [IMAGE_ID]})
    for state in polls:
        stub.add_response("describe_images", {"Images": [_image(state)]}, {"ImageIds": [IMAGE_ID]})


def test_waits_for_a_pending_image(stub: Stubber) -> None:
    _expect_new_template_after_wait(stub, ["pending", "available", "available"])
    stub.add_client_error(
        "describe_launch_templates",
        service_error_code="InvalidLaunchTemplateName.NotFoundException",
        service_message="At least one of the launch templates specified in the request does not exist.",
        http_status_code=400,
    )
    result = harness.run(harness.load("ec2_image_release"), dict(RELEASE_ARGS, wait=True), check=True)
    assert result["changed"] is True and result["image_id"] == IMAGE_ID, result


def test_a_pending_image_without_wait_is_an_error(stub: Stubber) -> None:
    _expect_new_template_after_wait(stub, [])
    result = harness.run(harness.load("ec2_image_release"), RELEASE_ARGS)
    assert result["failed"] and result["msg"] == (
        f"image {IMAGE_ID} is pending, not available; set wait: true to wait for it"
    )


def test_waiting_gives_up_after_the_timeout(stub: Stubber) -> None:
    _expect_new_template_after_wait(stub, ["pending"])
    result = harness.run(harness.load("ec2_image_release"), dict(RELEASE_ARGS, wait=True, wait_timeout=10))
    assert result["failed"] and f"image {IMAGE_ID} did not become available within 10s" in result["msg"]


def test_retention_sets_deprecation_and_protection_on_kept_images_only_where_needed(stub: Stubber) -> None:
    up_to_date = _image(
        ImageId="ami-0aaaaaaaaaaaaaaaa",
        Name="ocap-workstation-1.4.0",
        DeprecationTime="2030-01-01T00:00:00.000Z",
        DeregistrationProtection="enabled-with-cooldown",
    )
    behind = _image(
        ImageId="ami-0bbbbbbbbbbbbbbbb",
        Name="ocap-workstation-1.3.0",
        CreationDate="2026-11-01T10:00:00.000Z",
        DeregistrationProtection="disabled",
    )
    stub.add_response(
        "describe_images",
        {"Images": [behind, up_to_date]},
        {"Owners": ["self"], "Filters": [{"Name": "name", "Values": ["ocap-workstation-*"]}]},
    )
    args = {
        "name_prefix": "ocap-workstation-",
        "keep": 5,
        "deprecate_at": "2030-01-01T00:00:30Z",
        "deregistration_protection": True,
    }
    deprecate = {"ImageId": "ami-0bbbbbbbbbbbbbbbb", "DeprecateAt": "2030-01-01T00:00:00.000Z"}
    _expect_dry_run(stub, "enable_image_deprecation", deprecate)
    stub.add_response("enable_image_deprecation", {"Return": True}, deprecate)
    protect = {"ImageId": "ami-0bbbbbbbbbbbbbbbb"}
    _expect_dry_run(stub, "enable_image_deregistration_protection", protect)
    stub.add_response("enable_image_deregistration_protection", {"Return": "true"}, protect)

    result = harness.run(harness.load("ec2_image_retention"), args)
    assert result["changed"] is True and result["updated"] == ["ami-0bbbbbbbbbbbbbbbb"], result
    assert result["deregistered"] == []
    after = result["diff"]["after"]["images"]["ami-0bbbbbbbbbbbbbbbb"]
    assert after["deprecation_time"] == "2030-01-01T00:00:00.000Z"
    assert after["deregistration_protection"] == "enabled"
    assert (
        result["diff"]["before"]["images"]["ami-0aaaaaaaaaaaaaaaa"]
        == result["diff"]["after"]["images"]["ami-0aaaaaaaaaaaaaaaa"]
    )


def test_retention_skips_a_protected_image(stub: Stubber) -> None:
    protected = _image(DeregistrationProtection="enabled")
    stub.add_response("describe_images", {"Images": [protected]}, {"Owners": ["self"], "Filters": ANY})
    stub.add_response("describe_launch_templates", {"LaunchTemplates": []}, {"MaxResults": 200})
    stub.add_response("describe_instances", {"Reservations": []}, {"Filters": ANY})
    result = harness.run(harness.load("ec2_image_retention"), {"name_prefix": "ocap-workstation-", "keep": 0})
    assert result["changed"] is False
    assert result["skipped"] == [{"image_id": IMAGE_ID, "reason": "deregistration protection is enabled"}]


def test_absent_with_a_version_deletes_only_that_release(stub: Stubber) -> None:
    stub.add_response(
        "describe_launch_templates",
        {
            "LaunchTemplates": [
                {
                    "LaunchTemplateId": TEMPLATE_ID,
                    "LaunchTemplateName": NAME,
                    "DefaultVersionNumber": 2,
                    "LatestVersionNumber": 2,
                }
            ]
        },
        {"LaunchTemplateNames": [NAME]},
    )
    _expect_tags(stub)
    stub.add_response(
        "describe_launch_template_versions",
        {
            "LaunchTemplateVersions": [
                {"VersionNumber": n, "VersionDescription": label, "LaunchTemplateData": {"ImageId": IMAGE_ID}}
                for n, label in ((1, "1.3.0"), (2, "1.4.0"))
            ]
        },
        {"LaunchTemplateId": TEMPLATE_ID, "MaxResults": 200},
    )
    stub.add_response("describe_instances", {"Reservations": []}, {"Filters": ANY})
    _expect_dry_run(
        stub, "delete_launch_template_versions", {"LaunchTemplateId": TEMPLATE_ID, "Versions": ["1"]}
    )
    stub.add_response(
        "delete_launch_template_versions",
        {
            "SuccessfullyDeletedLaunchTemplateVersions": [
                {"LaunchTemplateId": TEMPLATE_ID, "LaunchTemplateName": NAME, "VersionNumber": 1}
            ],
            "UnsuccessfullyDeletedLaunchTemplateVersions": [],
        },
        {"LaunchTemplateId": TEMPLATE_ID, "Versions": ["1"]},
    )
    result = harness.run(
        harness.load("ec2_image_release"), {"name": NAME, "state": "absent", "version": "1.3.0"}
    )
    assert result["changed"] is True and result["deleted_versions"] == [1], result
    assert result["diff"]["before"]["versions"] == {"1": "1.3.0", "2": "1.4.0"}
    assert result["diff"]["after"]["versions"] == {"2": "1.4.0"}


def test_retention_failing_half_way_reports_what_is_gone_and_what_is_left(stub: Stubber) -> None:
    stub.add_response("describe_images", {"Images": [_image()]}, {"Owners": ["self"], "Filters": ANY})
    stub.add_response("describe_launch_templates", {"LaunchTemplates": []}, {"MaxResults": 200})
    stub.add_response("describe_instances", {"Reservations": []}, {"Filters": ANY})
    stub.add_response("deregister_image", {"Return": True}, {"ImageId": IMAGE_ID})
    stub.add_client_error(
        "delete_snapshot",
        service_error_code="UnauthorizedOperation",
        service_message="You are not authorized to perform this operation.",
        http_status_code=403,
        expected_params={"SnapshotId": "snap-0123456789abcdef0"},
    )
    result = harness.run(harness.load("ec2_image_retention"), {"name_prefix": "ocap-workstation-", "keep": 0})
    assert result["failed"] and result["changed"] is True
    assert "snapshots left to delete: snap-0123456789abcdef0" in result["msg"]
    assert result["deregistered"] == [{"image_id": IMAGE_ID}]
    assert result["snapshots_left"] == ["snap-0123456789abcdef0"]
