"""DNS records of sessions: names, exact-match deletes, and Route53's real error shapes.

moto gap: moto's Route53 answers a DELETE of a missing or changed record with
``InvalidInput`` ("Expected exactly one of [AliasTarget, ...]"), where Route53
answers ``InvalidChangeBatch`` ("... but it was not found" / "... the values
provided do not match the current values"). The broker handles Route53's
answer, so these paths are tested with botocore's Stubber and AWS's shapes.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from ocap_agent.broker import dns

ZONE = "/hostedzone/Z0123456789ABC"


@pytest.fixture()
def route53() -> Any:
    return boto3.client("route53", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")


def rrset(name: str, value: str, ttl: int = 30) -> dict[str, Any]:
    return {"Name": name, "Type": "A", "TTL": ttl, "ResourceRecords": [{"Value": value}]}


CHANGE_INFO = {"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING", "SubmittedAt": "2026-11-23T00:00:00Z"}}


def test_record_names_belong_to_the_instance_not_its_address() -> None:
    name = dns.record_name("ws-", "i-0123456789abcdef0", "Desk.Example.org.")
    assert name == "ws-0123456789abcdef0.desk.example.org"
    assert dns.instance_of(name + ".", "ws-", "desk.example.org") == "i-0123456789abcdef0"
    assert dns.instance_of("drone-1-2-3-4.desk.example.org.", "ws-", "desk.example.org") is None
    assert dns.instance_of("ws-0123456789abcdef0.other.org.", "ws-", "desk.example.org") is None


@pytest.mark.parametrize(
    "message",
    [
        "[Tried to delete resource record set [name='ws-1234abcd.example.org.', type='A'] "
        "but it was not found]",
        "[Tried to delete resource record set [name='ws-1234abcd.example.org.', type='A'] "
        "but the values provided do not match the current values]",
    ],
)
def test_deleting_a_record_that_is_gone_or_changed_reports_absent(route53: Any, message: str) -> None:
    with Stubber(route53) as stub:
        stub.add_client_error(
            "change_resource_record_sets",
            service_error_code="InvalidChangeBatch",
            service_message=message,
            http_status_code=400,
            expected_params={
                "HostedZoneId": ZONE,
                "ChangeBatch": {
                    "Comment": ANY,
                    "Changes": [
                        {"Action": "DELETE", "ResourceRecordSet": rrset("ws-1234abcd.example.org", "1.2.3.4")}
                    ],
                },
            },
        )
        assert dns.delete_exact(route53, ZONE, "ws-1234abcd.example.org", "1.2.3.4", 30) == "absent"
        stub.assert_no_pending_responses()


def test_other_route53_errors_are_not_hidden(route53: Any) -> None:
    with Stubber(route53) as stub:
        stub.add_client_error(
            "change_resource_record_sets", service_error_code="NoSuchHostedZone", http_status_code=404
        )
        with pytest.raises(ClientError):
            dns.delete_exact(route53, ZONE, "ws-1234abcd.example.org", "1.2.3.4", 30)


def test_prune_batch_with_one_changed_record_falls_back_to_one_by_one(route53: Any) -> None:
    stale = [rrset("ws-00000001.example.org.", "1.1.1.1"), rrset("ws-00000002.example.org.", "2.2.2.2")]
    changed = (
        "[Tried to delete resource record set [name='ws-00000002.example.org.', type='A'] "
        "but the values provided do not match the current values]"
    )
    with Stubber(route53) as stub:
        stub.add_client_error(
            "change_resource_record_sets", service_error_code="InvalidChangeBatch", service_message=changed
        )
        stub.add_response("change_resource_record_sets", CHANGE_INFO)  # the first one alone
        stub.add_client_error(
            "change_resource_record_sets", service_error_code="InvalidChangeBatch", service_message=changed
        )
        deleted = dns.delete_records(route53, ZONE, stale)
        stub.assert_no_pending_responses()
    assert deleted == ["ws-00000001.example.org."]


def test_our_records_lists_only_instance_records_across_pages(route53: Any) -> None:
    with Stubber(route53) as stub:
        stub.add_response(
            "list_resource_record_sets",
            {
                "ResourceRecordSets": [
                    {
                        "Name": "example.org.",
                        "Type": "NS",
                        "TTL": 3600,
                        "ResourceRecords": [{"Value": "ns-1."}],
                    },
                    rrset("ws-0000000a.example.org.", "10.0.0.1"),
                    rrset("drone-10-0-0-2.example.org.", "10.0.0.2"),
                ],
                "IsTruncated": True,
                "NextRecordName": "ws-0000000b.example.org.",
                "NextRecordType": "A",
                "MaxItems": "3",
            },
        )
        stub.add_response(
            "list_resource_record_sets",
            {
                "ResourceRecordSets": [rrset("ws-0000000b.example.org.", "10.0.0.3")],
                "IsTruncated": False,
                "MaxItems": "3",
            },
        )
        found = dns.our_records(route53, ZONE, "ws-", "example.org")
    assert {name: iid for name, (iid, _) in found.items()} == {
        "ws-0000000a.example.org.": "i-0000000a",
        "ws-0000000b.example.org.": "i-0000000b",
    }
