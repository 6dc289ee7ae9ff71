"""The session broker: hand one warm workstation to exactly one user.

Plain functions over a :class:`Broker` (settings + AWS clients). The command
line (``ocap-broker``) and the Lambda handler are thin wrappers around them.

Why it never double-books: a claim is one conditional write on the instance's
row (Healthy *and* ``warm_at`` set -> Claimed, with the lease); of any number of
claimers racing for one row, exactly one write succeeds, and only the winner
ever starts the instance or writes its DNS record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ocap_agent import aws, state
from ocap_agent.broker import dns, rows

log = logging.getLogger("ocap_agent.broker")

I = state.InstanceState  # noqa: E741 - short alias, as in state.py
S = state.SessionState

POOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SESSION_RE = re.compile(r"^[0-9a-f]{32}$")
USER_MAX = 128
# Claimers that lose a race re-read the pool after this many lost writes
# instead of trying every row they saw (which are probably taken too).
CONFLICTS_BEFORE_REREAD = 3
# Every lost write is another claimer's win, so this bound (60 wins by others
# during one claim) is only reached under extreme contention; the claimer then
# answers "no capacity, retry" rather than spinning.
MAX_READS = 20
# Sessions in these states have work on the instance that a stop would cut.
BUSY_SESSION_STATES = frozenset({S.RECORDING, S.UPLOADING})

ENV = {
    "table": "OCAP_STATE_TABLE",
    "hosted_zone_id": "OCAP_HOSTED_ZONE_ID",
    "domain": "OCAP_DOMAIN",
    "ttl": "OCAP_DNS_TTL",
    "lease_seconds": "OCAP_LEASE_SECONDS",
    "start_timeout": "OCAP_START_TIMEOUT",
    "record_prefix": "OCAP_RECORD_PREFIX",
}


class BrokerError(Exception):
    """A failure the caller can act on; ``status`` is the HTTP status the Lambda answers with."""

    status = 500
    code = "BrokerError"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}


class InvalidInput(BrokerError):
    status = 400
    code = "InvalidInput"


class NoCapacity(BrokerError):
    status = 503
    code = "NoCapacity"


class UnknownSession(BrokerError):
    status = 404
    code = "UnknownSession"


class SessionBusy(BrokerError):
    status = 409
    code = "SessionBusy"


class StartFailed(BrokerError):
    status = 502
    code = "StartFailed"


@dataclass(frozen=True)
class BrokerSettings:
    table: str
    hosted_zone_id: str = ""
    domain: str = ""  # default: the hosted zone's own name
    ttl: int = 30
    lease_seconds: int = 900
    start_timeout: float = 300.0
    record_prefix: str = "ws-"
    retry_after: int = 60  # the hint given with "no capacity", in seconds

    def __post_init__(self) -> None:
        if not self.table:
            raise InvalidInput(f"table: expected the state table's name (--table or ${ENV['table']})")
        if not 1 <= self.ttl <= 86400:
            raise InvalidInput(f"ttl: expected seconds between 1 and 86400, got {self.ttl}")
        if self.lease_seconds < 1:
            raise InvalidInput(
                f"lease_seconds: expected a positive number of seconds, got {self.lease_seconds}"
            )
        if self.start_timeout <= 0:
            raise InvalidInput(
                f"start_timeout: expected a positive number of seconds, got {self.start_timeout}"
            )
        if self.domain and not dns.valid_domain(self.domain):
            raise InvalidInput(f"domain: expected a DNS domain like 'ws.example.org', got {self.domain!r}")
        if not re.fullmatch(r"[a-z0-9-]{1,20}", self.record_prefix):
            raise InvalidInput(
                f"record_prefix: expected 1-20 lowercase letters, digits or '-', got {self.record_prefix!r}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> BrokerSettings:
        """Settings from OCAP_* variables; OVERRIDES (not None) win. Bad numbers name the variable."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for name, var in ENV.items():
            raw = environ.get(var)
            if raw is None or raw == "":
                continue
            kind = types[name]
            try:
                values[name] = int(raw) if kind == "int" else float(raw) if kind == "float" else raw
            except ValueError:
                raise InvalidInput(f"{var}: expected a {kind} number, got {raw!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        values.setdefault("table", "")
        return cls(**values)


@dataclass
class Broker:
    settings: BrokerSettings
    ec2: Any = None
    ddb: Any = None
    route53: Any = None
    sleep: Callable[[float], None] = time.sleep
    _zone_domain: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # Clients are built once and shared: boto3 clients are thread-safe,
        # building them is not.
        self.ec2 = self.ec2 or aws.client("ec2")
        self.ddb = self.ddb or aws.client("dynamodb")
        if self.settings.hosted_zone_id and self.route53 is None:
            self.route53 = aws.client("route53")
        self.table = state.StateTable(self.ddb, self.settings.table)

    @property
    def domain(self) -> str:
        if self.settings.domain:
            return self.settings.domain.rstrip(".").lower()
        if self._zone_domain is None:
            self._zone_domain = dns.zone_domain(self.route53, self.settings.hosted_zone_id)
        return self._zone_domain


# -- claim ---------------------------------------------------------------------
def _check_pool(pool: str) -> None:
    if not isinstance(pool, str) or not POOL_RE.match(pool):
        raise InvalidInput(f"pool: expected 1-64 letters, digits, '.', '_' or '-', got {pool!r}")


def _check_user(user: str | None) -> None:
    if user is not None and (
        not isinstance(user, str) or not 0 < len(user) <= USER_MAX or not user.isprintable()
    ):
        raise InvalidInput(f"user: expected 1-{USER_MAX} printable characters, got {user!r}")


def _lease(
    b: Broker, pool: str, user: str | None, session_id: str
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Win the lease on one claimable row of POOL: (row, []) or (None, expired leases seen)."""
    tried: set[str] = set()
    expires = rows.lease_expiry(b.settings.lease_seconds)
    expired: list[dict[str, Any]] = []
    for _ in range(MAX_READS):
        # One read serves both purposes: claimable rows, and expired leases to
        # reclaim when there are none.
        seen = rows.claimable(b.table, pool)
        expired = [r for r in seen if r["state"] == I.CLAIMED.value]
        candidates = [
            r
            for r in seen
            if r["state"] == I.HEALTHY.value and rows.WARM_ATTR in r and r[state.PK] not in tried
        ]
        if not candidates:
            return None, expired
        # Claimers that all take the first row would collide on every write;
        # a random order spreads them over the rows they saw.
        random.shuffle(candidates)
        conflicts = 0
        for row in candidates:
            tried.add(row[state.PK])
            try:
                won = b.table.transition(
                    row[state.PK],
                    I.CLAIMED,
                    expect={I.HEALTHY},
                    condition=f"attribute_exists({rows.WARM_ATTR})",
                    remove=(rows.WARM_ATTR,),
                    session_id=session_id,
                    lease_owner=user or "anonymous",
                    lease_expires=expires,
                    user=user,
                    claimed_at=state.now_iso(),
                )
                return won, []
            except state.TransitionConflict:
                conflicts += 1
                if conflicts >= CONFLICTS_BEFORE_REREAD:
                    break
    return None, expired


def wait_for_address(b: Broker, instance_id: str) -> str:
    """Bounded polling (growing interval, no fixed sleep) until running with a public IP."""
    deadline = time.monotonic() + b.settings.start_timeout
    delay = 0.2
    last = "unknown"
    while True:
        resp = b.ec2.describe_instances(InstanceIds=[instance_id])
        found = [i for r in resp.get("Reservations", []) for i in r.get("Instances", [])]
        if found:
            inst = found[0]
            last = inst["State"]["Name"]
            if last == "running" and inst.get("PublicIpAddress"):
                return str(inst["PublicIpAddress"])
            if last in ("shutting-down", "terminated"):
                raise StartFailed(
                    f"{instance_id} is {last}; it cannot serve the session", instance_id=instance_id
                )
        if time.monotonic() >= deadline:
            hint = (
                " (running without a public IP: does the subnet or template assign one?)"
                if last == "running"
                else ""
            )
            raise StartFailed(
                f"{instance_id} had no public address after {b.settings.start_timeout:.0f}s, "
                f"state {last}{hint}",
                instance_id=instance_id,
            )
        b.sleep(delay)
        delay = min(delay * 1.5, 5.0)


def claim(b: Broker, pool: str, user: str | None = None) -> dict[str, Any]:
    """Claim one warm instance of POOL for USER: lease, start, address, DNS. Returns the session."""
    _check_pool(pool)
    _check_user(user)
    session_id = uuid.uuid4().hex
    row, expired = _lease(b, pool, user, session_id)
    if row is None:
        reclaimed = _reclaim(b, expired)
        demand = rows.record_demand(b.table, pool)
        raise NoCapacity(
            f"no warm instance in pool {pool!r}; retry in {b.settings.retry_after}s "
            f"(demand recorded: the next reconcile scales the pool out)",
            pool=pool,
            retry_after=b.settings.retry_after,
            unserved_demand=demand,
            reclaimed_leases=len(reclaimed),
        )
    instance_id = rows.instance_id_of(row)
    try:
        b.ec2.start_instances(InstanceIds=[instance_id])
        address = wait_for_address(b, instance_id)
        hostname = None
        if b.settings.hosted_zone_id:
            hostname = dns.record_name(b.settings.record_prefix, instance_id, b.domain)
            dns.upsert(b.route53, b.settings.hosted_zone_id, hostname, address, b.settings.ttl)
    except Exception as exc:
        # The instance is leased to us and maybe running: hand it to the pool
        # as Unhealthy (the next reconcile replaces it).
        _abandon(b, instance_id, session_id, f"claim failed: {exc}")
        if isinstance(exc, BrokerError):
            raise
        raise StartFailed(f"could not start {instance_id}: {exc}", instance_id=instance_id) from exc
    # The session row is written once, complete, when the session is real. A
    # crash before this line leaves a lease without a session: it expires and
    # is reclaimed (instance stopped, record pruned).
    b.table.create(
        state.session_key(session_id),
        S.CLAIMED,
        instance_id=instance_id,
        user=user,
        pool=pool,
        lease_expires=row["lease_expires"],
        hostname=hostname,
        address=address,
        dns_ttl=b.settings.ttl if hostname else None,
    )
    log.info("claimed %s for %s (session %s)", instance_id, user or "anonymous", session_id)
    return {
        "session_id": session_id,
        "instance_id": instance_id,
        "address": address,
        "hostname": hostname,
        "pool": pool,
        "user": user,
        "lease_expires": row["lease_expires"],
    }


def _abandon(b: Broker, instance_id: str, session_id: str, reason: str) -> None:
    with contextlib.suppress(state.TransitionConflict):  # already moved on: nothing to undo
        b.table.transition(
            state.instance_key(instance_id),
            I.UNHEALTHY,
            expect={I.CLAIMED},
            condition="session_id = :sid",
            condition_values={":sid": session_id},
            remove=rows.LEASE_ATTRS,
            reason=reason[:500],
        )
    with contextlib.suppress(Exception):
        # Best effort: stop paying for it; the reconcile terminates it anyway.
        _stop(b, instance_id)


# -- release -------------------------------------------------------------------
def _close_session(b: Broker, session_id: str, reason: str, to: state.SessionState = S.RELEASED) -> None:
    # A conflict means already closed, or never created (a crash between lease and session row).
    with contextlib.suppress(state.TransitionConflict):
        b.table.transition(
            state.session_key(session_id),
            to,
            remove=(state.POOL_ATTR,),  # closed sessions leave the pool index: reads stay small
            released_at=state.now_iso(),
            release_reason=reason[:500],
        )


def _stop(b: Broker, instance_id: str) -> str:
    try:
        b.ec2.stop_instances(InstanceIds=[instance_id])
    except Exception as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in ("InvalidInstanceID.NotFound", "IncorrectInstanceState"):
            return f"not stopped ({code})"
        raise
    return "stopping"


def _return_instance(
    b: Broker, instance_id: str, session_id: str, *, unhealthy: bool, reason: str, only_expired: bool = False
) -> str | None:
    """Move the instance's row off SESSION_ID: WarmingUp, or Unhealthy. None if it was not ours."""
    key = state.instance_key(instance_id)
    condition = "session_id = :sid"
    values: dict[str, Any] = {":sid": session_id}
    if only_expired:
        condition += " AND lease_expires < :now"
        values[":now"] = state.now_iso()
    expect = {I.CLAIMED} if only_expired else {I.CLAIMED, I.IN_USE}
    target = I.UNHEALTHY if unhealthy else I.WARMING_UP
    try:
        b.table.transition(
            key,
            target,
            expect=expect,
            condition=condition,
            condition_values=values,
            remove=(*rows.LEASE_ATTRS, "hostname", "address"),
            reason=reason[:500],
        )
        return target.value
    except state.TransitionConflict:
        pass
    if only_expired:
        return None
    # The agent may already have marked it Unhealthy while it held our session.
    try:
        rows.set_attrs(
            b.table,
            key,
            expect={I.UNHEALTHY},
            condition=condition,
            condition_values=values,
            remove=(*rows.LEASE_ATTRS, "hostname", "address"),
        )
        return I.UNHEALTHY.value
    except state.TransitionConflict:
        return None


def release(
    b: Broker, session_id: str, *, unhealthy: bool = False, force: bool = False, reason: str = "released"
) -> dict[str, Any]:
    """End SESSION_ID: delete its DNS record (exact match), stop the instance, close lease and session.

    Safe to repeat: a release that stopped half-way finishes on the next call.
    """
    if not isinstance(session_id, str) or not SESSION_RE.match(session_id):
        raise InvalidInput(f"session_id: expected 32 hexadecimal characters, got {session_id!r}")
    srow = b.table.get(state.session_key(session_id))
    if srow is None:
        raise UnknownSession(f"no session {session_id} in table {b.settings.table}", session_id=session_id)
    if srow["state"] == S.RELEASED.value:
        return {"session_id": session_id, "instance_id": srow.get("instance_id"), "already_released": True}
    if srow["state"] in BUSY_SESSION_STATES and not force:
        raise SessionBusy(
            f"session {session_id} is {srow['state']}: stopping the instance would cut it; "
            "retry when it is done, or release with force",
            session_id=session_id,
            state=srow["state"],
        )
    instance_id = str(srow["instance_id"])
    row_state = _return_instance(b, instance_id, session_id, unhealthy=unhealthy, reason=reason)
    return _finish_release(b, srow, session_id, instance_id, row_state=row_state, reason=reason)


def _finish_release(
    b: Broker,
    srow: Mapping[str, Any],
    session_id: str,
    instance_id: str,
    *,
    row_state: str | None,
    reason: str,
) -> dict[str, Any]:
    record = "none"
    if srow.get("hostname") and srow.get("address") and b.settings.hosted_zone_id:
        record = dns.delete_exact(
            b.route53,
            b.settings.hosted_zone_id,
            str(srow["hostname"]),
            str(srow["address"]),
            int(srow.get("dns_ttl", b.settings.ttl)),
        )
    current = b.table.get(state.instance_key(instance_id))
    # Never stop an instance that a newer session holds (possible only if this
    # release is a late retry).
    held_by_other = bool(current and current.get("session_id") not in (None, session_id))
    stopped = "kept (held by another session)" if held_by_other else _stop(b, instance_id)
    _close_session(b, session_id, reason)
    log.info("released session %s (%s): row %s, dns %s", session_id, instance_id, row_state, record)
    return {
        "session_id": session_id,
        "instance_id": instance_id,
        "instance_state": row_state or (current or {}).get("state"),
        "dns_record": record,
        "instance": stopped,
        "already_released": False,
    }


def reclaim_expired(b: Broker, pool: str | None = None) -> list[str]:
    """Release every Claimed lease that expired (never moved to InUse). Returns the sessions."""
    now = state.now_iso()
    if pool is not None:
        candidates = [
            r for r in rows.pool_instances(b.table, pool, states=(I.CLAIMED,)) if rows.lease_expired(r)
        ]
    else:
        candidates = []
        for page in b.ddb.get_paginator("scan").paginate(
            TableName=b.settings.table,
            FilterExpression="#state = :claimed AND lease_expires < :now AND begins_with(#pk, :prefix)",
            ExpressionAttributeNames={"#state": "state", "#pk": state.PK},
            ExpressionAttributeValues=state.to_item(
                {":claimed": I.CLAIMED, ":now": now, ":prefix": rows.INSTANCE_PREFIX}
            ),
        ):
            candidates.extend(state.from_item(i) for i in page.get("Items", []))
    return _reclaim(b, candidates)


def _reclaim(b: Broker, candidates: list[dict[str, Any]]) -> list[str]:
    reclaimed = []
    for row in candidates:
        session_id = str(row.get("session_id", ""))
        instance_id = rows.instance_id_of(row)
        reason = "lease expired"
        got = _return_instance(b, instance_id, session_id, unhealthy=False, reason=reason, only_expired=True)
        if got is None:
            continue  # the user started the session (InUse) or someone else reclaimed it
        srow = b.table.get(state.session_key(session_id)) or {}
        _finish_release(b, srow, session_id, instance_id, row_state=got, reason=reason)
        reclaimed.append(session_id)
    return reclaimed


# -- prune and status ------------------------------------------------------------
def prune(b: Broker, pool: str | None = None) -> dict[str, Any]:
    """Reclaim expired leases, then delete DNS records whose instance is gone, stopped or moved."""
    if pool is not None:
        _check_pool(pool)
    reclaimed = reclaim_expired(b, pool)
    if not b.settings.hosted_zone_id:
        return {"reclaimed": reclaimed, "deleted": [], "kept": 0, "dns": "no hosted zone configured"}
    records = dns.our_records(b.route53, b.settings.hosted_zone_id, b.settings.record_prefix, b.domain)
    live = _instances_by_id(b, [iid for iid, _ in records.values()])
    stale = []
    for _name, (instance_id, record) in sorted(records.items()):
        inst = live.get(instance_id)
        values = [v["Value"] for v in record.get("ResourceRecords", [])]
        if inst is None or inst["State"]["Name"] not in ("pending", "running"):
            stale.append(record)
        elif inst.get("PublicIpAddress") not in values:
            stale.append(record)  # the instance restarted with another address
    deleted = dns.delete_records(b.route53, b.settings.hosted_zone_id, stale)
    return {"reclaimed": reclaimed, "deleted": deleted, "kept": len(records) - len(deleted)}


def _instances_by_id(b: Broker, instance_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Describe by an instance-id *filter*: unknown ids are simply absent, not an error."""
    out: dict[str, dict[str, Any]] = {}
    for start in range(0, len(instance_ids), 200):
        batch = instance_ids[start : start + 200]
        for page in b.ec2.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-id", "Values": batch}]
        ):
            for r in page.get("Reservations", []):
                for inst in r.get("Instances", []):
                    out[inst["InstanceId"]] = inst
    return out


STATUS_COLUMNS = (
    "instance_id",
    "state",
    "ec2",
    "version",
    "warm",
    "session_id",
    "user",
    "lease_expires",
    "hostname",
)


def status(b: Broker, pool: str) -> list[dict[str, Any]]:
    """POOL as rows (one per instance): table state joined with the EC2 state."""
    _check_pool(pool)
    table_rows = list(rows.pool_instances(b.table, pool))
    ec2: dict[str, dict[str, Any]] = {}
    for page in b.ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "tag:Pool", "Values": [pool]}]
    ):
        for r in page.get("Reservations", []):
            for inst in r.get("Instances", []):
                ec2[inst["InstanceId"]] = inst
    out = []
    for row in sorted(table_rows, key=lambda r: str(r[state.PK])):
        iid = rows.instance_id_of(row)
        inst = ec2.get(iid, {})
        hostname = None
        if row.get("session_id") and b.settings.hosted_zone_id:
            hostname = dns.record_name(b.settings.record_prefix, iid, b.domain)
        out.append(
            {
                "instance_id": iid,
                "state": row.get("state"),
                "ec2": inst.get("State", {}).get("Name", "gone"),
                "version": row.get("template_version"),
                "warm": rows.WARM_ATTR in row,
                "session_id": row.get("session_id"),
                "user": row.get("user"),
                "lease_expires": row.get("lease_expires"),
                "hostname": hostname,
            }
        )
    return out


def render_table(entries: list[dict[str, Any]], columns: tuple[str, ...] = STATUS_COLUMNS) -> str:
    cells = [[("" if e.get(c) is None else str(e.get(c))) for c in columns] for e in entries]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)
