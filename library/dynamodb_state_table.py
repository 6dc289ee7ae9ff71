#!/usr/bin/python
"""Ansible module dynamodb_state_table: the agent's and broker's DynamoDB state table."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dynamodb_state_table
short_description: The fleet's DynamoDB state table, with the agent's key schema and point-in-time recovery
version_added: "1.0.0"
description:
  - Creates the state table the agent, the broker and the pool module share, with the key schema and
    index defined once in C(ocap_agent.state.table_definition) (on-demand capacity), tags it, and turns
    point-in-time recovery on or off.
  - An existing table with another key schema or index is an error naming both shapes; it is never recreated,
    since its rows are the fleet's state.
  - Tags are only added or updated, never removed (other tools may tag the table too).
  - Stands in for C(community.aws.dynamodb_table), which cannot set point-in-time recovery.
  - Runs on the controller, where the C(ocap-agent) package is installed.
author:
  - ocap-workstations maintainers
options:
  name:
    description: Name of the table.
    type: str
    required: true
  point_in_time_recovery:
    description: Whether continuous backups (point-in-time recovery, 35 days) are on.
    type: bool
    default: true
  tags:
    description: Tags the table must carry (added or updated; others are left alone).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
    description: Reports what would change and changes nothing.
  diff_mode:
    support: full
    description: Shows the table's existence, tags and point-in-time recovery before and after.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The environment's state table
  dynamodb_state_table:
    name: ocap-workstations-dev-state
    tags:
      Project: ocap-workstations
      Environment: dev
"""

RETURN = r"""
table:
  description: The table's name, ARN and the index the broker queries.
  returned: always
  type: dict
  contains:
    name:
      description: Name of the table.
      type: str
      sample: ocap-workstations-dev-state
    arn:
      description: ARN of the table (empty in check mode when it would be created).
      type: str
      sample: arn:aws:dynamodb:us-east-1:123456789012:table/ocap-workstations-dev-state
    index:
      description: Name of the global secondary index listing a pool's instances.
      type: str
      sample: pool-index
changes:
  description: What was (or in check mode, would be) changed, one line each.
  returned: always
  type: list
  elements: str
  sample: ["create table ocap-workstations-dev-state", "enable point-in-time recovery"]
"""

import json
import re
from typing import Any

from ansible.module_utils.ocap_aws import AWS_ERRORS, aws_client
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

try:
    from ocap_agent.state import table_definition

    HAS_OCAP = True
except ImportError:
    HAS_OCAP = False


def shape(table: dict[str, Any]) -> dict[str, Any]:
    """What must match between the wanted and the existing table: keys and indexes."""
    return {
        "keys": sorted((k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]),
        "indexes": sorted(
            (g["IndexName"], json.dumps(g["KeySchema"], sort_keys=True), g["Projection"]["ProjectionType"])
            for g in table.get("GlobalSecondaryIndexes", [])
        ),
    }


class StateTable:
    def __init__(self, module: AnsibleAWSModule) -> None:
        self.module = module
        self.client = aws_client(module, "dynamodb")
        self.name: str = module.params["name"]
        self.want = table_definition(self.name)
        self.changes: list[str] = []

    def describe(self) -> dict[str, Any] | None:
        try:
            return dict(self.client.describe_table(TableName=self.name, aws_retry=True)["Table"])
        except self.client.exceptions.ResourceNotFoundException:
            return None

    def tags_of(self, arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        kwargs: dict[str, Any] = {"ResourceArn": arn}
        while True:  # no paginator for ListTagsOfResource
            page = self.client.list_tags_of_resource(**kwargs, aws_retry=True)
            tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
            if not page.get("NextToken"):
                return tags
            kwargs["NextToken"] = page["NextToken"]

    def pitr_on(self) -> bool:
        desc = self.client.describe_continuous_backups(TableName=self.name, aws_retry=True)[
            "ContinuousBackupsDescription"
        ]
        return bool(
            desc.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus") == "ENABLED"
        )

    def run(self) -> dict[str, Any]:
        check = self.module.check_mode
        want_tags: dict[str, str] = {str(k): str(v) for k, v in self.module.params["tags"].items()}
        want_pitr: bool = self.module.params["point_in_time_recovery"]
        have = self.describe()
        if have is None:
            before: dict[str, Any] = {"exists": False, "tags": {}, "point_in_time_recovery": False}
            self.changes.append(f"create table {self.name}")
            if not check:
                tag_list = [{"Key": k, "Value": v} for k, v in sorted(want_tags.items())]
                self.client.create_table(
                    aws_retry=True, **self.want, **({"Tags": tag_list} if tag_list else {})
                )
                self.client.get_waiter("table_exists").wait(TableName=self.name)
                have = self.describe()
            tags, pitr = dict(want_tags), False
        else:
            if shape(have) != shape(self.want):
                self.module.fail_json(
                    msg=(
                        f"name: table {self.name} exists with another key schema or index: {shape(have)}; "
                        f"ocap_agent.state wants {shape(self.want)}. It is never recreated (its rows are the "
                        "fleet's state): choose another name or migrate it."
                    )
                )
            tags, pitr = self.tags_of(have["TableArn"]), self.pitr_on()
            before = {"exists": True, "tags": dict(tags), "point_in_time_recovery": pitr}
            missing = {k: v for k, v in want_tags.items() if tags.get(k) != v}
            if missing:
                self.changes.append("tag " + ", ".join(f"{k}={v}" for k, v in sorted(missing.items())))
                if not check:
                    self.client.tag_resource(
                        aws_retry=True,
                        ResourceArn=have["TableArn"],
                        Tags=[{"Key": k, "Value": v} for k, v in sorted(missing.items())],
                    )
                tags.update(missing)
        if pitr != want_pitr:
            self.changes.append(("enable" if want_pitr else "disable") + " point-in-time recovery")
            if not check:
                # A table just created refuses this for a while (ContinuousBackupsUnavailable).
                update = AWSRetry.jittered_backoff(
                    retries=10, catch_extra_error_codes=["ContinuousBackupsUnavailableException"]
                )(self.client.update_continuous_backups)
                update(
                    TableName=self.name,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": want_pitr},
                )
        after = {"exists": True, "tags": tags, "point_in_time_recovery": want_pitr}
        result: dict[str, Any] = {
            "changed": bool(self.changes),
            "changes": self.changes,
            "table": {
                "name": self.name,
                "arn": (have or {}).get("TableArn", ""),
                "index": self.want["GlobalSecondaryIndexes"][0]["IndexName"],
            },
        }
        if self.module._diff:
            result["diff"] = {"before": before, "after": after}
        return result


def main() -> None:
    module = AnsibleAWSModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            point_in_time_recovery=dict(type="bool", default=True),
            tags=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    if not HAS_OCAP:
        module.fail_json(
            msg="the ocap-agent package (ocap_agent) must be installed beside Ansible on the controller"
        )
    name = module.params["name"]
    if not re.fullmatch(r"[A-Za-z0-9_.-]{3,255}", name):
        module.fail_json(msg=f"name: expected 3 to 255 letters, digits, '_', '-' or '.', got {name!r}")
    try:
        module.exit_json(**StateTable(module).run())
    except AWS_ERRORS as exc:
        module.fail_json_aws(exc, msg=f"state table {name}")


if __name__ == "__main__":
    main()
