"""Pure planning for ``ec2_instance_pool`` (imported as ``ansible.module_utils.ocap_pool``).

No AWS calls here: the module observes the pool (EC2 instances by tag, rows of
the state table), this file decides what to change, and the module acts. That
split keeps the rules unit-testable without an emulator.

Vocabulary (one word per situation an instance of the pool can be in):

- ``busy``: Claimed or InUse. Never touched by a reconcile.
- ``warm``: Healthy, stopped after its warm-up (``warm_at`` set): claimable.
- ``ready``: Healthy but still running: stop it, then it becomes warm.
- ``warming``: Provisioning/WarmingUp and running: waiting for the agent's warm-up.
- ``cold``: WarmingUp but stopped (returned after a session): start it to warm up again.
- ``failed``: Unhealthy: terminate (it is replaced through the scaling rule).
- ``orphan``: tagged for the pool but without a row (a run stopped between launch
  and row creation) or with a Retired row: never claimable, terminate.
- ``gone``: a row whose instance no longer exists: retire the row.

Idle means warm, ready, warming or cold: capacity that no user holds.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

BUSY_STATES = frozenset({"Claimed", "InUse"})
WARMING_STATES = frozenset({"Provisioning", "WarmingUp"})
LIVE_EC2_STATES = frozenset({"pending", "running", "stopping", "stopped"})
RUNNING_EC2_STATES = frozenset({"pending", "running"})
STOPPED_EC2_STATES = frozenset({"stopping", "stopped"})

IDLE_KINDS = ("warm", "ready", "warming", "cold")
# Scale-in and rolling replacement take idle instances in this order: the ones
# that cost least to lose first (a cold instance still needs a warm-up; a warm
# one is ready for a user now).
SACRIFICE_ORDER = {"cold": 0, "failed": 0, "warming": 1, "ready": 2, "warm": 3}


@dataclass(frozen=True)
class Member:
    """One instance of the pool as observed: its row (if any) joined with EC2 (if any)."""

    instance_id: str
    state: str | None = None  # state-table state; None: no row
    ec2_state: str | None = None  # None: no such instance (terminated and gone)
    version: int | None = None  # launch template version it was launched from
    template_id: str | None = None
    warm: bool = False
    subnet_id: str | None = None
    started_at: dt.datetime | None = None  # EC2 LaunchTime: the instance's last start


@dataclass(frozen=True)
class Scaling:
    """How many instances the pool should hold.

    Fixed mode (``warm_size`` set): keep ``warm_size`` idle instances beside the
    busy ones, never more than ``max_size`` in all.
    Ratio mode: keep busy/total at or below ``target_busy``, within
    ``min_size``..``max_size``, changing by at least ``step_min`` and at most
    ``step_max`` instances at a time (seed 002: 50..1000, 60 %, 5..100).
    """

    min_size: int = 0
    max_size: int = 1000
    target_busy: float = 0.6
    step_min: int = 1
    step_max: int = 100
    warm_size: int | None = None

    def validate(self) -> list[str]:
        """Problems with these settings, each naming the option and what was expected."""
        errors = []
        if self.min_size < 0:
            errors.append(f"min_size: expected an integer >= 0, got {self.min_size}")
        if self.max_size < max(self.min_size, 0):
            errors.append(f"max_size: expected an integer >= min_size ({self.min_size}), got {self.max_size}")
        if not 0 < self.target_busy <= 1:
            errors.append(f"target_busy: expected a ratio in (0, 1], got {self.target_busy}")
        if self.step_min < 1:
            errors.append(f"step_min: expected an integer >= 1, got {self.step_min}")
        if self.step_max < self.step_min:
            errors.append(f"step_max: expected an integer >= step_min ({self.step_min}), got {self.step_max}")
        if self.warm_size is not None and self.warm_size < 0:
            errors.append(f"warm_size: expected an integer >= 0, got {self.warm_size}")
        return errors


def desired_size(busy: int, current: int, demand: int, scaling: Scaling) -> int:
    """The pool's total size after this reconcile (busy + idle).

    BUSY instances are held by users, CURRENT is busy + idle now, DEMAND counts
    claims that found no capacity since the last reconcile (they are busy
    instances the pool failed to provide).
    """
    if scaling.warm_size is not None:
        return max(busy, min(busy + scaling.warm_size, scaling.max_size))
    wanted = busy + demand
    needed = math.ceil(wanted / scaling.target_busy) if wanted else 0
    needed = min(max(needed, scaling.min_size), scaling.max_size)
    delta = needed - current
    if delta > 0:
        # Scale out by at least step_min (a launch has a fixed cost in time,
        # better to launch a few extra) and at most step_max, never past max_size.
        new = current + min(max(delta, scaling.step_min), scaling.step_max)
        return min(new, scaling.max_size)
    if current > scaling.max_size:
        # Over the ceiling (max_size was lowered): come down step by step.
        return max(current - scaling.step_max, scaling.max_size, busy)
    excess = -delta
    if excess < scaling.step_min:
        # Hysteresis: small excesses are kept, so the pool does not flap.
        return current
    return max(current - min(excess, scaling.step_max), scaling.min_size, busy)


def classify(member: Member) -> str:
    """The one word (see the module docstring) for MEMBER's situation."""
    if member.ec2_state not in LIVE_EC2_STATES:
        return "gone"
    if member.state is None or member.state == "Retired":
        return "orphan"
    if member.state in BUSY_STATES:
        return "busy"
    if member.state == "Unhealthy":
        return "failed"
    if member.state == "Healthy":
        if member.ec2_state in STOPPED_EC2_STATES:
            return "warm" if member.warm and member.ec2_state == "stopped" else "ready"
        return "ready"
    # Provisioning / WarmingUp
    return "warming" if member.ec2_state in RUNNING_EC2_STATES else "cold"


