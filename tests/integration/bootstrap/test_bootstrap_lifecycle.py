"""bootstrap.yml and teardown.yml against the moto server, end to end.

One environment goes through the whole life once (a module fixture, since each
playbook run takes a while): bootstrap, bootstrap again (changed=0), teardown
(bucket and zone kept), the seed's hand-made mess put back (public bucket,
AmazonS3FullAccess and dynamodb:* on the role), bootstrap --check (reports,
changes nothing), bootstrap (repairs all of it), then teardown of everything
including the bucket (with a recording in it) and the zone (with a record).
Snapshots taken between the steps are what the tests below assert on.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest

from ocap_agent.state import table_definition
from tests import stack
from tests.integration.bootstrap.playbook_runner import env_for, playbook
from tests.security import checks, iam
from tests.security.secrets_scan import scan_text

PROJECT = "ocap-workstations"
CIDR = "203.0.113.0/24"
SEED_PUBLIC_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Public",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "{arn}/*",
        }
    ],
}


class Aws:
    def __init__(self, endpoint: str) -> None:
        def client(name: str) -> Any:
            return boto3.client(
                name,
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )

        self.s3, self.ddb, self.iam = client("s3"), client("dynamodb"), client("iam")
        self.ec2, self.route53, self.ssm = client("ec2"), client("route53"), client("ssm")


def tags(items: list[dict[str, str]]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items}


def snapshot(aws: Aws, out: dict[str, Any]) -> dict[str, Any]:
    """What exists now of what bootstrap manages, by the names in its outputs file."""
    snap: dict[str, Any] = {}
    try:
        snap["table"] = aws.ddb.describe_table(TableName=out["state_table"])["Table"]
    except aws.ddb.exceptions.ResourceNotFoundException:
        snap["table"] = None
    roles = aws.iam.list_roles(PathPrefix=f"/{PROJECT}/{out['environment']}/")["Roles"]
    snap["roles"] = sorted(r["RoleName"] for r in roles)
    snap["profiles"] = sorted(
        p["InstanceProfileName"]
        for p in aws.iam.list_instance_profiles(PathPrefix=f"/{PROJECT}/{out['environment']}/")[
            "InstanceProfiles"
        ]
    )
    groups = aws.ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [out["security_group"]]}]
    )
    snap["groups"] = groups["SecurityGroups"]
    try:
        aws.s3.head_bucket(Bucket=out["bucket"])
        snap["bucket"] = True
    except botocore.exceptions.ClientError:
        snap["bucket"] = False
    zones = aws.route53.list_hosted_zones_by_name(DNSName=out["hosted_zone_name"])["HostedZones"]
    snap["zones"] = [z for z in zones if z["Name"] == out["hosted_zone_name"] + "."]
    try:
        snap["kiosk"] = aws.ssm.get_parameter(Name=out["kiosk_password_parameter"], WithDecryption=True)[
            "Parameter"
        ]
    except aws.ssm.exceptions.ParameterNotFound:
        snap["kiosk"] = None
    return snap


def details(aws: Aws, out: dict[str, Any], snap: dict[str, Any]) -> dict[str, Any]:
    """Settings of the resources in SNAP, read while they exist."""
    found = {
        "bucket": tags(aws.s3.get_bucket_tagging(Bucket=out["bucket"])["TagSet"]),
        "table": tags(aws.ddb.list_tags_of_resource(ResourceArn=snap["table"]["TableArn"])["Tags"]),
        "security group": tags(snap["groups"][0]["Tags"]),
        "zone": tags(
            aws.route53.list_tags_for_resource(ResourceType="hostedzone", ResourceId=out["hosted_zone_id"])[
                "ResourceTagSet"
            ]["Tags"]
        ),
        "kiosk password": tags(
            aws.ssm.list_tags_for_resource(
                ResourceType="Parameter", ResourceId=out["kiosk_password_parameter"]
            )["TagList"]
        ),
    }
    for role in snap["roles"]:
        found[f"role {role}"] = tags(aws.iam.list_role_tags(RoleName=role)["Tags"])
    for profile in snap["profiles"]:
        # (moto has no ListInstanceProfileTags; GetInstanceProfile carries the tags too)
        found[f"instance profile {profile}"] = tags(
            aws.iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Tags"]
        )
    backups = aws.ddb.describe_continuous_backups(TableName=out["state_table"])[
        "ContinuousBackupsDescription"
    ]
    return {
        "tags": found,
        "lifecycle": aws.s3.get_bucket_lifecycle_configuration(Bucket=out["bucket"])["Rules"],
        "pitr": backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"],
        "bucket_policy": json.loads(aws.s3.get_bucket_policy(Bucket=out["bucket"])["Policy"]),
    }


@pytest.fixture(scope="module")
def life(moto_server: stack.Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    envname = "t" + uuid.uuid4().hex[:8]
    work: Path = tmp_path_factory.mktemp("bootstrap")
    env = env_for(moto_server.endpoint)
    aws = Aws(moto_server.endpoint)
    outputs = work / "outputs.json"
    base = {
        "ocap_environment": envname,
        "ocap_dcv_allowed_cidrs": [CIDR],
        "ocap_bootstrap_outputs_file": str(outputs),
    }
    life: dict[str, Any] = {"env": envname, "aws": aws}

    life["run1"] = playbook(env, "bootstrap", variables=base).ok()
    out = json.loads(outputs.read_text())
    out["security_group"] = f"{PROJECT}-{envname}-workstations"
    life["out"], life["after_run1"] = out, snapshot(aws, out)
    life["policies"] = {
        name: aws.iam.get_role_policy(RoleName=name, PolicyName=name)["PolicyDocument"]
        for name in life["after_run1"]["roles"]
    }
    life["bucket_problems_run1"] = checks.bucket_problems(aws.s3, out["bucket"])
    life["details_run1"] = details(aws, out, life["after_run1"])
    life["plain_http_put_run1"] = try_put(aws, out["bucket"])

    life["run2"] = playbook(env, "bootstrap", variables=base).ok()
    life["after_run2"] = snapshot(aws, out)

    report = work / "teardown.json"
    life["teardown"] = playbook(
        env,
        "teardown",
        variables={
            "ocap_environment": envname,
            "ocap_teardown_confirm": envname,
            "ocap_teardown_outputs_file": str(report),
        },
    ).ok()
    life["teardown_report"] = json.loads(report.read_text())
    life["after_teardown"] = snapshot(aws, out)

    # The seed's way, back again: a public bucket and a role with broad managed and inline grants.
    aws.s3.delete_public_access_block(Bucket=out["bucket"])
    arn = f"arn:aws:s3:::{out['bucket']}"
    aws.s3.put_bucket_policy(
        Bucket=out["bucket"], Policy=json.dumps(SEED_PUBLIC_POLICY).replace("{arn}", arn)
    )
    role = f"{PROJECT}-{envname}-workstation"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    aws.iam.create_role(
        RoleName=role, Path=f"/{PROJECT}/{envname}/", AssumeRolePolicyDocument=json.dumps(trust)
    )
    # moto's server holds no AWS managed policies: an account copy of AmazonS3FullAccess stands in.
    s3_all = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    full = aws.iam.create_policy(
        PolicyName=f"AmazonS3FullAccess-{envname}", PolicyDocument=json.dumps(s3_all)
    )
    aws.iam.attach_role_policy(RoleName=role, PolicyArn=full["Policy"]["Arn"])
    ddb_all = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}],
    }
    aws.iam.put_role_policy(
        RoleName=role, PolicyName="all-dynamo-db-read", PolicyDocument=json.dumps(ddb_all)
    )

    life["check"] = playbook(env, "bootstrap", "--check", "--diff", variables=base).ok()
    life["after_check"] = snapshot(aws, out)
    life["bucket_problems_after_check"] = checks.bucket_problems(aws.s3, out["bucket"])
    life["managed_after_check"] = aws.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    # The seed's policy has no TLS rule: plain HTTP gets through (and leaves a recording behind).
    life["plain_http_put_after_check"] = try_put(aws, out["bucket"])

    life["run3"] = playbook(env, "bootstrap", variables=base).ok()
    life["after_run3"] = snapshot(aws, out)
    life["bucket_problems_run3"] = checks.bucket_problems(aws.s3, out["bucket"])
    life["managed_after_run3"] = aws.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    life["inline_after_run3"] = aws.iam.list_role_policies(RoleName=role)["PolicyNames"]
    life["outputs_text"] = outputs.read_text()
    life["plain_http_put_run3"] = try_put(aws, out["bucket"])

    # Everything, this time: the bucket with its recordings and the zone with a record in it.
    aws.route53.change_resource_record_sets(
        HostedZoneId=out["hosted_zone_id"],
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": f"ws1.{out['hosted_zone_name']}",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "10.0.0.1"}],
                    },
                }
            ]
        },
    )
    # moto serves plain HTTP, where the TLS-only rule refuses even the owner's deletes (as it
    # should: test_the_bucket_bootstrap_creates_passes_the_bucket_check); teardown in AWS speaks
    # HTTPS. Lift the rule here so the delete path itself is exercised.
    aws.s3.delete_bucket_policy(Bucket=out["bucket"])
    everything = {
        "ocap_environment": envname,
        "ocap_teardown_confirm": envname,
        "ocap_teardown_delete_bucket": True,
        "ocap_teardown_delete_zone": True,
        "ocap_teardown_outputs_file": str(report),
    }
    life["teardown_all"] = playbook(env, "teardown", variables=everything).ok()
    life["teardown_all_report"] = json.loads(report.read_text())
    life["after_teardown_all"] = snapshot(aws, out)
    yield life


def try_put(aws: Aws, bucket: str) -> str:
    """Upload over the emulator's plain-HTTP endpoint: "ok" or the error code."""
    try:
        aws.s3.put_object(Bucket=bucket, Key="recordings/alice/s1/probe.mkv", Body=b"x")
    except botocore.exceptions.ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


