"""ec2_image_retention against the moto server.

Moto gaps met here (tested with recorded response shapes in tests/unit/test_release_stubbed.py):
- EnableImageDeprecation and Enable/DisableImageDeregistrationProtection are not
  implemented, and DescribeImages returns neither DeprecationTime nor
  DeregistrationProtection: the module must detect that, change nothing and warn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.release import harness


def _exists(ec2: Any, image_id: str) -> bool:
    return bool(ec2.describe_images(ImageIds=[image_id])["Images"])


def _snapshot_exists(ec2: Any, snapshot_id: str) -> bool:
    return any(s["SnapshotId"] == snapshot_id for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"])


@pytest.fixture()
def line(make_image: Callable[..., str], unique: str) -> list[str]:
    """Three images of one release line, oldest first, with distinct creation times."""
    images = []
    for n in range(3):
        if n:
            time.sleep(1.1)  # moto stamps CreationDate in whole seconds
        images.append(make_image(f"line-{unique}-1.{n}.0", Line=unique))
    return images


def test_keeps_the_newest_and_retires_the_rest_with_their_snapshots(
    retention_module: Any, ec2: Any, line: list[str], make_image: Callable[..., str], unique: str
) -> None:
    bystander = make_image(f"other-{unique}-0.1.0")  # not of this line
    oldest = line[0]
    [snapshot] = [
        m["Ebs"]["SnapshotId"]
        for m in ec2.describe_images(ImageIds=[oldest])["Images"][0]["BlockDeviceMappings"]
    ]
    args = {"name_prefix": f"line-{unique}-", "keep": 2}

    predicted = harness.run(retention_module, args, check=True)
    assert predicted["changed"] is True
    assert [i["image_id"] for i in predicted["deregistered"]] == [oldest]
    assert predicted["deleted_snapshots"] == [snapshot]
    assert predicted["kept"] == [line[2], line[1]]
    assert set(predicted["diff"]["before"]["images"]) - set(predicted["diff"]["after"]["images"]) == {oldest}
    assert _exists(ec2, oldest) and _snapshot_exists(ec2, snapshot), "check mode deleted something"

    done = harness.run(retention_module, args)
    assert [i["image_id"] for i in done["deregistered"]] == [oldest]
    assert done["diff"] == predicted["diff"]
    assert not _exists(ec2, oldest)
    assert not _snapshot_exists(ec2, snapshot)
    assert _exists(ec2, line[1]) and _exists(ec2, line[2]) and _exists(ec2, bystander)

    again = harness.run(retention_module, args)
    assert again["changed"] is False and again["deregistered"] == []


def test_never_retires_images_a_template_or_an_instance_still_uses(
    retention_module: Any, ec2: Any, make_image: Callable[..., str], unique: str
) -> None:
    in_template = make_image(f"used-{unique}-a")
    in_instance = make_image(f"used-{unique}-b")
    unused = make_image(f"used-{unique}-c")
    ec2.create_launch_template(
        LaunchTemplateName=f"keep-{unique}", LaunchTemplateData={"ImageId": "ami-12c6146b"}
    )
    ec2.create_launch_template_version(
        LaunchTemplateName=f"keep-{unique}", LaunchTemplateData={"ImageId": in_template}
    )
    instance = ec2.run_instances(ImageId=in_instance, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance])  # a stopped pool instance still needs its image

    result = harness.run(retention_module, {"name_prefix": f"used-{unique}-", "keep": 0})
    assert [i["image_id"] for i in result["deregistered"]] == [unused]
    reasons = {s["image_id"]: s["reason"] for s in result["skipped"]}
    assert reasons[in_template] == f"used by launch template keep-{unique} (version 2)"
    assert reasons[in_instance] == f"used by instance {instance} (stopped)"
    assert _exists(ec2, in_template) and _exists(ec2, in_instance)


def test_older_than_retires_old_images_even_among_the_newest(
    retention_module: Any, ec2: Any, make_image: Callable[..., str], unique: str
) -> None:
    images = [make_image(f"aged-{unique}-{n}") for n in range(2)]
    keep_all = {"name_prefix": f"aged-{unique}-", "keep": 10}
    assert harness.run(retention_module, dict(keep_all, older_than="2000-01-01"))["changed"] is False
    result = harness.run(retention_module, dict(keep_all, older_than="2999-01-01T00:00:00Z"))
    assert sorted(i["image_id"] for i in result["deregistered"]) == sorted(images)


def test_selecting_by_tags(retention_module: Any, line: list[str], unique: str) -> None:
    result = harness.run(retention_module, {"tags": {"Line": unique}, "keep": 1}, check=True)
    assert sorted(i["image_id"] for i in result["deregistered"]) == sorted(line[:2])


def test_kept_image_settings_are_left_alone_with_a_warning_where_the_endpoint_lacks_them(
    retention_module: Any, line: list[str], unique: str
) -> None:
    """Moto gap: no EnableImageDeprecation / EnableImageDeregistrationProtection."""
    args = {
        "name_prefix": f"line-{unique}-",
        "keep": 3,
        "deprecate_at": "2030-01-01",
        "deregistration_protection": True,
    }
    result = harness.run(retention_module, args)
    assert result["changed"] is False and result["updated"] == []
    text = " ".join(harness.warnings(result))
    assert "EnableImageDeprecation" in text and "EnableImageDeregistrationProtection" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"keep": 1}, "one of the following is required: name_prefix, tags"),
        ({"name_prefix": "x-", "older_than": "last week"}, "older_than: expected an ISO 8601 date or time"),
        ({"name_prefix": "x-", "deprecate_at": "soon"}, "deprecate_at: expected an ISO 8601 date or time"),
        ({"name_prefix": "x-", "keep": -1}, "keep: expected an integer of at least 0, got -1"),
        ({"name_prefix": " "}, "name_prefix: expected a non-empty prefix"),
        ({"name_prefix": "x-", "keep": "three"}, "argument 'keep' is of type"),
    ],
)
def test_bad_input_fails_with_a_message_naming_the_field(
    retention_module: Any, aws_env: dict[str, str], args: dict[str, Any], message: str
) -> None:
    result = harness.run(retention_module, args)
    assert result.get("failed"), result
    assert message in result["msg"]
