"""ec2_image_release against the moto server: what an operator sees when releasing an image.

Moto gaps met here (each tested another way in tests/unit/test_release_stubbed.py):
- DeleteLaunchTemplateVersions is not implemented (moto answers with an HTML 500):
  the module must detect it, keep the versions and say so.
- Images are always "available" at once, so waiting for a pending image cannot happen.
- DescribeLaunchTemplates reports the tags a template was created with, not its
  current tags: the module reads tags with DescribeTags, which works on both.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.release import harness


def _args(name: str, image_id: str | None, version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    args = {
        "name": name,
        "image_id": image_id,
        "version": version,
        "instance_type": "g4dn.xlarge",
        "instance_profile": "ocap-workstation",
        "security_group_ids": ["sg-0aaa", "sg-0bbb"],
        "subnet_id": "subnet-0abc",
        "user_data": "<powershell>ocap-agent warmup</powershell>",
        "pool": "recording",
        "tags": {"Project": "ocap"},
    }
    args.update(extra)
    return args


def _versions(ec2: Any, name: str) -> list[dict[str, Any]]:
    found = ec2.describe_launch_template_versions(LaunchTemplateName=name)["LaunchTemplateVersions"]
    return sorted(found, key=lambda v: v["VersionNumber"])


def _default(ec2: Any, name: str) -> int:
    return int(
        ec2.describe_launch_templates(LaunchTemplateNames=[name])["LaunchTemplates"][0][
            "DefaultVersionNumber"
        ]
    )


def test_first_release_creates_the_template_with_safe_defaults(
    release_module: Any, ec2: Any, make_image: Callable[..., str], unique: str
) -> None:
    name = f"ws-{unique}"
    image = make_image(f"ocap-workstation-1.0.0-{unique}", Version="1.0.0")
    args = _args(name, f"us-east-1:{image}")

    predicted = harness.run(release_module, args, check=True)
    assert predicted["changed"] is True
    assert predicted["version_number"] == 1
    assert not ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": [name]}])[
        "LaunchTemplates"
    ], "check mode created the template"

    done = harness.run(release_module, args)
    assert done["changed"] is True, done.get("msg")
    assert done["launch_template_id"].startswith("lt-")
    assert (done["version_number"], done["default_version"], done["image_id"]) == (1, 1, image)
    # Check mode told the truth: same data, same version, same diff (the id is only known after).
    assert predicted["launch_template_data"] == done["launch_template_data"]
    assert predicted["diff"] == done["diff"]

    [version] = _versions(ec2, name)
    data = version["LaunchTemplateData"]
    assert version["VersionDescription"] == "1.0.0"
    assert data["ImageId"] == image
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert data["BlockDeviceMappings"] and all(m["Ebs"]["Encrypted"] for m in data["BlockDeviceMappings"])
    assert data["NetworkInterfaces"][0]["SubnetId"] == "subnet-0abc"
    assert sorted(data["NetworkInterfaces"][0]["Groups"]) == ["sg-0aaa", "sg-0bbb"]
    assert base64.b64decode(data["UserData"]).decode() == "<powershell>ocap-agent warmup</powershell>"
    for spec in ("instance", "volume"):
        tags = {
            t["Key"]: t["Value"]
            for s in data["TagSpecifications"]
            if s["ResourceType"] == spec
            for t in s["Tags"]
        }
        assert tags == {"Name": "recording-1.0.0", "Version": "1.0.0", "Pool": "recording"}
    template = ec2.describe_launch_templates(LaunchTemplateNames=[name])["LaunchTemplates"][0]
    assert {"Key": "Project", "Value": "ocap"} in template["Tags"]


def test_running_the_same_release_again_changes_nothing(
    release_module: Any, make_image: Callable[..., str], unique: str
) -> None:
    args = _args(f"ws-{unique}", make_image(f"img-{unique}"))
    assert harness.run(release_module, args)["changed"] is True
    for check in (True, False):
        again = harness.run(release_module, args, check=check)
        assert again["changed"] is False, again
        assert again["diff"]["before"] == again["diff"]["after"]
        assert again["created_version"] is False


def test_a_new_release_becomes_the_default_version(
    release_module: Any, ec2: Any, make_image: Callable[..., str], unique: str
) -> None:
    name = f"ws-{unique}"
    old, new = make_image(f"old-{unique}"), make_image(f"new-{unique}")
    harness.run(release_module, _args(name, old, "1.0.0"))

    predicted = harness.run(release_module, _args(name, new, "1.1.0"), check=True)
    assert predicted["changed"] and predicted["version_number"] == 2
    before, after = predicted["diff"]["before"], predicted["diff"]["after"]
    assert before["default_version_data"]["ImageId"] == old
    assert after["default_version_data"]["ImageId"] == new
    assert after["versions"] == {"1": "1.0.0", "2": "1.1.0"}
    assert _default(ec2, name) == 1 and len(_versions(ec2, name)) == 1, "check mode changed the template"

    done = harness.run(release_module, _args(name, new, "1.1.0"))
    assert (done["version_number"], done["default_version"]) == (2, 2)
    assert done["diff"] == predicted["diff"]
    assert _default(ec2, name) == 2


def test_set_default_false_leaves_the_default_alone(
    release_module: Any, ec2: Any, make_image: Callable[..., str], unique: str
) -> None:
    name = f"ws-{unique}"
    harness.run(release_module, _args(name, make_image(f"a-{unique}"), "1.0.0"))
    staged = harness.run(release_module, _args(name, make_image(f"b-{unique}"), "1.1.0", set_default=False))
    assert (staged["version_number"], staged["default_version"]) == (2, 1)
    assert _default(ec2, name) == 1


def test_reusing_a_label_with_other_data_fails_unless_forced(
    release_module: Any, ec2: Any, make_image: Callable[..., str], unique: str
) -> None:
    name = f"ws-{unique}"
    image = make_image(f"img-{unique}")
    harness.run(release_module, _args(name, image))

    refused = harness.run(release_module, _args(name, image, instance_type="g5.xlarge"))
    assert refused.get("failed")
    assert "release 1.0.0 is already version 1" in refused["msg"]
    assert "InstanceType" in refused["msg"] and "force" in refused["msg"]
    assert len(_versions(ec2, name)) == 1, "a refused release left a version behind"

    forced = harness.run(release_module, _args(name, image, instance_type="g5.xlarge", force=True))
    assert forced["changed"] and (forced["version_number"], forced["default_version"]) == (2, 2)
    assert _versions(ec2, name)[-1]["LaunchTemplateData"]["InstanceType"] == "g5.xlarge"
    # The newest version with the label now is the release: running it again is a no-op.
    assert harness.run(release_module, _args(name, image, instance_type="g5.xlarge"))["changed"] is False


def test_old_versions_are_kept_with_a_warning_where_the_endpoint_cannot_delete_them(
    release_module: Any, ec2: Any, make_image: Callable[..., str], unique: str
) -> None:
    """Moto gap: no DeleteLaunchTemplateVersions. Deletion itself: test_release_stubbed.py."""
    name = f"ws-{unique}"
    for n in range(3):
        result = harness.run(
            release_module, _args(name, make_image(f"i{n}-{unique}"), f"1.{n}.0", keep_versions=1)
        )
    assert result["deleted_versions"] == []
    assert any("DeleteLaunchTemplateVersions" in w for w in harness.warnings(result))
    assert len(_versions(ec2, name)) == 3
    again = harness.run(release_module, _args(name, make_image(f"i2b-{unique}"), "1.2.0", keep_versions=1))
    assert again.get("failed"), "the label 1.2.0 is taken by other data"


def test_image_by_name_takes_the_newest_available_match(
    release_module: Any, ec2: Any, make_image: Callable[..., str], unique: str
) -> None:
    make_image(f"line-{unique}-1.0.0")
    time.sleep(1.1)  # moto stamps CreationDate in whole seconds: make "newest" unambiguous
    newest_available = make_image(f"line-{unique}-1.0.1")
    time.sleep(1.1)
    disabled = make_image(f"line-{unique}-1.0.2")
    ec2.disable_image(ImageId=disabled)
    args = _args(f"ws-{unique}", None, image_name=f"line-{unique}-*")
    assert harness.run(release_module, args)["image_id"] == newest_available


def test_image_by_tags(release_module: Any, make_image: Callable[..., str], unique: str) -> None:
    image = make_image(f"tagged-{unique}", Line=unique, Version="2.0.0")
    make_image(f"other-{unique}", Line=f"not-{unique}")
    args = _args(f"ws-{unique}", None, version="2.0.0", image_tags={"Line": unique})
    assert harness.run(release_module, args)["image_id"] == image


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"image_id": "ami-0123456789abcdef0"},
            "image_id: image ami-0123456789abcdef0 not found in region us-east-1",
        ),
        (
            {"image_id": "eu-west-1:ami-0123456789abcdef0"},
            "is in region eu-west-1, but this release targets region us-east-1",
        ),
        ({"image_id": "ubuntu"}, "image_id: expected 'ami-<hex>' or '<region>:ami-<hex>', got 'ubuntu'"),
        ({"version": "1.0 beta"}, "version: expected a release label"),
        ({"keep_versions": 0}, "keep_versions: expected an integer of at least 1, got 0"),
        (
            {"image_id": None},
            "state is present but any of the following are missing: image_id, image_name, image_tags",
        ),
        ({"instance_type": None}, "state is present but all of the following are missing: instance_type"),
        (
            {"network_interfaces": [{"subnet_id": "subnet-1"}]},
            "parameters are mutually exclusive: network_interfaces|subnet_id",
        ),
        (
            {"metadata_options": {"http_put_response_hop_limit": 0}},
            "metadata_options.http_put_response_hop_limit: expected 1 to 64, got 0",
        ),
        (
            {"block_devices": [{"volume_size": 10}]},
            "missing required arguments: device_name found in block_devices",
        ),
        (
            {"block_devices": [{"device_name": "/dev/sda1", "volume_type": "ssd"}]},
            "value of volume_type must be one of",
        ),
        (
            {"image_id": None, "image_name": "no-such-image-*"},
            "no available image matches image_name='no-such-image-*' in region us-east-1",
        ),
        ({"version": "9.9.9"}, "is tagged Version=1.0.0, but the release label is 9.9.9"),
    ],
)
def test_bad_input_fails_with_a_message_naming_the_field(  # noqa: PLR0917 - fixtures and parameters
    release_module: Any,
    ec2: Any,
    make_image: Callable[..., str],
    unique: str,
    change: dict[str, Any],
    message: str,
) -> None:
    name = f"ws-{unique}"
    args = _args(name, make_image(f"img-{unique}", Version="1.0.0"))
    args.update(change)
    result = harness.run(release_module, args)
    assert result.get("failed"), result
    assert message in result["msg"]
    assert not ec2.describe_launch_templates(Filters=[{"Name": "launch-template-name", "Values": [name]}])[
        "LaunchTemplates"
    ], "a failed release left a template behind"


def test_absent_removes_the_template_unless_instances_use_it(
    release_module: Any, ec2: Any, make_image: Callable[..., str], unique: str
) -> None:
    name = f"ws-{unique}"
    released = harness.run(release_module, _args(name, make_image(f"img-{unique}")))
    instance = ec2.run_instances(
        LaunchTemplate={"LaunchTemplateId": released["launch_template_id"], "Version": "1"},
        MinCount=1,
        MaxCount=1,
    )["Instances"][0]["InstanceId"]

    refused = harness.run(release_module, {"name": name, "state": "absent"})
    assert refused.get("failed") and "still used by instances launched from versions 1" in refused["msg"]

    ec2.terminate_instances(InstanceIds=[instance])
    predicted = harness.run(release_module, {"name": name, "state": "absent"}, check=True)
    assert predicted["changed"] and predicted["diff"]["after"] == {}
    assert _default(ec2, name) == 1, "check mode deleted the template"
    assert harness.run(release_module, {"name": name, "state": "absent"})["deleted_versions"] == [1]
    assert harness.run(release_module, {"name": name, "state": "absent"})["changed"] is False


def test_absent_refuses_to_remove_the_default_release(
    release_module: Any, make_image: Callable[..., str], unique: str
) -> None:
    name = f"ws-{unique}"
    harness.run(release_module, _args(name, make_image(f"img-{unique}")))
    result = harness.run(release_module, {"name": name, "state": "absent", "version": "1.0.0"})
    assert result.get("failed") and "release 1.0.0 is the default version (1)" in result["msg"]


def test_template_tags_are_added_and_purged_only_when_asked(
    release_module: Any, ec2: Any, make_image: Callable[..., str], unique: str
) -> None:
    name = f"ws-{unique}"
    args = _args(name, make_image(f"img-{unique}"), tags={"Project": "ocap", "Owner": "lab"})
    harness.run(release_module, args)

    template_id = ec2.describe_launch_templates(LaunchTemplateNames=[name])["LaunchTemplates"][0][
        "LaunchTemplateId"
    ]

    def template_tags() -> dict[str, str]:
        # Moto gap: DescribeLaunchTemplates keeps reporting the tags of creation; DescribeTags is current.
        found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [template_id]}])["Tags"]
        return {t["Key"]: t["Value"] for t in found}

    kept = harness.run(release_module, dict(args, tags={"Project": "ocap2"}))
    assert kept["changed"] is True
    assert template_tags() == {"Project": "ocap2", "Owner": "lab"}, "tags were purged without purge_tags"

    purge = dict(args, tags={"Project": "ocap2"}, purge_tags=True)
    predicted = harness.run(release_module, purge, check=True)
    assert predicted["changed"] and predicted["diff"]["after"]["tags"] == {"Project": "ocap2"}
    assert template_tags() == {"Project": "ocap2", "Owner": "lab"}, "check mode removed a tag"
    harness.run(release_module, purge)
    assert template_tags() == {"Project": "ocap2"}
    assert harness.run(release_module, purge)["changed"] is False
