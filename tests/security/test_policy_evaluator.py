"""What each role may and may not do, decided by evaluating its rendered policies.

moto accepts and stores IAM policies but does not simulate them
(SimulatePrincipalPolicy / SimulateCustomPolicy answer "not implemented", see
test_moto_cannot_simulate_policies), and it enforces none of the conditions
these policies rely on. So the named cases below run through the evaluator in
tests/security/iam.py, against the same documents bootstrap writes.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.parsers
import pytest

from tests.security import iam
from tests.security.iam import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request, evaluate

V = iam.policy_vars()
REGION, ACCOUNT = V["ocap_aws_region"], iam.ACCOUNT
BUCKET = V["ocap_recordings_bucket"]
PREFIX = V["ocap_recordings_prefix"]
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{V['ocap_state_table']}"
ZONE = f"arn:aws:route53:::hostedzone/{V['_ocap_zone_id']}"
OTHER_ZONE = "arn:aws:route53:::hostedzone/Z9999999999OTHERZONE"
PARAM = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{V['ocap_cert_parameter']}"
SELF = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0123456789abcdef0"
OTHER = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/i-0fedcba9876543210"
OUR_TAGS = {
    "aws:ResourceTag/Project": V["ocap_project"],
    "aws:ResourceTag/Environment": V["ocap_environment"],
}
POOL_TAGS = {**OUR_TAGS, "aws:ResourceTag/Pool": "default"}

POLICIES = iam.render_policies()
SECRET_POLICIES = iam.render_policies(ocap_cert_store="secretsmanager")


def instance_ctx(**extra: Any) -> dict[str, Any]:
    """Context of a request signed with the workstation's instance-profile credentials, over TLS."""
    return {"aws:SecureTransport": True, "ec2:SourceInstanceARN": SELF, **extra}


def as_instance(action: str, resource: str, policies: dict[str, Any] | None = None, **ctx: Any) -> str:
    docs = policies or POLICIES
    # S3 requests meet the bucket policy too (same account: either may allow, any Deny wins).
    return evaluate(
        [docs["instance-role"], docs["recordings-bucket"]], Request(action, resource, instance_ctx(**ctx))
    )


def as_broker(action: str, resource: str, **ctx: Any) -> str:
    return evaluate(
        [POLICIES["broker-role"]], Request(action, resource, {"aws:SecureTransport": True, **ctx})
    )


def as_cert(action: str, resource: str, policies: dict[str, Any] | None = None, **ctx: Any) -> str:
    docs = policies or POLICIES
    return evaluate([docs["cert-role"]], Request(action, resource, {"aws:SecureTransport": True, **ctx}))


def obj(key: str) -> str:
    return f"arn:aws:s3:::{BUCKET}/{key}"


def rows(*keys: str) -> dict[str, Any]:
    return {"dynamodb:LeadingKeys": list(keys)}


# -- workstation role: recordings ---------------------------------------------
def test_instance_may_upload_to_its_prefix() -> None:
    key = f"{PREFIX}/alice/20261123T150000Z-s1/session.mkv"
    # PutObject also covers CreateMultipartUpload, UploadPart and CompleteMultipartUpload.
    assert as_instance("s3:PutObject", obj(key)) == ALLOW
    assert as_instance("s3:AbortMultipartUpload", obj(key)) == ALLOW
    assert as_instance("s3:ListMultipartUploadParts", obj(key)) == ALLOW
    assert as_instance("s3:GetObject", obj(key)) == ALLOW


def test_instance_may_not_read_or_write_another_prefix() -> None:
    assert as_instance("s3:GetObject", obj("exports/report.csv")) == IMPLICIT_DENY
    assert as_instance("s3:PutObject", obj("exports/report.csv")) == IMPLICIT_DENY
    # A look-alike prefix is another prefix.
    assert as_instance("s3:GetObject", obj(f"{PREFIX}-old/alice/x.mkv")) == IMPLICIT_DENY