def is_outdated(member: Member, template_id: str, version: int) -> bool:
    if member.template_id and member.template_id != template_id:
        return True
    return member.version != version


@dataclass
class Plan:
    """What one reconcile round changes. Empty plan: the pool is as desired."""

    desired: int = 0
    launch: int = 0
    launch_subnets: list[str | None] = field(default_factory=list)
    terminate: dict[str, str] = field(default_factory=dict)  # instance id -> reason
    start: list[str] = field(default_factory=list)
    stop: list[str] = field(default_factory=list)
    mark_warm: list[str] = field(default_factory=list)  # Healthy and already stopped
    retire_rows: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # already warming: wait, no change
    cooling: list[str] = field(default_factory=list)  # above desired, kept: started within the cooldown
    replaced_outdated: int = 0

    @property
    def empty(self) -> bool:
        return not (
            self.launch or self.terminate or self.start or self.stop or self.mark_warm or self.retire_rows
        )

    @property
    def needs_wait(self) -> bool:
        return bool(self.launch or self.start or self.waiting)

    def summary(self) -> dict[str, Any]:
        return {
            "desired": self.desired,
            "launch": self.launch,
            "terminate": dict(sorted(self.terminate.items())),
            "start": sorted(self.start),
            "stop": sorted(self.stop),
            "mark_warm": sorted(self.mark_warm),
            "retire_rows": sorted(self.retire_rows),
            "waiting": sorted(self.waiting),
            "cooling": sorted(self.cooling),
        }


def spread(count: int, subnets: Sequence[str], existing: Mapping[str | None, int]) -> list[str | None]:
    """Subnets for COUNT launches, each to the subnet with the fewest instances so far."""
    if not subnets:
        return [None] * count
    load = {s: existing.get(s, 0) for s in subnets}
    out: list[str | None] = []
    for _ in range(count):
        pick = min(subnets, key=lambda s: (load[s], subnets.index(s)))
        load[pick] += 1
        out.append(pick)
    return out