# -- first run ----------------------------------------------------------------
def test_first_run_creates_everything_and_second_run_changes_nothing(life: dict[str, Any]) -> None:
    assert life["run1"].changed > 0
    assert life["run2"].changed == 0, life["run2"].output[-4000:]
    snap = life["after_run1"]
    env = life["env"]
    assert snap["table"] is not None and snap["bucket"] and len(snap["groups"]) == 1 and snap["zones"]
    assert snap["roles"] == sorted(f"{PROJECT}-{env}-{r}" for r in ("workstation", "broker", "cert-renewal"))
    assert snap["profiles"] == [f"{PROJECT}-{env}-workstation"]


def test_the_bucket_bootstrap_creates_passes_the_bucket_check(life: dict[str, Any]) -> None:
    assert life["bucket_problems_run1"] == []
    # moto enforces bucket policies: the TLS-only rule refuses its plain-HTTP endpoint.
    assert life["plain_http_put_run1"] in ("AccessDenied", "403")
    assert life["plain_http_put_after_check"] == "ok", "without the TLS rule the same upload passes"
    assert life["plain_http_put_run3"] in ("AccessDenied", "403")
    rules = life["details_run1"]["lifecycle"]
    abort = [r for r in rules if "AbortIncompleteMultipartUpload" in r]
    assert [r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] for r in abort] == [7]


