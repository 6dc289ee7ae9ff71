"""The state machine of the state table: which changes exist, and that every write is conditional.

Pure: the DynamoDB calls go to botocore's Stubber with the real request and
error shapes, so these tests check the conditions the agent sends, not moto's
evaluation of them (the race against a real conditional write is in
tests/integration/agent/test_state_table.py, interleaved deterministically).
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from ocap_agent import state
from ocap_agent.state import (
    INSTANCE_TRANSITIONS,
    SESSION_TRANSITIONS,
    IllegalTransition,
    InstanceState,
    SessionState,
    StateTable,
    TransitionConflict,
)


@pytest.fixture()
def stubbed() -> tuple[StateTable, Stubber]:
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return StateTable(client, "t"), Stubber(client)


def reachable(transitions: Any, start: Any) -> set[Any]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in transitions[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_every_state_has_a_rule_and_retired_and_released_are_final() -> None:
    assert set(INSTANCE_TRANSITIONS) == set(InstanceState)
    assert set(SESSION_TRANSITIONS) == set(SessionState)
    assert INSTANCE_TRANSITIONS[InstanceState.RETIRED] == frozenset()
    assert SESSION_TRANSITIONS[SessionState.RELEASED] == frozenset()


def test_a_new_instance_can_reach_every_state_and_always_retire() -> None:
    assert reachable(INSTANCE_TRANSITIONS, InstanceState.PROVISIONING) == set(InstanceState)
    for s in InstanceState:
        assert InstanceState.RETIRED in reachable(INSTANCE_TRANSITIONS, s)


def test_warmup_and_session_paths_are_legal() -> None:
    i = INSTANCE_TRANSITIONS
    assert InstanceState.HEALTHY in i[InstanceState.WARMING_UP]
    assert InstanceState.UNHEALTHY in i[InstanceState.WARMING_UP]
    assert InstanceState.WARMING_UP in i[InstanceState.IN_USE]  # warm up again after a session
    assert InstanceState.HEALTHY not in i[InstanceState.UNHEALTHY]  # only through a new warm-up
    s = SESSION_TRANSITIONS
    assert s[SessionState.CLAIMED] >= {SessionState.RECORDING}
    assert s[SessionState.RECORDING] >= {SessionState.UPLOADING, SessionState.FAILED}
    assert SessionState.RECORDING not in s[SessionState.UPLOADING]  # a queued session never records again


def test_sources_of_inverts_the_table() -> None:
    assert state.sources_of(InstanceState.HEALTHY) == {InstanceState.WARMING_UP, InstanceState.CLAIMED}
    assert state.sources_of(InstanceState.PROVISIONING) == frozenset()


def test_illegal_transition_is_refused_before_any_call(stubbed) -> None:
    table, stub = stubbed
    with stub, pytest.raises(IllegalTransition, match=r"Unhealthy -> Healthy is not an allowed transition"):
        table.transition("instance#i-1", InstanceState.HEALTHY, expect={InstanceState.UNHEALTHY})
    stub.assert_no_pending_responses()


def test_transition_is_one_conditional_update_naming_the_source_states(stubbed) -> None:
    table, stub = stubbed
    stub.add_response(
        "update_item",
        {"Attributes": {"pk": {"S": "instance#i-1"}, "state": {"S": "Healthy"}, "revision": {"N": "2"}}},
        {
            "TableName": "t",
            "Key": {"pk": {"S": "instance#i-1"}},
            "UpdateExpression": ANY,
            "ConditionExpression": "attribute_exists(#pk) AND #state IN (:s0)",
            "ExpressionAttributeNames": ANY,
            "ExpressionAttributeValues": ANY,
            "ReturnValues": "ALL_NEW",
        },
    )
    with stub:
        row = table.transition("instance#i-1", InstanceState.HEALTHY, expect={InstanceState.WARMING_UP})
    assert row == {"pk": "instance#i-1", "state": "Healthy", "revision": 2}


def test_losing_writer_gets_transition_conflict(stubbed) -> None:
    table, stub = stubbed
    stub.add_client_error("update_item", "ConditionalCheckFailedException", "The conditional request failed")
    with stub, pytest.raises(TransitionConflict, match="another writer changed it first"):
        table.transition("session#s", SessionState.UPLOADING, expect={SessionState.RECORDING})


def test_other_errors_are_not_mistaken_for_conflicts(stubbed) -> None:
    table, stub = stubbed
    stub.add_client_error("update_item", "ProvisionedThroughputExceededException", "slow down")
    with stub, pytest.raises(Exception, match="slow down") as info:
        table.transition("session#s", SessionState.UPLOADING)
    assert not isinstance(info.value, TransitionConflict)


def test_set_attrs_keeps_the_state_and_is_conditional(stubbed) -> None:
    table, stub = stubbed
    stub.add_response(
        "update_item",
        {"Attributes": {"pk": {"S": "instance#i-1"}, "state": {"S": "Claimed"}}},
        {
            "TableName": "t",
            "Key": {"pk": {"S": "instance#i-1"}},
            "UpdateExpression": ANY,
            "ConditionExpression": "attribute_exists(#pk) AND #state IN (:s0)",
            "ExpressionAttributeNames": ANY,
            "ExpressionAttributeValues": ANY,
            "ReturnValues": "ALL_NEW",
        },
    )
    stub.add_client_error("update_item", "ConditionalCheckFailedException", "failed")
    with stub:
        assert (
            state.set_attrs(table, "instance#i-1", {InstanceState.CLAIMED}, healthy_at="x")["state"]
            == "Claimed"
        )
        with pytest.raises(TransitionConflict):
            state.set_attrs(table, "instance#i-1", {InstanceState.CLAIMED}, healthy_at="x")


def test_timestamps_are_utc_iso8601_with_z() -> None:
    import datetime as dt

    t = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert state.now_iso(t) == "2026-01-02T01:04:05.678Z"


def test_items_round_trip_numbers_and_enums() -> None:
    item = state.to_item({"state": InstanceState.HEALTHY, "n": 3, "f": 0.25, "m": {"a": 1.5}})
    assert state.from_item(item) == {"state": "Healthy", "n": 3, "f": 0.25, "m": {"a": 1.5}}
