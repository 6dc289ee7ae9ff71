"""dynamodb_state_table against moto: check mode, diff, idempotence, repairs, and a schema it refuses."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from ocap_agent.state import table_definition
from tests.integration.release import harness

TAGS = {"Project": "ocap-workstations", "Environment": "t"}


@pytest.fixture()
def module(aws_env: dict[str, str]) -> Any:
    return harness.load("dynamodb_state_table")


def test_create_in_check_mode_then_for_real_then_nothing_to_do(module: Any, unique: str) -> None:
    ddb = boto3.client("dynamodb")
    name = f"state-{unique}"
    dry = harness.run(module, {"name": name, "tags": TAGS}, check=True)
    assert dry["changed"] is True
    assert dry["changes"] == [f"create table {name}", "enable point-in-time recovery"]
    assert name not in ddb.list_tables()["TableNames"]

    made = harness.run(module, {"name": name, "tags": TAGS})
    assert made["changed"] is True and made["table"]["index"] == "pool-index"
    assert made["diff"]["before"]["exists"] is False
    assert made["diff"]["after"] == {"exists": True, "tags": TAGS, "point_in_time_recovery": True}
    table = ddb.describe_table(TableName=name)["Table"]
    assert made["table"]["arn"] == table["TableArn"]
    backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"

    again = harness.run(module, {"name": name, "tags": TAGS})
    assert again["changed"] is False and again["changes"] == []


def test_missing_tags_and_recovery_turned_off_by_hand_are_repaired(module: Any, unique: str) -> None:
    ddb = boto3.client("dynamodb")
    name = f"state-{unique}"
    ddb.create_table(**table_definition(name))  # made by hand: no tags, no recovery
    ddb.tag_resource(
        ResourceArn=ddb.describe_table(TableName=name)["Table"]["TableArn"],
        Tags=[{"Key": "Team", "Value": "x"}],
    )
    dry = harness.run(module, {"name": name, "tags": TAGS}, check=True)
    assert dry["changes"] == [
        "tag Environment=t, Project=ocap-workstations",
        "enable point-in-time recovery",
    ]
    fixed = harness.run(module, {"name": name, "tags": TAGS})
    assert fixed["diff"]["before"] == {"exists": True, "tags": {"Team": "x"}, "point_in_time_recovery": False}
    assert fixed["diff"]["after"]["tags"] == {"Team": "x", **TAGS}  # other tags are left alone
    assert harness.run(module, {"name": name, "tags": TAGS})["changed"] is False


@pytest.mark.parametrize(
    ("name", "needle"),
    [("x", "name: expected 3 to 255 letters"), ("bad name!", "name: expected 3 to 255 letters")],
)
def test_a_bad_name_is_refused_naming_the_option(module: Any, name: str, needle: str) -> None:
    result = harness.run(module, {"name": name})
    assert result["failed"] is True and needle in result["msg"]


def test_a_table_with_another_schema_is_never_replaced(module: Any, unique: str) -> None:
    ddb = boto3.client("dynamodb")
    name = f"state-{unique}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName=name, Item={"id": {"S": "keep-me"}})
    result = harness.run(module, {"name": name, "tags": TAGS})
    assert result["failed"] is True
    assert f"name: table {name} exists with another key schema or index" in result["msg"]
    assert ddb.get_item(TableName=name, Key={"id": {"S": "keep-me"}}).get("Item")
