"""The broker's two front doors: the Lambda handler (API Gateway shapes) and ``ocap-broker``.

AWS answers are stubbed with botocore's Stubber in the shapes the services
return; the full flows against the emulator live in tests/integration/pool.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from ocap_agent import broker_cli
from ocap_agent.broker import Broker, BrokerSettings, InvalidInput, lambda_handler

NOWHERE = "http://127.0.0.1:9"


def make_broker(**settings: Any) -> tuple[Broker, Stubber]:
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=NOWHERE)
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=NOWHERE)
    b = Broker(BrokerSettings(table="state", **settings), ec2=ec2, ddb=ddb, route53=None)
    return b, Stubber(ddb)


def v2_event(method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": path,
        "requestContext": {"http": {"method": method, "path": path}},
        "body": None if body is None else json.dumps(body),
        "queryStringParameters": query,
        "isBase64Encoded": False,
    }


def test_claim_on_an_empty_pool_answers_503_with_retry_after_and_records_demand() -> None:
    broker, stub = make_broker()
    with stub:
        stub.add_response("query", {"Items": [], "Count": 0, "ScannedCount": 0})
        stub.add_response(
            "update_item",
            {"Attributes": {"pk": {"S": "demand#desk"}, "count": {"N": "4"}}},
            {
                "TableName": "state",
                "Key": {"pk": {"S": "demand#desk"}},
                "UpdateExpression": ANY,
                "ExpressionAttributeNames": ANY,
                "ExpressionAttributeValues": ANY,
                "ReturnValues": "ALL_NEW",
            },
        )
        resp = lambda_handler.route(broker, v2_event("POST", "/prod/claim", {"pool": "desk", "user": "ann"}))
        stub.assert_no_pending_responses()
    assert resp["statusCode"] == 503
    assert resp["headers"]["Retry-After"] == "60"
    body = json.loads(resp["body"])
    assert body["error"] == "NoCapacity"
    assert body["unserved_demand"] == 4
    assert "retry in 60s" in body["message"]


def test_rest_api_v1_shape_with_base64_body_is_understood() -> None:
    broker, stub = make_broker()
    event = {
        "httpMethod": "POST",
        "path": "/claim",
        "body": base64.b64encode(json.dumps({"pool": "bad pool!"}).encode()).decode(),
        "isBase64Encoded": True,
    }
    with stub:  # no AWS call: the pool name is refused first
        resp = lambda_handler.route(broker, event)
    assert resp["statusCode"] == 400
    assert json.loads(resp["body"])["message"].startswith("pool: expected")


@pytest.mark.parametrize(
    ("event", "status", "needle"),
    [
        (v2_event("POST", "/claim", None) | {"body": "{not json"}, 400, "body: expected a JSON object"),
        (v2_event("POST", "/claim", ["a"]), 400, "body: expected a JSON object"),
        (v2_event("POST", "/release", {"session_id": "nope"}), 400, "session_id: expected 32 hexadecimal"),
        (
            v2_event("POST", "/release", {"session_id": "a" * 32, "unhealthy": "yes"}),
            400,
            "unhealthy: expected",
        ),
        (v2_event("GET", "/status", query={"pool": ""}), 400, "pool: expected"),
        (v2_event("DELETE", "/claim"), 404, "no route DELETE /claim"),
    ],
)
def test_bad_requests_name_the_field(event: dict[str, Any], status: int, needle: str) -> None:
    broker, stub = make_broker()
    with stub:
        resp = lambda_handler.route(broker, event)
    assert resp["statusCode"] == status
    assert needle in json.loads(resp["body"])["message"]
    assert resp["headers"]["Content-Type"] == "application/json"


def test_release_of_an_unknown_session_is_404() -> None:
    broker, stub = make_broker()
    with stub:
        stub.add_response("get_item", {})
        resp = lambda_handler.route(broker, v2_event("POST", "/release", {"session_id": "b" * 32}))
    assert resp["statusCode"] == 404
    assert json.loads(resp["body"])["error"] == "UnknownSession"


def test_an_unexpected_failure_is_a_500_without_internals() -> None:
    broker, stub = make_broker()
    with stub:
        stub.add_client_error("query", service_error_code="InternalServerError", http_status_code=500)
        resp = lambda_handler.route(broker, v2_event("GET", "/status", query={"pool": "desk"}))
    assert resp["statusCode"] == 500
    assert json.loads(resp["body"]) == {"error": "InternalError", "message": "the broker failed; see its log"}


# -- settings and the command line ------------------------------------------------
def test_settings_come_from_the_environment_and_bad_numbers_name_the_variable() -> None:
    env = {"OCAP_STATE_TABLE": "t", "OCAP_DNS_TTL": "15", "OCAP_DOMAIN": "ws.example.org"}
    s = BrokerSettings.from_env(env)
    assert (s.table, s.ttl, s.domain) == ("t", 15, "ws.example.org")
    assert BrokerSettings.from_env({"OCAP_STATE_TABLE": "t"}, ttl=45).ttl == 45
    with pytest.raises(InvalidInput, match=r"OCAP_LEASE_SECONDS: expected a int number, got 'soon'"):
        BrokerSettings.from_env({"OCAP_STATE_TABLE": "t", "OCAP_LEASE_SECONDS": "soon"})
    with pytest.raises(InvalidInput, match=r"^table: expected the state table's name"):
        BrokerSettings.from_env({})
    with pytest.raises(InvalidInput, match=r"^ttl: expected seconds between 1 and 86400, got 0"):
        BrokerSettings(table="t", ttl=0)
    with pytest.raises(InvalidInput, match=r"^domain: expected a DNS domain"):
        BrokerSettings(table="t", domain="not a domain")


def test_cli_exit_codes_and_json_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OCAP_STATE_TABLE", "state")
    assert broker_cli.main(["claim", "--pool", "no spaces please"]) == 2
    err = json.loads(capsys.readouterr().err)
    assert err["error"] == "InvalidInput"
    assert err["message"].startswith("pool: expected")
    monkeypatch.delenv("OCAP_STATE_TABLE")
    assert broker_cli.main(["status", "--pool", "desk"]) == 2
    assert "table: expected" in capsys.readouterr().err


def test_status_renders_a_table() -> None:
    from ocap_agent.broker import render_table

    text = render_table(
        [
            {"instance_id": "i-1", "state": "Healthy", "ec2": "stopped", "version": 3, "warm": True},
            {"instance_id": "i-22", "state": "Claimed", "ec2": "running", "version": 3, "warm": False}
            | {"user": "ann"},
        ]
    )
    lines = text.splitlines()
    assert lines[0].split() == [
        "INSTANCE_ID",
        "STATE",
        "EC2",
        "VERSION",
        "WARM",
        "SESSION_ID",
        "USER",
        "LEASE_EXPIRES",
        "HOSTNAME",
    ]
    assert lines[2].split() == ["i-22", "Claimed", "running", "3", "False", "ann"]
