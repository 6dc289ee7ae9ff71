"""Demo step ``bootstrap``: create the account's resources, twice (the second run changes nothing).

Runs playbooks/bootstrap.yml against the emulator with the environment of
group_vars (so later steps find the same names), checks the recordings bucket
the way ``make test`` does, and leaves in ``ctx.facts``: environment,
state_table, bucket, recordings_prefix, security_group_id, instance_profile,
instance_role_arn, broker_role_arn, cert_role_arn, vpc_id, subnet_id,
subnet_ids, hosted_zone_id, hosted_zone_name, cert_store, cert_name.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import boto3

from tests.security import checks

if TYPE_CHECKING:
    from tools.demo import DemoContext

# A documentation network (RFC 5737): DCV reachable from there only.
DEMO_DCV_CIDRS = ["203.0.113.0/24"]
_RECAP = re.compile(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)")


def _changed(output: str) -> int:
    match = _RECAP.search(output)
    if not match:
        raise SystemExit("bootstrap: no play recap in the ansible-playbook output")
    return int(match.group(1))


def run(ctx: DemoContext) -> list[str]:
    outputs = ctx.work / "bootstrap-outputs.json"
    extra = [
        "-e",
        json.dumps({"ocap_dcv_allowed_cidrs": DEMO_DCV_CIDRS, "ocap_bootstrap_outputs_file": str(outputs)}),
    ]
    first = _changed(ctx.playbook("playbooks/bootstrap.yml", *extra))
    second = _changed(ctx.playbook("playbooks/bootstrap.yml", *extra))
    if second != 0:
        raise SystemExit(f"bootstrap: the second run changed {second} things; it must change none")
    out: dict[str, Any] = json.loads(outputs.read_text())

    s3 = boto3.client("s3", endpoint_url=ctx.moto.endpoint, region_name=out["region"])
    problems = checks.bucket_problems(s3, out["bucket"])
    if problems:
        raise SystemExit("bootstrap: the recordings bucket fails its check:\n  " + "\n  ".join(problems))

    ctx.facts.update(
        environment=out["environment"],
        state_table=out["state_table"],
        bucket=out["bucket"],
        recordings_prefix=out["recordings_prefix"],
        security_group_id=out["security_group_id"],
        instance_profile=out["instance_profile"],
        instance_role_arn=out["instance_role_arn"],
        broker_role_arn=out["broker_role_arn"],
        cert_role_arn=out["cert_role_arn"],
        vpc_id=out["vpc_id"],
        subnet_id=out["subnet_ids"][0],
        subnet_ids=out["subnet_ids"],
        hosted_zone_id=out["hosted_zone_id"],
        hosted_zone_name=out["hosted_zone_name"],
        cert_store=out["cert_store"],
        cert_name=out["cert_name"],
    )
    return [
        f"environment {out['environment']}: first run changed {first}, second run changed 0",
        f"bucket {out['bucket']}: Block Public Access, TLS-only policy, encryption, no ACLs (checked)",
        f"state table {out['state_table']} with point-in-time recovery",
        f"roles: {out['instance_role_arn'].rsplit('/', 1)[-1]}, {out['broker_role_arn'].rsplit('/', 1)[-1]}, "
        f"{out['cert_role_arn'].rsplit('/', 1)[-1]} (least privilege)",
        f"security group {out['security_group_id']}: DCV from {', '.join(DEMO_DCV_CIDRS)} only",
        f"hosted zone {out['hosted_zone_name']} ({out['hosted_zone_id']})",
    ]