def test_instance_may_not_delete_objects() -> None:
    key = f"{PREFIX}/alice/s1/session.mkv"
    assert as_instance("s3:DeleteObject", obj(key)) == IMPLICIT_DENY
    assert as_instance("s3:DeleteObjectVersion", obj(key)) == IMPLICIT_DENY
    assert as_instance("s3:PutLifecycleConfiguration", f"arn:aws:s3:::{BUCKET}") == IMPLICIT_DENY


def test_instance_may_not_use_another_bucket() -> None:
    assert as_instance("s3:PutObject", f"arn:aws:s3:::other-bucket/{PREFIX}/x") == IMPLICIT_DENY


def test_instance_lists_only_its_prefix() -> None:
    bucket = f"arn:aws:s3:::{BUCKET}"
    assert as_instance("s3:ListBucket", bucket, **{"s3:prefix": f"{PREFIX}/alice/"}) == ALLOW
    assert as_instance("s3:ListBucket", bucket, **{"s3:prefix": "exports/"}) == IMPLICIT_DENY
    assert as_instance("s3:ListBucket", bucket) == IMPLICIT_DENY  # the whole bucket


def test_nobody_reaches_recordings_without_tls() -> None:
    key = f"{PREFIX}/alice/s1/session.mkv"
    assert as_instance("s3:PutObject", obj(key), **{"aws:SecureTransport": False}) == EXPLICIT_DENY
    assert as_instance("s3:GetObject", obj(key), **{"aws:SecureTransport": False}) == EXPLICIT_DENY


# -- workstation role: state rows ---------------------------------------------
def test_instance_may_update_instance_and_session_rows() -> None:
    assert as_instance("dynamodb:UpdateItem", TABLE, **rows("instance#i-0123456789abcdef0")) == ALLOW
    assert as_instance("dynamodb:UpdateItem", TABLE, **rows("session#01JD5XK3")) == ALLOW
    assert as_instance("dynamodb:GetItem", TABLE, **rows("instance#i-0123456789abcdef0")) == ALLOW


def test_instance_may_not_touch_demand_rows_delete_rows_or_scan() -> None:
    assert as_instance("dynamodb:UpdateItem", TABLE, **rows("demand#default")) == IMPLICIT_DENY
    assert as_instance("dynamodb:PutItem", TABLE, **rows("session#s1", "demand#default")) == IMPLICIT_DENY
    assert as_instance("dynamodb:DeleteItem", TABLE, **rows("instance#i-0123456789abcdef0")) == IMPLICIT_DENY
    # A request without keys (Scan) would pass ForAllValues alone: the Null condition stops it.
    assert as_instance("dynamodb:Scan", TABLE) == IMPLICIT_DENY
    assert as_instance("dynamodb:UpdateItem", TABLE) == IMPLICIT_DENY
    assert as_instance("dynamodb:UpdateItem", TABLE + "-other", **rows("instance#i-1")) == IMPLICIT_DENY


def test_known_gap_iam_cannot_tell_an_instances_own_row_from_anothers() -> None:
    """No policy variable holds the bare instance id that the row key "instance#<id>" uses, so IAM
    lets an instance write another instance's row; the agent's conditional updates are the guard.
    If this starts failing, the policy got narrower: update docs/operations.md."""
    assert as_instance("dynamodb:UpdateItem", TABLE, **rows("instance#i-0fedcba9876543210")) == ALLOW


# -- workstation role: EC2 and the certificate -------------------------------
def test_instance_may_stop_itself() -> None:
    assert as_instance("ec2:StopInstances", SELF, **{"aws:ARN": SELF, **OUR_TAGS}) == ALLOW


def test_instance_may_not_touch_other_instances() -> None:
    assert as_instance("ec2:StopInstances", OTHER, **{"aws:ARN": OTHER, **OUR_TAGS}) == IMPLICIT_DENY
    assert as_instance("ec2:TerminateInstances", SELF, **{"aws:ARN": SELF, **OUR_TAGS}) == IMPLICIT_DENY
    assert as_instance("ec2:StartInstances", OTHER, **{"aws:ARN": OTHER, **OUR_TAGS}) == IMPLICIT_DENY
    assert as_instance("ec2:RunInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/*") == IMPLICIT_DENY