def test_the_state_table_has_the_agents_schema_and_point_in_time_recovery(life: dict[str, Any]) -> None:
    table = life["after_run1"]["table"]
    want = table_definition(table["TableName"])
    assert table["KeySchema"] == want["KeySchema"]
    assert sorted(a["AttributeName"] for a in table["AttributeDefinitions"]) == sorted(
        a["AttributeName"] for a in want["AttributeDefinitions"]
    )
    assert [(g["IndexName"], g["KeySchema"]) for g in table["GlobalSecondaryIndexes"]] == [
        (g["IndexName"], g["KeySchema"]) for g in want["GlobalSecondaryIndexes"]
    ]
    assert life["details_run1"]["pitr"] == "ENABLED"


def test_the_policies_bootstrap_wrote_pass_the_wildcard_check(life: dict[str, Any]) -> None:
    out = life["out"]
    overrides = {
        "ocap_environment": life["env"],
        "ocap_aws_region": "us-east-1",
        "_ocap_zone_id": out["hosted_zone_id"],
    }
    names = {
        f"{PROJECT}-{life['env']}-{k}": v
        for k, v in (
            ("workstation", "instance-role"),
            ("broker", "broker-role"),
            ("cert-renewal", "cert-role"),
        )
    }
    written = {names[role]: doc for role, doc in life["policies"].items()}
    written["recordings-bucket"] = life["details_run1"]["bucket_policy"]
    variables = iam.policy_vars(**overrides)
    assert iam.wildcard_findings(written, iam.load_allowlist(variables)) == []
    # What Ansible rendered is what the security tests render: the checks test the real documents.
    rendered = iam.render_policies(**overrides)
    for name, doc in written.items():
        assert doc == rendered[name], name


