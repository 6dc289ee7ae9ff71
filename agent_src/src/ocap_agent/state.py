"""The state table: defined once, used by the agent, the broker and the pool module.

One DynamoDB table holds three kinds of rows, told apart by the prefix of the
partition key ``pk``:

- ``instance#<instance-id>``: one per workstation; ``state`` is an
  :class:`InstanceState`; carries ``pool``, ``image_version``, lease fields.
- ``session#<session-id>``: one per recording session; ``state`` is a
  :class:`SessionState`; carries ``instance_id``, ``user``.
- ``demand#<pool>``: claims that found no capacity, so the next reconcile
  scales out.

Every change of ``state`` is a conditional update that names the states it may
come from (:data:`INSTANCE_TRANSITIONS`, :data:`SESSION_TRANSITIONS`), so of
two writers racing for the same row exactly one wins; the loser gets
:class:`TransitionConflict`. Timestamps are UTC ISO 8601 strings.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from ocap_agent import aws
from ocap_agent.config import Config

PK = "pk"
POOL_INDEX = "pool-index"
POOL_ATTR = "pool"


class InstanceState(enum.StrEnum):
    PROVISIONING = "Provisioning"
    WARMING_UP = "WarmingUp"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    CLAIMED = "Claimed"
    IN_USE = "InUse"
    RETIRED = "Retired"


class SessionState(enum.StrEnum):
    CLAIMED = "Claimed"
    RECORDING = "Recording"
    UPLOADING = "Uploading"
    UPLOADED = "Uploaded"
    FAILED = "Failed"
    RELEASED = "Released"


_I = InstanceState
INSTANCE_TRANSITIONS: Mapping[InstanceState, frozenset[InstanceState]] = {
    _I.PROVISIONING: frozenset({_I.WARMING_UP, _I.UNHEALTHY, _I.RETIRED}),
    _I.WARMING_UP: frozenset({_I.HEALTHY, _I.UNHEALTHY, _I.RETIRED}),
    _I.HEALTHY: frozenset({_I.CLAIMED, _I.WARMING_UP, _I.UNHEALTHY, _I.RETIRED}),
    _I.UNHEALTHY: frozenset({_I.WARMING_UP, _I.RETIRED}),
    # A claim that is never used (lease expired) goes back to Healthy.
    _I.CLAIMED: frozenset({_I.IN_USE, _I.HEALTHY, _I.WARMING_UP, _I.UNHEALTHY, _I.RETIRED}),
    # After a session the instance is stopped and must warm up again.
    _I.IN_USE: frozenset({_I.WARMING_UP, _I.UNHEALTHY, _I.RETIRED}),
    _I.RETIRED: frozenset(),
}

_S = SessionState
SESSION_TRANSITIONS: Mapping[SessionState, frozenset[SessionState]] = {
    _S.CLAIMED: frozenset({_S.RECORDING, _S.RELEASED, _S.FAILED}),
    _S.RECORDING: frozenset({_S.UPLOADING, _S.FAILED, _S.RELEASED}),
    _S.UPLOADING: frozenset({_S.UPLOADED, _S.FAILED, _S.RELEASED}),
    _S.UPLOADED: frozenset({_S.RELEASED}),
    _S.FAILED: frozenset({_S.UPLOADING, _S.RELEASED}),
    _S.RELEASED: frozenset(),
}


class StateError(Exception):
    """Base class of state-table errors."""


class IllegalTransition(StateError):
    """The state machine does not allow this change at all."""


class TransitionConflict(StateError):
    """The row was not in an expected state: another writer got there first."""


def now_iso(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def instance_key(instance_id: str) -> str:
    return f"instance#{instance_id}"


def session_key(session_id: str) -> str:
    return f"session#{session_id}"


def demand_key(pool: str) -> str:
    return f"demand#{pool}"


def table_definition(name: str) -> dict[str, Any]:
    """CreateTable arguments: the key schema every user of the table relies on."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": PK, "AttributeType": "S"},
            {"AttributeName": POOL_ATTR, "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": PK, "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": POOL_INDEX,
                "KeySchema": [
                    {"AttributeName": POOL_ATTR, "KeyType": "HASH"},
                    {"AttributeName": PK, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def sources_of(target: enum.Enum) -> frozenset[Any]:
    """Every state from which TARGET may be reached."""
    table: Mapping[Any, frozenset[Any]]
    table = INSTANCE_TRANSITIONS if isinstance(target, InstanceState) else SESSION_TRANSITIONS
    return frozenset(src for src, dsts in table.items() if target in dsts)


_ser = TypeSerializer()
_de = TypeDeserializer()


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(_plain(v)) for k, v in values.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: _de.deserialize(v) for k, v in item.items()}
    # DynamoDB numbers come back as Decimal; callers want int/float.
    for k, v in out.items():
        if isinstance(v, Decimal):
            out[k] = int(v) if v == int(v) else float(v)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _is_conditional_failure(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    return bool(response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class StateTable:
    """Conditional reads and writes of the state table through a boto3 DynamoDB client."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    # -- reads -----------------------------------------------------------
    def get(self, pk: str) -> dict[str, Any] | None:
        resp = self.client.get_item(TableName=self.table, Key=to_item({PK: pk}), ConsistentRead=True)
        item = resp.get("Item")
        return from_item(item) if item else None

    def query_pool(self, pool: str) -> Iterator[dict[str, Any]]:
        """Every row of POOL (instances and sessions), page by page."""
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(
            TableName=self.table,
            IndexName=POOL_INDEX,
            KeyConditionExpression="#pool = :pool",
            ExpressionAttributeNames={"#pool": POOL_ATTR},
            ExpressionAttributeValues=to_item({":pool": pool}),
        ):
            for item in page.get("Items", []):
                yield from_item(item)

    # -- writes ----------------------------------------------------------
    def create(self, pk: str, state: enum.Enum, **attrs: Any) -> dict[str, Any]:
        """Create a row that must not exist yet."""
        values = {PK: pk, "state": state, "revision": 1, "created_at": now_iso(), "updated_at": now_iso()}
        values.update({k: v for k, v in attrs.items() if v is not None})
        try:
            self.client.put_item(
                TableName=self.table,
                Item=to_item(values),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": PK},
            )
        except Exception as exc:
            if _is_conditional_failure(exc):
                raise TransitionConflict(f"{pk} already exists") from None
            raise
        return from_item(to_item(values))

    def transition(
        self,
        pk: str,
        to: enum.Enum,
        *,
        expect: frozenset[Any] | set[Any] | None = None,
        condition: str | None = None,
        condition_values: Mapping[str, Any] | None = None,
        remove: tuple[str, ...] = (),
        create_missing: bool = False,
        **attrs: Any,
    ) -> dict[str, Any]:
        """Move row PK to state TO, only from a state in EXPECT (default: every legal source).

        Extra ATTRS are set in the same write; REMOVE names attributes to drop.
        CONDITION (with CONDITION_VALUES) adds to the state check. With
        CREATE_MISSING a row that does not exist is created in the same write.
        Returns the row as written. Raises IllegalTransition for a change the
        state machine forbids, TransitionConflict when the row was elsewhere.
        """
        legal = sources_of(to)
        sources = frozenset(expect) if expect is not None else legal
        illegal = {s for s in sources if s not in legal}
        if illegal:
            bad = ", ".join(sorted(getattr(s, "value", str(s)) for s in illegal))
            raise IllegalTransition(f"{pk}: {bad} -> {to.value} is not an allowed transition")
        names: dict[str, str] = {"#state": "state", "#rev": "revision", "#pk": PK}
        values: dict[str, Any] = {":to": to}
        expr = _update_expression(["#state = :to"], attrs, remove, names, values)
        in_sources = _state_in(sources, values) if sources else "attribute_not_exists(#pk)"
        if create_missing:
            cond = f"(attribute_not_exists(#pk) OR {in_sources})"
        else:
            cond = f"attribute_exists(#pk) AND {in_sources}"
        if condition:
            cond = f"({cond}) AND ({condition})"
            values.update(condition_values or {})
        conflict = (
            f"{pk}: not in {sorted(s.value for s in sources)} (or its condition failed); "
            f"another writer changed it first"
        )
        return self.conditional_update(pk, expr, cond, names, values, conflict=conflict)

    def conditional_update(
        self,
        pk: str,
        expr: str,
        cond: str,
        names: Mapping[str, str],
        values: Mapping[str, Any],
        *,
        conflict: str,
    ) -> dict[str, Any]:
        """One UpdateItem of row PK; a failed CONDITION raises TransitionConflict(CONFLICT)."""
        try:
            resp = self.client.update_item(
                TableName=self.table,
                Key=to_item({PK: pk}),
                UpdateExpression=expr,
                ConditionExpression=cond,
                ExpressionAttributeNames=dict(names),
                ExpressionAttributeValues=to_item(values),
                ReturnValues="ALL_NEW",
            )
        except Exception as exc:
            if _is_conditional_failure(exc):
                raise TransitionConflict(conflict) from None
            raise
        return from_item(resp["Attributes"])


def set_attrs(
    table: StateTable,
    pk: str,
    expect: Iterable[Any],
    *,
    remove: tuple[str, ...] = (),
    condition: str | None = None,
    condition_values: Mapping[str, Any] | None = None,
    **attrs: Any,
) -> dict[str, Any]:
    """Set ATTRS on row PK without changing its state, only while its state is in EXPECT.

    For facts about a row that must not move it (a warm-up's timings on an
    instance a broker has already claimed; a broker's lease fields). REMOVE and
    CONDITION work as in :meth:`StateTable.transition`. Raises
    TransitionConflict when the row is elsewhere.
    """
    expect = frozenset(expect)
    names: dict[str, str] = {"#state": "state", "#rev": "revision", "#pk": PK}
    values: dict[str, Any] = {}
    expr = _update_expression([], attrs, remove, names, values)
    cond = f"attribute_exists(#pk) AND {_state_in(expect, values)}"
    if condition:
        cond = f"({cond}) AND ({condition})"
        values.update(condition_values or {})
    return table.conditional_update(
        pk, expr, cond, names, values, conflict=f"{pk}: not in {sorted(s.value for s in expect)}"
    )


def _update_expression(
    sets: list[str],
    attrs: Mapping[str, Any],
    remove: tuple[str, ...],
    names: dict[str, str],
    values: dict[str, Any],
) -> str:
    """The UpdateExpression of every write: SETS, the bookkeeping, ATTRS (None skipped), REMOVE.

    Fills NAMES and VALUES with the placeholders it uses.
    """
    values.update({":now": now_iso(), ":one": 1, ":zero": 0})
    sets = [*sets, "updated_at = :now", "#rev = if_not_exists(#rev, :zero) + :one"]
    for i, (k, v) in enumerate(sorted(attrs.items())):
        if v is None:
            continue
        names[f"#a{i}"] = k
        values[f":a{i}"] = v
        sets.append(f"#a{i} = :a{i}")
    expr = "SET " + ", ".join(sets)
    if remove:
        for i, k in enumerate(remove):
            names[f"#r{i}"] = k
        expr += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
    return expr


def _state_in(states: frozenset[Any], values: dict[str, Any]) -> str:
    """``#state IN (...)`` over STATES, adding their placeholders to VALUES."""
    placeholders = []
    for i, s in enumerate(sorted(states, key=lambda e: e.value)):
        values[f":s{i}"] = s
        placeholders.append(f":s{i}")
    return f"#state IN ({', '.join(placeholders)})"


def open_table(cfg: Config, *, quick: bool = False) -> StateTable | None:
    """The state table named by CFG.state.table through the agent's AWS client, or None if unset.

    QUICK bounds every call to a few seconds and two attempts: for lookups on
    the path of a recording, which must never wait long on DynamoDB.
    """
    if not cfg.state.table:
        return None
    overrides: dict[str, Any] = {}
    if quick:
        overrides = {
            "connect_timeout": 2,
            "read_timeout": 3,
            "retries": {"mode": "standard", "max_attempts": 2},
        }
    return StateTable(aws.client("dynamodb", cfg.aws, **overrides), cfg.state.table)
