"""Checks of live resources and of generated data: the recordings bucket and launch templates.

Each returns a list of problems (empty: passes), worded for the operator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from tests.security import iam

_BLOCK_KEYS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def bucket_policy_problems(bucket: str, policy: Mapping[str, Any] | None) -> list[str]:
    """A bucket policy must refuse every non-TLS request and must not make anything public."""
    if policy is None:
        return [f"bucket {bucket}: no bucket policy, so nothing refuses requests without TLS"]
    problems = []
    for st in iam.as_list(policy.get("Statement")):
        principals = st.get("Principal")
        public = principals == "*" or (
            isinstance(principals, dict) and "*" in iam.as_list(principals.get("AWS"))
        )
        if st.get("Effect") == "Allow" and public:
            problems.append(f"bucket {bucket}: statement {st.get('Sid', '?')} allows everyone (public)")
    # Decide it the way S3 would: every action on the bucket and on any key, without TLS.
    probes = [
        ("s3:GetObject", f"arn:aws:s3:::{bucket}/any/key.mkv"),
        ("s3:PutObject", f"arn:aws:s3:::{bucket}/any/key.mkv"),
        ("s3:DeleteObject", f"arn:aws:s3:::{bucket}/k"),
        ("s3:ListBucket", f"arn:aws:s3:::{bucket}"),
    ]
    for action, resource in probes:
        req = iam.Request(action, resource, {"aws:SecureTransport": False})
        if iam.evaluate([policy], req) != iam.EXPLICIT_DENY:
            problems.append(
                f"bucket {bucket}: {action} without TLS is not denied (no aws:SecureTransport Deny)"
            )
        # ...and the Deny must not hit requests that do use TLS.
        req = iam.Request(action, resource, {"aws:SecureTransport": True})
        if iam.evaluate([policy], req) == iam.EXPLICIT_DENY:
            problems.append(f"bucket {bucket}: {action} is denied even over TLS")
    return problems


def bucket_problems(s3: Any, bucket: str) -> list[str]:
    """Block Public Access fully on, a TLS-only policy, ACLs off, default encryption."""
    problems: list[str] = []
    try:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        off = [k for k in _BLOCK_KEYS if not block.get(k)]
        if off:
            problems.append(f"bucket {bucket}: Block Public Access incomplete, off: {', '.join(off)}")
    except botocore.exceptions.ClientError as exc:
        if _error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        problems.append(f"bucket {bucket}: no Block Public Access configuration")

    try:
        policy: dict[str, Any] | None = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except botocore.exceptions.ClientError as exc:
        if _error_code(exc) != "NoSuchBucketPolicy":
            raise
        policy = None
    problems += bucket_policy_problems(bucket, policy)

    try:
        rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
        if [r.get("ObjectOwnership") for r in rules] != ["BucketOwnerEnforced"]:
            problems.append(f"bucket {bucket}: object ownership is not BucketOwnerEnforced (ACLs still work)")
    except botocore.exceptions.ClientError as exc:
        if _error_code(exc) != "OwnershipControlsNotFoundError":
            raise
        problems.append(f"bucket {bucket}: no ownership controls (ACLs still work)")

    try:
        enc = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        algos = {r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in enc}
        if not algos <= {"AES256", "aws:kms", "aws:kms:dsse"}:
            problems.append(f"bucket {bucket}: unexpected default encryption {sorted(algos)}")
    except botocore.exceptions.ClientError as exc:
        if _error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        problems.append(f"bucket {bucket}: no default encryption")
    return problems


def launch_template_problems(data: Mapping[str, Any], where: str = "launch template") -> list[str]:
    """Launch template data must require IMDSv2 (session tokens) and keep the metadata service on."""
    options = data.get("MetadataOptions") or {}
    problems = []
    if options.get("HttpTokens") != "required":
        problems.append(
            f"{where}: MetadataOptions.HttpTokens is {options.get('HttpTokens')!r}, not 'required': "
            f"IMDSv1 lets any SSRF read the instance role's credentials"
        )
    if options.get("HttpEndpoint", "enabled") != "enabled":
        problems.append(f"{where}: the metadata service is off; the agent needs it (through IMDSv2)")
    hops = options.get("HttpPutResponseHopLimit", 1)
    if int(hops) > 2:
        problems.append(f"{where}: HttpPutResponseHopLimit {hops} lets tokens travel past containers")
    return problems
