"""The bucket check and the IMDSv2 check catch what they must, and pass what the project builds.

The bucket that bootstrap itself creates is checked in
tests/integration/bootstrap (it needs a bootstrap run); here the checker meets a
deliberately bad bucket (seed 001's public-read setup) and a good one in moto.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

import ansible.module_utils
import boto3
import pytest
import yaml

from tests.security import checks, iam

# ansible.cfg's module_utils folder, for importing the release module's pure functions in-process.
if str(iam.ROOT / "module_utils") not in ansible.module_utils.__path__:
    ansible.module_utils.__path__.append(str(iam.ROOT / "module_utils"))

from ansible.module_utils.ocap_launch_template import build_data  # isort: skip

SEED_001_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "PublicReadGetObjectAndList",
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::{b}", "arn:aws:s3:::{b}/*"],
        }
    ],
}


@pytest.fixture()
def s3(aws_env: dict[str, str]) -> Any:
    return boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name="us-east-1")


def test_a_bucket_made_the_seed_way_fails(s3: Any, unique: str) -> None:
    bucket = f"seed-recordings-{unique}"
    s3.create_bucket(Bucket=bucket)
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(SEED_001_POLICY).replace("{b}", bucket))
    problems = "\n".join(checks.bucket_problems(s3, bucket))
    assert "no Block Public Access" in problems
    assert "allows everyone (public)" in problems
    assert "s3:GetObject without TLS is not denied" in problems


def test_a_bucket_without_any_policy_fails(s3: Any, unique: str) -> None:
    bucket = f"bare-recordings-{unique}"
    s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={"BlockPublicAcls": True, "IgnorePublicAcls": True},
    )
    problems = "\n".join(checks.bucket_problems(s3, bucket))
    assert "Block Public Access incomplete, off: BlockPublicPolicy, RestrictPublicBuckets" in problems
    assert "no bucket policy" in problems


def test_a_bucket_set_up_like_bootstrap_passes(s3: Any, unique: str) -> None:
    bucket = f"good-recordings-{unique}"
    policy = iam.render("recordings-bucket.json.j2", iam.policy_vars(ocap_recordings_bucket=bucket))
    s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(
        Bucket=bucket, PublicAccessBlockConfiguration=dict.fromkeys(checks._BLOCK_KEYS, True)
    )
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=policy)
    assert checks.bucket_problems(s3, bucket) == []


def test_a_tls_rule_that_denies_the_wrong_requests_fails() -> None:
    doc = json.loads(iam.render("recordings-bucket.json.j2", iam.policy_vars(ocap_recordings_bucket="b")))
    # Inverted condition: denies TLS requests, lets plain HTTP through.
    doc["Statement"][0]["Condition"] = {"Bool": {"aws:SecureTransport": "true"}}
    problems = "\n".join(checks.bucket_policy_problems("b", doc))
    assert "without TLS is not denied" in problems
    assert "denied even over TLS" in problems


# -- launch templates ---------------------------------------------------------
IMAGE = {"ImageId": "ami-0123456789abcdef0", "BlockDeviceMappings": []}


def test_the_release_modules_template_data_requires_imdsv2() -> None:
    data = build_data({"name": "ws", "instance_type": "g4dn.xlarge"}, IMAGE, "1.0.0")
    assert checks.launch_template_problems(data) == []


def test_release_module_refuses_imdsv1() -> None:
    env = {**os.environ, "ANSIBLE_CONFIG": str(iam.ROOT / "ansible.cfg")}
    args = json.dumps(
        {
            "name": "ws",
            "image_id": "ami-1",
            "version": "1.0.0",
            "instance_type": "g4dn.xlarge",
            "metadata_options": {"http_tokens": "optional"},
        }
    )
    proc = subprocess.run(
        ["ansible", "localhost", "-m", "ec2_image_release", "-a", args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=iam.ROOT,
    )
    assert proc.returncode != 0
    assert "http_tokens" in proc.stdout and "required" in proc.stdout, proc.stdout


def test_template_data_with_imdsv1_fails() -> None:
    # The module refuses http_tokens=optional (above); the check refuses a template that
    # has it anyway, whatever built it.
    params = {"name": "ws", "instance_type": "g4dn.xlarge", "metadata_options": {"http_tokens": "optional"}}
    problems = checks.launch_template_problems(build_data(params, IMAGE, "1.0.0"))
    assert len(problems) == 1 and "HttpTokens is 'optional'" in problems[0]
    assert checks.launch_template_problems({"ImageId": "ami-1"})[0].startswith(
        "launch template: MetadataOptions"
    )
    assert (
        "HttpPutResponseHopLimit 5"
        in checks.launch_template_problems(
            {"MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 5}}
        )[0]
    )


class _AnyTagLoader(yaml.SafeLoader):
    """Reads Ansible's own tags (!unsafe, !vault) as plain values."""


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node))


def _yaml_values(node: Any, key: str) -> list[Any]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k == key]
        return found + [x for v in node.values() for x in _yaml_values(v, key)]
    if isinstance(node, list):
        return [x for v in node for x in _yaml_values(v, key)]
    return []


def test_no_playbook_or_packer_template_turns_imdsv1_on() -> None:
    """What the project passes to the release module and to Packer keeps tokens required."""
    offenders = []
    for path in sorted([*iam.ROOT.glob("playbooks/**/*.yml"), *iam.ROOT.glob("roles/**/*.yml")]):
        for doc in yaml.load_all(path.read_text(), Loader=_AnyTagLoader):
            for value in _yaml_values(doc, "http_tokens"):
                if value != "required" and "{{" not in str(value):
                    offenders.append(f"{path.relative_to(iam.ROOT)}: http_tokens {value!r}")
    for path in sorted(iam.ROOT.glob("packer/**/*.pkr.hcl")):
        for match in re.finditer(r'http_tokens\s*=\s*"([^"]*)"', path.read_text()):
            if match.group(1) != "required":
                offenders.append(f"{path.relative_to(iam.ROOT)}: http_tokens {match.group(1)!r}")
    assert offenders == []
