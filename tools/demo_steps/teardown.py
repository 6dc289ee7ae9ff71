"""Demo step ``teardown``: remove what bootstrap created, with the confirmation, and say what was kept.

Teardown refuses while instances still use the workstation security group;
instances that earlier steps left behind in the emulator are terminated first
(and named), as the pool playbook would in a real account.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from tools.demo import DemoContext

_LIVE = ["pending", "running", "stopping", "stopped"]


def _terminate_leftovers(ctx: DemoContext, group_id: str) -> list[str]:
    ec2 = boto3.client(
        "ec2", endpoint_url=ctx.moto.endpoint, region_name=ctx.env.get("AWS_REGION", "us-east-1")
    )
    filters: list[Any] = [
        {"Name": "instance.group-id", "Values": [group_id]},
        {"Name": "instance-state-name", "Values": _LIVE},
    ]
    ids = [
        i["InstanceId"]
        for page in ec2.get_paginator("describe_instances").paginate(Filters=filters)
        for r in page["Reservations"]
        for i in r["Instances"]
    ]
    if ids:
        ec2.terminate_instances(InstanceIds=ids)
    return ids


def run(ctx: DemoContext) -> list[str]:
    environment = ctx.facts.get("environment", "dev")
    lines = []
    group_id = ctx.facts.get("security_group_id")
    if group_id:
        leftovers = _terminate_leftovers(ctx, group_id)
        if leftovers:
            lines.append(
                f"terminated {len(leftovers)} instance(s) earlier steps left: {', '.join(leftovers)}"
            )
    report_file = ctx.work / "teardown-report.json"
    extra = {"ocap_teardown_confirm": environment, "ocap_teardown_outputs_file": str(report_file)}
    ctx.playbook("playbooks/teardown.yml", "-e", json.dumps(extra))
    report = json.loads(report_file.read_text())
    lines.insert(
        0, f"environment {environment}: removed {len(report['removed'])}, kept {len(report['kept'])}"
    )
    lines += [f"removed {item}" for item in report["removed"]]
    lines += [f"kept {item}" for item in report["kept"]]
    return lines