def test_the_security_group_opens_only_dcv_to_the_configured_cidrs(life: dict[str, Any]) -> None:
    group = life["after_run1"]["groups"][0]
    ingress = sorted(
        (p["IpProtocol"], p["FromPort"], p["ToPort"], r["CidrIp"])
        for p in group["IpPermissions"]
        for r in p["IpRanges"]
    )
    assert ingress == [("tcp", 8443, 8443, CIDR), ("udp", 8443, 8443, CIDR)]
    egress = [(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")) for p in group["IpPermissionsEgress"]]
    assert egress == [("tcp", 443, 443)]


def test_everything_carries_the_project_and_environment_tags(life: dict[str, Any]) -> None:
    want = {"Project": PROJECT, "Environment": life["env"], "ManagedBy": "ocap-bootstrap"}
    found = life["details_run1"]["tags"]
    assert len(found) == 4 + 3 + 1 + 1, sorted(found)
    for what, have in found.items():
        assert want.items() <= have.items(), f"{what}: {have}"


def test_the_outputs_name_what_later_steps_need_and_hold_no_secrets(life: dict[str, Any]) -> None:
    out = life["out"]
    for key in ("bucket", "state_table", "security_group_id", "instance_profile", "vpc_id", "hosted_zone_id"):
        assert out[key], key
    assert out["security_group_id"] == life["after_run1"]["groups"][0]["GroupId"]
    assert scan_text("outputs.json", life["outputs_text"]) == []


def test_the_kiosk_password_is_random_secure_never_logged_and_never_overwritten(life: dict[str, Any]) -> None:
    first, second = life["after_run1"]["kiosk"], life["after_run2"]["kiosk"]
    assert first["Type"] == "SecureString" and first["Name"] == f"/{PROJECT}/{life['env']}/kiosk/password"
    password = first["Value"]
    assert len(password) == 24
    for chars in ("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "!#%+-=?@_"):
        assert any(c in chars for c in password), chars  # Windows' complexity rules: every class
    assert (second["Value"], second["Version"]) == (password, first["Version"])
    assert password not in life["run1"].output + life["run2"].output + life["outputs_text"]
    policy = json.dumps(life["policies"][f"{PROJECT}-{life['env']}-workstation"])
    assert f":parameter/{PROJECT}/{life['env']}/kiosk/password" in policy


# -- teardown -----------------------------------------------------------------
def test_teardown_removes_what_bootstrap_made_and_says_what_it_kept(life: dict[str, Any]) -> None:
    snap = life["after_teardown"]
    assert snap["table"] is None and snap["roles"] == [] and snap["profiles"] == [] and snap["groups"] == []
    assert snap["kiosk"] is None
    assert f"ssm parameter {life['out']['kiosk_password_parameter']}" in life["teardown_report"]["removed"]
    assert snap["bucket"] and snap["zones"], "the bucket and the zone are kept by default"
    kept = "\n".join(life["teardown_report"]["kept"])
    assert f"recordings bucket {life['out']['bucket']}" in kept and "ocap_teardown_delete_bucket=true" in kept
    assert "hosted zone" in kept
    assert life["teardown"].changed > 0


# -- back again, over the seed's mess ------------------------------------------
def test_check_mode_reports_the_repairs_and_changes_nothing(life: dict[str, Any]) -> None:
    assert life["check"].changed > 0
    snap = life["after_check"]
    assert snap["table"] is None and snap["groups"] == []
    assert "no Block Public Access configuration" in "\n".join(life["bucket_problems_after_check"])
    assert [p["PolicyName"] for p in life["managed_after_check"]] == [f"AmazonS3FullAccess-{life['env']}"]


def test_bootstrap_again_recreates_everything_and_undoes_the_seed_setup(life: dict[str, Any]) -> None:
    snap = life["after_run3"]
    assert snap["table"] is not None and len(snap["groups"]) == 1 and len(snap["roles"]) == 3
    assert life["bucket_problems_run3"] == []
    assert life["managed_after_run3"] == []
    assert life["inline_after_run3"] == [f"{PROJECT}-{life['env']}-workstation"]


def test_teardown_when_told_removes_the_bucket_with_its_recordings_and_the_zone(life: dict[str, Any]) -> None:
    snap = life["after_teardown_all"]
    assert snap["table"] is None and snap["roles"] == [] and snap["profiles"] == [] and snap["groups"] == []
    assert not snap["bucket"] and snap["zones"] == []
    assert life["teardown_all_report"]["kept"] == []
    removed = "\n".join(life["teardown_all_report"]["removed"])
    assert f"bucket {life['out']['bucket']}" in removed and "hosted zone" in removed
