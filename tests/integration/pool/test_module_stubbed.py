"""ec2_instance_pool paths the emulator cannot show, with AWS's own answers stubbed (botocore Stubber).

moto gap: moto's RunInstances launches MinCount instances and ignores
MaxCount, and never runs out of capacity. The module asks for exactly the
count it needs (MinCount = MaxCount) and, only when AWS answers
InsufficientInstanceCapacity, takes what there is (MinCount 1): tested here.
A claim that wins an instance between a reconcile's read and its terminate is
a race too narrow to provoke against a server: also tested here.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from module_utils.ocap_pool import Member, Plan
from tests.integration.pool import helpers

NOWHERE = "http://127.0.0.1:9"


class FakeModule:
    """The slice of AnsibleAWSModule that the module's Pool uses."""

    def __init__(self, clients: dict[str, Any], **params: Any) -> None:
        self.clients = clients
        self.check_mode = False
        self.params = {
            "name": "desk",
            "state_table": "state",
            "tags": {},
            "poll_interval": 1,
            "subnet_ids": [],
            **params,
        }

    def client(self, service: str) -> Any:
        return self.clients[service]


@pytest.fixture()
def stubbed() -> tuple[Any, Stubber, Stubber]:
    mod = helpers.pool_module()
    clients = {s: boto3.client(s, region_name="us-east-1", endpoint_url=NOWHERE) for s in ("ec2", "dynamodb")}
    pool = mod.Pool(FakeModule(clients))
    pool.template_id, pool.version = "lt-0123456789abcdef0", 7
    return pool, Stubber(clients["ec2"]), Stubber(clients["dynamodb"])


def instance(iid: str) -> dict[str, Any]:
    return {"InstanceId": iid, "State": {"Code": 0, "Name": "pending"}}


def test_short_capacity_takes_what_there_is(stubbed: tuple[Any, Stubber, Stubber]) -> None:
    pool, ec2, ddb = stubbed
    tags = ANY
    with ec2, ddb:
        ec2.add_client_error(
            "run_instances",
            service_error_code="InsufficientInstanceCapacity",
            service_message="We currently do not have sufficient g4dn.xlarge capacity in the AZ.",
            expected_params={
                "LaunchTemplate": {"LaunchTemplateId": "lt-0123456789abcdef0", "Version": "7"},
                "MinCount": 3,
                "MaxCount": 3,
                "TagSpecifications": tags,
            },
        )
        ec2.add_response(
            "run_instances",
            {"Instances": [instance("i-00000000000000001"), instance("i-00000000000000002")]},
            {
                "LaunchTemplate": {"LaunchTemplateId": "lt-0123456789abcdef0", "Version": "7"},
                "MinCount": 1,
                "MaxCount": 3,
                "TagSpecifications": tags,
            },
        )
        ddb.add_response("batch_write_item", {"UnprocessedItems": {}})
        launched = pool.launch(Plan(launch=3, launch_subnets=[None, None, None]))
        ec2.assert_no_pending_responses()
        ddb.assert_no_pending_responses()
    assert launched == ["i-00000000000000001", "i-00000000000000002"]


def test_other_launch_errors_are_not_retried(stubbed: tuple[Any, Stubber, Stubber]) -> None:
    pool, ec2, ddb = stubbed
    with ec2, ddb:
        ec2.add_client_error("run_instances", service_error_code="InstanceLimitExceeded")
        with pytest.raises(Exception, match="InstanceLimitExceeded"):
            pool.launch(Plan(launch=2, launch_subnets=[None, None]))


def test_an_instance_claimed_after_the_read_is_not_terminated(stubbed: tuple[Any, Stubber, Stubber]) -> None:
    pool, ec2, ddb = stubbed
    doomed = {"i-0000000000000000a": "scale in", "i-0000000000000000b": "scale in"}
    members = {iid: Member(iid, "Healthy", "stopped", 7, "lt-0123456789abcdef0", True) for iid in doomed}
    with ec2, ddb:
        # The broker's lease won i-...a between the reconcile's read and this write.
        ddb.add_client_error("update_item", service_error_code="ConditionalCheckFailedException")
        ddb.add_response("update_item", {"Attributes": {"pk": {"S": "instance#i-0000000000000000b"}}})
        ec2.add_response(
            "terminate_instances",
            {"TerminatingInstances": []},
            {"InstanceIds": ["i-0000000000000000b"]},
        )
        pool.terminate(doomed, members)
        ec2.assert_no_pending_responses()
    assert pool.actions["terminated"] == {"i-0000000000000000b": "scale in"}
