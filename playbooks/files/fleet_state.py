"""The state table, as fleet-update.yml needs it (runs on the controller).

    fleet_state.py read --table T ID...   -> {"ID": "Healthy" | null, ...}
    fleet_state.py hold --table T ID      -> {"id": ID, "held": true|false, "state": ...}
    fleet_state.py release --table T ID   -> {"id": ID, "released": true|false, "state": ...}

read: one BatchGetItem per 100 instances (cost grows with pages, not rows).
hold: moves a Healthy or Unhealthy row to WarmingUp in one conditional write,
so the broker cannot claim the instance while its agent is replaced; a row
that changed meanwhile (claimed, in use) is not held, and the caller skips
the instance. An instance without a row is "held" trivially: nothing can
claim it. release: after a failed update, WarmingUp -> Unhealthy, so the pool
replaces it rather than serving a half-updated workstation.

Row keys, states and transitions come from the agent package (ocap_agent.state),
the one definition every writer uses. AWS settings come from the environment.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import boto3

from ocap_agent.state import InstanceState, StateTable, TransitionConflict, from_item, instance_key, to_item

BATCH = 100


def read(client: Any, table: str, ids: list[str]) -> dict[str, str | None]:
    states: dict[str, str | None] = dict.fromkeys(ids)
    for start in range(0, len(ids), BATCH):
        keys = [to_item({"pk": instance_key(i)}) for i in ids[start : start + BATCH]]
        request: dict[str, Any] = {
            table: {
                "Keys": keys,
                "ConsistentRead": True,
                "ProjectionExpression": "pk, #s",
                "ExpressionAttributeNames": {"#s": "state"},
            }
        }
        while request:
            resp = client.batch_get_item(RequestItems=request)
            for item in resp.get("Responses", {}).get(table, []):
                row = from_item(item)
                states[str(row["pk"]).removeprefix("instance#")] = str(row.get("state"))
            request = resp.get("UnprocessedKeys") or {}
    return states


def hold(client: Any, table: str, instance_id: str) -> dict[str, Any]:
    t = StateTable(client, table)
    pk = instance_key(instance_id)
    try:
        row = t.transition(
            pk,
            InstanceState.WARMING_UP,
            expect={InstanceState.HEALTHY, InstanceState.UNHEALTHY},
            warmup_reason="fleet-update",
        )
    except TransitionConflict:
        current = t.get(pk)
        if current is None:
            return {"id": instance_id, "held": True, "state": None}
        return {"id": instance_id, "held": False, "state": current.get("state")}
    return {"id": instance_id, "held": True, "state": row.get("state")}


def release(client: Any, table: str, instance_id: str) -> dict[str, Any]:
    t = StateTable(client, table)
    pk = instance_key(instance_id)
    try:
        row = t.transition(pk, InstanceState.UNHEALTHY, expect={InstanceState.WARMING_UP})
    except TransitionConflict:
        current = t.get(pk) or {}
        return {"id": instance_id, "released": False, "state": current.get("state")}
    return {"id": instance_id, "released": True, "state": row.get("state")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("read", "hold", "release"))
    parser.add_argument("--table", required=True)
    parser.add_argument("ids", nargs="*")
    args = parser.parse_intermixed_args(argv)
    client = boto3.client("dynamodb")
    if args.action == "read":
        result: Any = read(client, args.table, list(dict.fromkeys(args.ids)))
    else:
        if len(args.ids) != 1:
            parser.error(f"{args.action} takes exactly one instance id")
        result = (hold if args.action == "hold" else release)(client, args.table, args.ids[0])
    json.dump(result, sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