def test_stopping_needs_instance_profile_credentials() -> None:
    # Without ec2:SourceInstanceARN in the request (credentials taken off the box), nothing matches.
    docs = [POLICIES["instance-role"]]
    req = Request("ec2:StopInstances", SELF, {"aws:ARN": SELF, **OUR_TAGS})
    assert evaluate(docs, req) == IMPLICIT_DENY


def test_instance_may_read_but_not_write_the_certificate() -> None:
    assert as_instance("ssm:GetParameter", PARAM) == ALLOW
    assert as_instance("ssm:PutParameter", PARAM) == IMPLICIT_DENY
    assert as_instance("ssm:GetParameter", PARAM + "-other") == IMPLICIT_DENY
    assert as_instance("ssm:GetParametersByPath", PARAM) == IMPLICIT_DENY


def test_instance_may_read_but_not_write_the_certificate_secret() -> None:
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{V['ocap_cert_secret_name']}-AbC123"
    assert as_instance("secretsmanager:GetSecretValue", secret, SECRET_POLICIES) == ALLOW
    assert as_instance("secretsmanager:PutSecretValue", secret, SECRET_POLICIES) == IMPLICIT_DENY
    # "??????" is exactly the six-character suffix: a longer name is another secret.
    assert as_instance("secretsmanager:GetSecretValue", secret + "-x", SECRET_POLICIES) == IMPLICIT_DENY


# -- broker role --------------------------------------------------------------
def test_broker_may_start_and_stop_only_pool_tagged_instances() -> None:
    for action in ("ec2:StartInstances", "ec2:StopInstances", "ec2:TerminateInstances"):
        assert as_broker(action, OTHER, **POOL_TAGS) == ALLOW, action
        assert as_broker(action, OTHER, **OUR_TAGS) == IMPLICIT_DENY, f"{action} without the pool tag"
        other_env = {**POOL_TAGS, "aws:ResourceTag/Environment": "staging"}
        assert as_broker(action, OTHER, **other_env) == IMPLICIT_DENY, f"{action} in another environment"
    assert as_broker("ec2:RunInstances", OTHER, **POOL_TAGS) == IMPLICIT_DENY
    assert as_broker("ec2:ModifyInstanceAttribute", OTHER, **POOL_TAGS) == IMPLICIT_DENY
    assert as_broker("ec2:DescribeInstances", "*") == ALLOW


def test_broker_changes_a_records_only_in_the_one_zone() -> None:
    a_records = {"route53:ChangeResourceRecordSetsRecordTypes": ["A"]}
    assert as_broker("route53:ChangeResourceRecordSets", ZONE, **a_records) == ALLOW
    assert as_broker("route53:ChangeResourceRecordSets", OTHER_ZONE, **a_records) == IMPLICIT_DENY
    # The broker cannot answer ACME challenges, so it cannot obtain certificates.
    txt = {"route53:ChangeResourceRecordSetsRecordTypes": ["A", "TXT"]}
    assert as_broker("route53:ChangeResourceRecordSets", ZONE, **txt) == IMPLICIT_DENY
    assert as_broker("route53:GetChange", "arn:aws:route53:::change/C2682N5HXP0BZ4") == ALLOW
    assert as_broker("route53:DeleteHostedZone", ZONE) == IMPLICIT_DENY


def test_broker_keeps_the_state_table_but_cannot_drop_it() -> None:
    assert as_broker("dynamodb:Query", f"{TABLE}/index/{V['_ocap_state_index']}") == ALLOW
    assert as_broker("dynamodb:UpdateItem", TABLE) == ALLOW
    assert as_broker("dynamodb:DeleteTable", TABLE) == IMPLICIT_DENY
    assert as_broker("dynamodb:UpdateItem", TABLE.replace("-state", "-other")) == IMPLICIT_DENY
    assert as_broker("s3:GetObject", obj(f"{PREFIX}/alice/x.mkv")) == IMPLICIT_DENY


