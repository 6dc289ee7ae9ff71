"""Pool and lease rows of the state table, shared by the broker and the pool module.

Builds on :mod:`ocap_agent.state` (key schema, states, conditional transitions)
and adds what a pool needs on top, without changing any state's meaning:

- ``warm_at``: set on a Healthy instance once it is *stopped* after its warm-up.
  Only Healthy rows with ``warm_at`` are claimable, so the broker never starts
  an instance the pool module is about to stop. A claim removes it.
- Lease fields on a Claimed instance: ``lease_owner``, ``lease_expires`` (UTC ISO
  8601, compares as text), ``session_id``, ``user``.
- Demand: ``demand#<pool>`` counts claims that found no capacity (atomic ADD);
  a reconcile reads the count and subtracts what it has seen.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ocap_agent import state

WARM_ATTR = "warm_at"
LEASE_ATTRS = ("lease_owner", "lease_expires", "session_id", "user")
INSTANCE_PREFIX = "instance#"
# BatchWriteItem takes at most 25 puts per call.
BATCH_WRITE_MAX = 25


def instance_id_of(row: Mapping[str, Any]) -> str:
    return str(row[state.PK]).removeprefix(INSTANCE_PREFIX)


def lease_expiry(seconds: float, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return state.now_iso(now + dt.timedelta(seconds=seconds))


def lease_expired(row: Mapping[str, Any], now: dt.datetime | None = None) -> bool:
    expires = row.get("lease_expires")
    return bool(expires) and str(expires) < state.now_iso(now)


def pool_instances(
    table: state.StateTable, pool: str, states: Iterable[state.InstanceState] | None = None
) -> Iterator[dict[str, Any]]:
    """Instance rows of POOL (not its sessions), page by page; optionally only STATES.

    The key condition keeps sessions and other rows of the pool out of the read;
    the state filter only trims what crosses the wire.
    """
    names = {"#pool": state.POOL_ATTR, "#pk": state.PK}
    values: dict[str, Any] = {":pool": pool, ":prefix": INSTANCE_PREFIX}
    params: dict[str, Any] = {}
    if states is not None:
        wanted = sorted(s.value for s in states)
        names["#state"] = "state"
        for i, s in enumerate(wanted):
            values[f":s{i}"] = s
        params["FilterExpression"] = f"#state IN ({', '.join(f':s{i}' for i in range(len(wanted)))})"
    paginator = table.client.get_paginator("query")
    for page in paginator.paginate(
        TableName=table.table,
        IndexName=state.POOL_INDEX,
        KeyConditionExpression="#pool = :pool AND begins_with(#pk, :prefix)",
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=state.to_item(values),
        **params,
    ):
        for item in page.get("Items", []):
            yield state.from_item(item)


def claimable(table: state.StateTable, pool: str, now: str | None = None) -> list[dict[str, Any]]:
    """Rows of POOL a claim can use: warm Healthy ones, and Claimed ones whose lease expired.

    The filter runs in DynamoDB, so an exhausted pool answers with (almost)
    nothing, and only the attributes a claim needs cross the wire.
    """
    values = {
        ":pool": pool,
        ":prefix": INSTANCE_PREFIX,
        ":healthy": state.InstanceState.HEALTHY,
        ":claimed": state.InstanceState.CLAIMED,
        ":now": now or state.now_iso(),
    }
    out: list[dict[str, Any]] = []
    for page in table.client.get_paginator("query").paginate(
        TableName=table.table,
        IndexName=state.POOL_INDEX,
        KeyConditionExpression="#pool = :pool AND begins_with(#pk, :prefix)",
        FilterExpression=(
            f"(#state = :healthy AND attribute_exists({WARM_ATTR})) "
            "OR (#state = :claimed AND lease_expires < :now)"
        ),
        ProjectionExpression=f"#pk, #state, {WARM_ATTR}, lease_expires, session_id",
        ExpressionAttributeNames={"#pool": state.POOL_ATTR, "#pk": state.PK, "#state": "state"},
        ExpressionAttributeValues=state.to_item(values),
    ):
        out.extend(state.from_item(item) for item in page.get("Items", []))
    return out


def create_instance_rows(table: state.StateTable, rows: Iterable[Mapping[str, Any]]) -> int:
    """Create rows for freshly launched instances, 25 per call; returns the number of calls.

    The instance ids are new (EC2 just returned them), so an unconditional batch
    put cannot overwrite anyone's row. Unprocessed items are retried with backoff.
    """
    now = state.now_iso()
    items = []
    for row in rows:
        values = {"revision": 1, "created_at": now, "updated_at": now, **row}
        items.append({"PutRequest": {"Item": state.to_item(values)}})
    calls = 0
    for start in range(0, len(items), BATCH_WRITE_MAX):
        pending = items[start : start + BATCH_WRITE_MAX]
        delay = 0.05
        while pending:
            resp = table.client.batch_write_item(RequestItems={table.table: pending})
            calls += 1
            pending = resp.get("UnprocessedItems", {}).get(table.table, [])
            if pending:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
    return calls


def set_attrs(
    table: state.StateTable,
    pk: str,
    *,
    expect: Iterable[state.InstanceState | state.SessionState],
    remove: tuple[str, ...] = (),
    condition: str | None = None,
    condition_values: Mapping[str, Any] | None = None,
    **attrs: Any,
) -> dict[str, Any]:
    """Set ATTRS on row PK without changing its state, only while its state is in EXPECT.

    Raises :class:`state.TransitionConflict` when the row moved on meanwhile.
    """
    return state.set_attrs(
        table, pk, expect, remove=remove, condition=condition, condition_values=condition_values, **attrs
    )


def record_demand(table: state.StateTable, pool: str) -> int:
    """Count one claim that found no capacity; returns the pool's unserved demand."""
    resp = table.client.update_item(
        TableName=table.table,
        Key=state.to_item({state.PK: state.demand_key(pool)}),
        UpdateExpression="ADD #count :one SET updated_at = :now, pool_name = :pool",
        ExpressionAttributeNames={"#count": "count"},
        ExpressionAttributeValues=state.to_item({":one": 1, ":now": state.now_iso(), ":pool": pool}),
        ReturnValues="ALL_NEW",
    )
    return int(state.from_item(resp["Attributes"]).get("count", 0))


def read_demand(table: state.StateTable, pool: str) -> int:
    row = table.get(state.demand_key(pool))
    return int(row.get("count", 0)) if row else 0


def consume_demand(table: state.StateTable, pool: str, seen: int) -> None:
    """Subtract SEEN from the demand count: claims recorded meanwhile stay counted."""
    if seen <= 0:
        return
    table.client.update_item(
        TableName=table.table,
        Key=state.to_item({state.PK: state.demand_key(pool)}),
        UpdateExpression="ADD #count :minus SET updated_at = :now",
        ExpressionAttributeNames={"#count": "count"},
        ExpressionAttributeValues=state.to_item({":minus": -seen, ":now": state.now_iso()}),
    )


def mark_warm(table: state.StateTable, instance_id: str) -> bool:
    """Offer a Healthy instance, now stopped, to claims. False if it left Healthy (or holds a lease)."""
    try:
        set_attrs(
            table,
            state.instance_key(instance_id),
            expect={state.InstanceState.HEALTHY},
            condition="attribute_not_exists(session_id)",
            warm_at=state.now_iso(),
        )
    except state.TransitionConflict:
        return False
    return True
