"""The broker behind API Gateway: the same functions as ``ocap-broker``, HTTP-shaped answers.

Routes (REST API or HTTP API, any stage prefix):

- ``POST /claim``   body ``{"pool": "P", "user": "U"}`` -> 200 session, 503 no capacity
- ``POST /release`` body ``{"session_id": "...", "unhealthy": false}`` -> 200, 404 unknown
- ``POST /prune``                                       -> 200 what was deleted
- ``GET /status?pool=P``                                -> 200 the pool's rows

Settings come from the same OCAP_* environment variables as the command line.
Errors answer ``{"error": code, "message": ...}`` with the status of the error
class; "no capacity" adds a ``Retry-After`` header.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from ocap_agent.broker import core

log = logging.getLogger("ocap_agent.broker")

_broker: core.Broker | None = None


def _get_broker() -> core.Broker:
    # One broker (and its clients) per Lambda container, reused across invocations.
    global _broker  # noqa: PLW0603
    if _broker is None:
        _broker = core.Broker(core.BrokerSettings.from_env())
    return _broker


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(headers or {})},
        "body": json.dumps(body, default=str),
        "isBase64Encoded": False,
    }


def _request(event: dict[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, str]]:
    http = event.get("requestContext", {}).get("http", {})
    method = str(event.get("httpMethod") or http.get("method") or "").upper()
    path = str(event.get("rawPath") or event.get("path") or "")
    raw = event.get("body") or ""
    if raw and event.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode("utf-8")
    try:
        body = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise core.InvalidInput(f"body: expected a JSON object ({exc.msg})") from None
    if not isinstance(body, dict):
        raise core.InvalidInput("body: expected a JSON object")
    query = event.get("queryStringParameters") or {}
    return method, path.rstrip("/"), body, query


def route(broker: core.Broker, event: dict[str, Any]) -> dict[str, Any]:
    try:
        method, path, body, query = _request(event)
        action = path.rsplit("/", 1)[-1]
        if (method, action) == ("POST", "claim"):
            return response(200, core.claim(broker, body.get("pool", ""), body.get("user")))
        if (method, action) == ("POST", "release"):
            unhealthy = body.get("unhealthy", False)
            if not isinstance(unhealthy, bool):
                raise core.InvalidInput(f"unhealthy: expected true or false, got {unhealthy!r}")
            return response(200, core.release(broker, body.get("session_id", ""), unhealthy=unhealthy))
        if (method, action) == ("POST", "prune"):
            return response(200, core.prune(broker, body.get("pool")))
        if (method, action) == ("GET", "status"):
            return response(
                200, {"pool": query.get("pool"), "instances": core.status(broker, query.get("pool", ""))}
            )
        return response(404, {"error": "NotFound", "message": f"no route {method} {path or '/'}"})
    except core.BrokerError as exc:
        headers = (
            {"Retry-After": str(exc.details["retry_after"])} if isinstance(exc, core.NoCapacity) else None
        )
        return response(exc.status, exc.to_dict(), headers)
    except Exception:
        log.exception("broker request failed")
        return response(500, {"error": "InternalError", "message": "the broker failed; see its log"})


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    try:
        broker = _get_broker()
    except core.BrokerError as exc:
        return response(exc.status, exc.to_dict())
    return route(broker, event)