# -- certificate role ---------------------------------------------------------
def test_cert_role_writes_only_challenge_records_in_the_one_zone() -> None:
    name = f"_acme-challenge.ws1.{V['ocap_dns_zone_name']}"
    txt = {
        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"],
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [name],
    }
    assert as_cert("route53:ChangeResourceRecordSets", ZONE, **txt) == ALLOW
    assert as_cert("route53:ChangeResourceRecordSets", OTHER_ZONE, **txt) == IMPLICIT_DENY
    a_record = {**txt, "route53:ChangeResourceRecordSetsRecordTypes": ["A"]}
    assert as_cert("route53:ChangeResourceRecordSets", ZONE, **a_record) == IMPLICIT_DENY
    other_name = {
        **txt,
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [f"www.{V['ocap_dns_zone_name']}"],
    }
    assert as_cert("route53:ChangeResourceRecordSets", ZONE, **other_name) == IMPLICIT_DENY
    assert as_cert("route53:ListHostedZones", "*") == ALLOW
    assert as_cert("route53:DeleteHostedZone", ZONE) == IMPLICIT_DENY


def test_cert_role_writes_only_the_one_parameter_or_secret() -> None:
    assert as_cert("ssm:PutParameter", PARAM) == ALLOW
    assert (
        as_cert("ssm:PutParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/other/param") == IMPLICIT_DENY
    )
    assert as_cert("ssm:DeleteParameter", PARAM) == IMPLICIT_DENY
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{V['ocap_cert_secret_name']}-Zz9Yy8"
    assert as_cert("secretsmanager:PutSecretValue", secret, SECRET_POLICIES) == ALLOW
    other = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:db/password-Zz9Yy8"
    assert as_cert("secretsmanager:PutSecretValue", other, SECRET_POLICIES) == IMPLICIT_DENY
    assert as_cert("secretsmanager:DeleteSecret", secret, SECRET_POLICIES) == IMPLICIT_DENY


# -- the evaluator itself -----------------------------------------------------
def test_evaluator_explicit_deny_wins_and_not_action_excludes() -> None:
    allow_all = {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    deny_delete = {"Statement": [{"Effect": "Deny", "Action": "s3:Delete*", "Resource": "*"}]}
    assert evaluate([allow_all, deny_delete], Request("s3:DeleteObject", "arn:aws:s3:::b/k")) == EXPLICIT_DENY
    assert evaluate([allow_all, deny_delete], Request("S3:getobject", "arn:aws:s3:::b/k")) == ALLOW
    not_action = {"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}
    assert evaluate([not_action], Request("iam:CreateUser", "*")) == IMPLICIT_DENY
    assert evaluate([not_action], Request("ec2:RunInstances", "*")) == ALLOW


def test_evaluator_refuses_operators_it_does_not_model() -> None:
    doc = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
            }
        ]
    }
    with pytest.raises(iam.Unsupported):
        evaluate([doc], Request("s3:GetObject", "x", {"aws:CurrentTime": "2026-01-01T00:00:00Z"}))


def test_moto_cannot_simulate_policies(moto_server: Any) -> None:
    """The gap that makes the evaluator necessary: detected, not assumed.

    moto's IAM backend has no SimulateCustomPolicy/SimulatePrincipalPolicy handler (the server
    answers 500). If a release adds them, this compares moto with the evaluator on one allow
    and one deny case instead, so the two can never silently disagree."""
    from moto.iam.responses import IamResponse

    handlers = {"simulate_custom_policy", "simulate_principal_policy"} & set(dir(IamResponse))
    client = boto3.client(
        "iam",
        endpoint_url=moto_server.endpoint,
        region_name="us-east-1",
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    policy = json.dumps(POLICIES["instance-role"])
    key = obj(f"{PREFIX}/alice/s1/session.mkv")
    call = {
        "PolicyInputList": [policy],
        "ActionNames": ["s3:PutObject", "s3:DeleteObject"],
        "ResourceArns": [key],
    }
    if not handlers:
        # A 500 with an HTML page: botocore cannot even parse it as an IAM error.
        with pytest.raises((botocore.parsers.ResponseParserError, botocore.exceptions.ClientError)):
            client.simulate_custom_policy(**call)
        return
    decisions = {
        r["EvalActionName"]: r["EvalDecision"]
        for r in client.simulate_custom_policy(**call)["EvaluationResults"]
    }
    assert decisions["s3:PutObject"] == "allowed"
    assert decisions["s3:DeleteObject"] != "allowed"