def plan(
    members: Iterable[Member],
    *,
    template_id: str,
    version: int,
    scaling: Scaling,
    demand: int = 0,
    replace_budget: int = 0,
    subnets: Sequence[str] = (),
    now: dt.datetime | None = None,
    scale_in_cooldown_s: float = 0,
) -> Plan:
    """One round of reconciliation: pure, deterministic (ties broken by instance id).

    REPLACE_BUDGET is how many idle outdated instances may still be replaced
    in this round (rolling batch size, bounded by what is left of the run's
    maximum). A busy instance is never in any list of the plan.

    Scale-in skips an idle instance started less than SCALE_IN_COOLDOWN_S
    before NOW: capacity a demand burst just added (or a session just gave
    back) is not removed by the next run, which no longer sees that demand.
    Failed, orphaned and outdated instances go regardless.
    """
    members = sorted(members, key=lambda m: m.instance_id)
    kinds = {m.instance_id: classify(m) for m in members}
    by_kind: dict[str, list[Member]] = {}
    for m in members:
        by_kind.setdefault(kinds[m.instance_id], []).append(m)
    p = Plan()
    for m in by_kind.get("gone", []):
        if m.state not in (None, "Retired"):
            p.retire_rows.append(m.instance_id)
    for m in by_kind.get("orphan", []):
        p.terminate[m.instance_id] = "no claimable row (orphan)"
    for m in by_kind.get("failed", []):
        p.terminate[m.instance_id] = "unhealthy (failed warm-up or health check)"

    busy = len(by_kind.get("busy", []))
    idle = [m for k in IDLE_KINDS for m in by_kind.get(k, [])]
    current = busy + len(idle)
    p.desired = desired_size(busy, current, demand, scaling)

    def sacrifice_key(m: Member) -> tuple[int, int, str]:
        outdated = 0 if is_outdated(m, template_id, version) else 1
        return (outdated, SACRIFICE_ORDER[kinds[m.instance_id]], m.instance_id)

    def cooling(m: Member) -> bool:
        if now is None or m.started_at is None or scale_in_cooldown_s <= 0:
            return False
        return (now - m.started_at).total_seconds() < scale_in_cooldown_s

    removed: set[str] = set()
    excess = max(current - p.desired, 0)
    for m in sorted(idle, key=sacrifice_key):
        if excess <= 0:
            break
        if cooling(m):
            p.cooling.append(m.instance_id)
            continue
        p.terminate[m.instance_id] = "scale in"
        removed.add(m.instance_id)
        excess -= 1

    # Rolling replacement: only idle instances, at most REPLACE_BUDGET per round.
    outdated = [m for m in sorted(idle, key=sacrifice_key) if m.instance_id not in removed]
    outdated = [m for m in outdated if is_outdated(m, template_id, version)]
    for m in outdated[: max(replace_budget, 0)]:
        p.terminate[m.instance_id] = f"outdated (version {m.version}, want {version})"
        removed.add(m.instance_id)
        p.replaced_outdated += 1

    remaining = [m for m in idle if m.instance_id not in removed]
    p.launch = max(p.desired - busy - len(remaining), 0)
    placed = Counter(m.subnet_id for m in members if kinds[m.instance_id] in ("busy", *IDLE_KINDS))
    for iid in removed:
        placed[next(m.subnet_id for m in idle if m.instance_id == iid)] -= 1
    p.launch_subnets = spread(p.launch, list(subnets), placed)

    for m in remaining:
        kind = kinds[m.instance_id]
        if kind == "cold":
            p.start.append(m.instance_id)
        elif kind == "ready":
            (p.mark_warm if m.ec2_state == "stopped" else p.stop).append(m.instance_id)
        elif kind == "warming":
            p.waiting.append(m.instance_id)
    return p


def plan_removal(members: Iterable[Member]) -> Plan:
    """``state: absent``: every idle instance goes, rows of gone instances are retired.

    A busy instance is never in the plan: it stays until its session is over
    (the broker's release makes it idle), and the next run removes it.
    """
    p = Plan()
    for m in sorted(members, key=lambda m: m.instance_id):
        kind = classify(m)
        if kind == "gone":
            if m.state not in (None, "Retired"):
                p.retire_rows.append(m.instance_id)
        elif kind != "busy":
            p.terminate[m.instance_id] = "pool removed (state=absent)"
    return p


def counts(members: Iterable[Member]) -> dict[str, dict[str, int]]:
    """Counts per situation and per template version: the shape of the module's diff."""
    kinds: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    for m in members:
        kind = classify(m)
        if kind == "gone":
            continue
        kinds[kind] += 1
        versions[str(m.version) if m.version is not None else "unknown"] += 1
    return {"states": dict(sorted(kinds.items())), "versions": dict(sorted(versions.items()))}


def predict(members: Iterable[Member], p: Plan, version: int, template_id: str) -> list[Member]:
    """The pool as it will be once P is carried out and every warm-up succeeds (for check mode)."""
    out: list[Member] = []
    settling = {*p.start, *p.stop, *p.mark_warm, *p.waiting}
    for m in members:
        if m.instance_id in p.terminate or m.instance_id in p.retire_rows:
            continue
        if m.instance_id in settling:
            out.append(
                Member(m.instance_id, "Healthy", "stopped", m.version, m.template_id, True, m.subnet_id)
            )
        else:
            out.append(m)
    for i, subnet in enumerate(p.launch_subnets):
        out.append(Member(f"(new-{i + 1})", "Healthy", "stopped", version, template_id, True, subnet))
    return out
