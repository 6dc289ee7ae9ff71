"""The pool's scaling rule and reconcile planning (module_utils/ocap_pool.py): pure, no AWS."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from module_utils.ocap_pool import (
    Member,
    Scaling,
    classify,
    counts,
    desired_size,
    plan,
    plan_removal,
    predict,
    spread,
)

SEED = Scaling(min_size=50, max_size=1000, target_busy=0.6, step_min=5, step_max=100)


def warm(iid: str, version: int = 2, subnet: str | None = None) -> Member:
    return Member(iid, "Healthy", "stopped", version, "lt-1", True, subnet)


def busy(iid: str, version: int = 2, state: str = "InUse") -> Member:
    return Member(iid, state, "running", version, "lt-1", False)


# -- the scaling rule (seed 002: 50..1000, 60 % busy, steps 5..100) --------------
def test_an_empty_pool_starts_at_its_minimum() -> None:
    assert desired_size(busy=0, current=0, demand=0, scaling=SEED) == 50


def test_more_than_60_percent_busy_scales_out() -> None:
    # 31 of 50 busy is 62 %: 31 / 0.6 = 52 needed, and a step is at least 5.
    assert desired_size(busy=31, current=50, demand=0, scaling=SEED) == 55


def test_exactly_at_target_keeps_the_size() -> None:
    assert desired_size(busy=30, current=50, demand=0, scaling=SEED) == 50


def test_a_burst_is_limited_to_one_step_of_100() -> None:
    assert desired_size(busy=300, current=300, demand=0, scaling=SEED) == 400


def test_never_above_the_maximum() -> None:
    assert desired_size(busy=990, current=990, demand=0, scaling=SEED) == 1000


def test_scale_in_keeps_small_excesses_to_avoid_flapping() -> None:
    # 57 busy needs 95; 98 is only 3 too many (< step_min 5).
    assert desired_size(busy=57, current=98, demand=0, scaling=SEED) == 98


def test_scale_in_removes_at_most_one_step_and_never_below_minimum() -> None:
    assert desired_size(busy=60, current=400, demand=0, scaling=SEED) == 300
    assert desired_size(busy=0, current=60, demand=0, scaling=SEED) == 50


def test_unserved_claims_count_as_busy() -> None:
    # Every instance busy and 10 users turned away: 60 / 0.6 = 100.
    assert desired_size(busy=50, current=50, demand=10, scaling=SEED) == 100


def test_lowered_maximum_comes_down_step_by_step_but_not_below_busy() -> None:
    s = Scaling(min_size=0, max_size=100, target_busy=0.6, step_min=5, step_max=50)
    assert desired_size(busy=10, current=300, demand=0, scaling=s) == 250
    assert desired_size(busy=120, current=130, demand=0, scaling=s) == 120


def test_fixed_mode_keeps_warm_size_idle_beside_the_busy() -> None:
    s = Scaling(warm_size=10, max_size=25)
    assert desired_size(busy=0, current=0, demand=0, scaling=s) == 10
    assert desired_size(busy=7, current=10, demand=3, scaling=s) == 17
    assert desired_size(busy=20, current=25, demand=0, scaling=s) == 25  # capped by max_size


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_size": -1}, "min_size"),
        ({"min_size": 10, "max_size": 5}, "max_size"),
        ({"target_busy": 0.0}, "target_busy"),
        ({"target_busy": 1.5}, "target_busy"),
        ({"step_min": 0}, "step_min"),
        ({"step_min": 10, "step_max": 5}, "step_max"),
        ({"warm_size": -2}, "warm_size"),
    ],
)
def test_bad_settings_are_named(kwargs: dict[str, float], field: str) -> None:
    errors = Scaling(**kwargs).validate()  # type: ignore[arg-type]
    assert len(errors) == 1
    assert errors[0].startswith(f"{field}: expected")


# -- classification -------------------------------------------------------------
@pytest.mark.parametrize(
    ("member", "kind"),
    [
        (Member("i-1", "Healthy", "stopped", 1, warm=True), "warm"),
        (Member("i-1", "Healthy", "stopped", 1, warm=False), "ready"),
        (Member("i-1", "Healthy", "running", 1), "ready"),
        (Member("i-1", "WarmingUp", "running", 1), "warming"),
        (Member("i-1", "Provisioning", "pending", 1), "warming"),
        (Member("i-1", "WarmingUp", "stopped", 1), "cold"),
        (Member("i-1", "Unhealthy", "stopped", 1), "failed"),
        (Member("i-1", "Claimed", "running", 1), "busy"),
        (Member("i-1", "InUse", "running", 1), "busy"),
        (Member("i-1", None, "running", 1), "orphan"),
        (Member("i-1", "Retired", "stopped", 1), "orphan"),
        (Member("i-1", "Healthy", None, 1), "gone"),
    ],
)
def test_classify(member: Member, kind: str) -> None:
    assert classify(member) == kind


# -- planning ---------------------------------------------------------------------
FIXED3 = Scaling(warm_size=3)


def test_a_settled_pool_plans_nothing() -> None:
    p = plan([warm("i-a"), warm("i-b"), warm("i-c")], template_id="lt-1", version=2, scaling=FIXED3)
    assert p.empty
    assert not p.needs_wait


def test_missing_warm_instances_are_launched_spread_over_subnets() -> None:
    members = [warm("i-a", subnet="s-1")]
    p = plan(
        members,
        template_id="lt-1",
        version=2,
        scaling=Scaling(warm_size=5),
        subnets=["s-1", "s-2", "s-3"],
    )
    assert p.launch == 4
    assert sorted(p.launch_subnets, key=str) == ["s-1", "s-2", "s-2", "s-3"]


def test_spread_fills_the_emptiest_subnet_first() -> None:
    assert spread(3, ["a", "b"], {"a": 2}) == ["b", "b", "a"]
    assert spread(2, [], {}) == [None, None]


def test_busy_instances_are_never_in_any_list_even_when_outdated_or_in_excess() -> None:
    members = [busy("i-busy1", version=1), busy("i-busy2", version=1, state="Claimed")]
    members.append(warm("i-w", version=1))
    p = plan(
        members,
        template_id="lt-1",
        version=2,
        scaling=Scaling(warm_size=0),
        replace_budget=10,
    )
    touched = {*p.terminate, *p.start, *p.stop, *p.mark_warm, *p.retire_rows}
    assert "i-busy1" not in touched and "i-busy2" not in touched
    assert p.terminate == {"i-w": "scale in"}


def test_outdated_idle_instances_are_replaced_within_the_budget_and_relaunched() -> None:
    members = [warm(f"i-{n}", version=1) for n in range(5)]
    p = plan(members, template_id="lt-1", version=2, scaling=Scaling(warm_size=5), replace_budget=2)
    assert len(p.terminate) == 2
    assert all(r.startswith("outdated") for r in p.terminate.values())
    assert p.launch == 2
    assert p.replaced_outdated == 2


def test_no_budget_means_no_replacement() -> None:
    members = [warm(f"i-{n}", version=1) for n in range(3)]
    p = plan(members, template_id="lt-1", version=2, scaling=FIXED3, replace_budget=0)
    assert p.empty


def test_another_template_counts_as_outdated() -> None:
    members = [Member("i-x", "Healthy", "stopped", 2, "lt-other", True)]
    p = plan(members, template_id="lt-1", version=2, scaling=Scaling(warm_size=1), replace_budget=1)
    assert list(p.terminate) == ["i-x"]


def test_scale_in_sacrifices_outdated_then_cold_before_warm() -> None:
    members = [
        warm("i-warm"),
        Member("i-cold", "WarmingUp", "stopped", 2, "lt-1"),
        warm("i-old", version=1),
    ]
    p = plan(members, template_id="lt-1", version=2, scaling=Scaling(warm_size=1))
    assert set(p.terminate) == {"i-old", "i-cold"}
    assert p.launch == 0


def test_failed_and_orphaned_instances_are_terminated_and_replaced() -> None:
    members = [
        warm("i-ok"),
        Member("i-bad", "Unhealthy", "stopped", 2, "lt-1"),
        Member("i-orphan", None, "running", 2, "lt-1"),
    ]
    p = plan(members, template_id="lt-1", version=2, scaling=Scaling(warm_size=2))
    assert set(p.terminate) == {"i-bad", "i-orphan"}
    assert p.launch == 1


def test_returned_instances_are_started_healthy_running_ones_stopped() -> None:
    members = [
        Member("i-cold", "WarmingUp", "stopped", 2, "lt-1"),
        Member("i-ready", "Healthy", "running", 2, "lt-1"),
        Member("i-stopped", "Healthy", "stopped", 2, "lt-1", warm=False),
        Member("i-warming", "WarmingUp", "running", 2, "lt-1"),
    ]
    p = plan(members, template_id="lt-1", version=2, scaling=Scaling(warm_size=4))
    assert p.start == ["i-cold"]
    assert p.stop == ["i-ready"]
    assert p.mark_warm == ["i-stopped"]
    assert p.waiting == ["i-warming"]
    assert p.launch == 0


def test_rows_of_vanished_instances_are_retired() -> None:
    gone = [Member("i-gone", "Healthy", None, 2)]
    p = plan(gone, template_id="lt-1", version=2, scaling=Scaling(warm_size=0))
    assert p.retire_rows == ["i-gone"]


def test_diff_counts_and_prediction() -> None:
    members = [warm("i-a", version=1), Member("i-b", "Unhealthy", "stopped", 1, "lt-1")]
    before = counts(members)
    assert before == {"states": {"failed": 1, "warm": 1}, "versions": {"1": 2}}
    p = plan(members, template_id="lt-1", version=2, scaling=Scaling(warm_size=2), replace_budget=5)
    after = counts(predict(members, p, 2, "lt-1"))
    assert after == {"states": {"warm": 2}, "versions": {"2": 2}}


def test_removal_terminates_every_idle_instance_and_never_a_busy_one() -> None:
    members = [
        Member("i-busy", "InUse", "running", 1, "lt-1", False),
        Member("i-claimed", "Claimed", "stopped", 1, "lt-1", False),
        Member("i-warm", "Healthy", "stopped", 1, "lt-1", True),
        Member("i-cold", "WarmingUp", "stopped", 1, "lt-1", False),
        Member("i-failed", "Unhealthy", "running", 1, "lt-1", False),
        Member("i-orphan", None, "running", 1, "lt-1", False),
        Member("i-gone", "Healthy", None, 1, "lt-1", True),
        Member("i-retired", "Retired", None, 1, "lt-1", False),
    ]
    p = plan_removal(members)
    assert sorted(p.terminate) == ["i-cold", "i-failed", "i-orphan", "i-warm"]
    assert p.retire_rows == ["i-gone"]
    assert not p.launch and not p.start and not p.stop
    assert plan_removal([m for m in members if m.instance_id in ("i-busy", "i-retired")]).empty


def test_scale_in_leaves_recently_started_instances_alone_for_the_cooldown() -> None:
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)

    def started(m: Member, minutes_ago: float) -> Member:
        return dataclasses.replace(m, started_at=now - dt.timedelta(minutes=minutes_ago))

    # A burst grew the pool to 4 warm; the next run wants 1 again.
    members = [started(warm("i-a"), 2), started(warm("i-b"), 3), started(warm("i-c"), 30), warm("i-d")]
    p = plan(
        members, template_id="lt-1", version=2, scaling=Scaling(warm_size=1), now=now, scale_in_cooldown_s=600
    )
    # Three too many, two removable (started long ago, or start unknown); the two fresh ones stay.
    assert p.terminate == {"i-c": "scale in", "i-d": "scale in"}
    assert p.cooling == ["i-a", "i-b"] and p.launch == 0
    # Once the cooldown is over, or with it off, scale-in proceeds as before.
    later = plan(
        members, template_id="lt-1", version=2, scaling=Scaling(warm_size=1), now=now, scale_in_cooldown_s=60
    )
    assert set(later.terminate) == {"i-a", "i-b", "i-c"} and later.cooling == []
    # Failed and outdated instances are replaced whatever their age.
    fresh_bad = [started(Member("i-bad", "Unhealthy", "stopped", 2, "lt-1"), 1), started(warm("i-old", 1), 1)]
    q = plan(
        fresh_bad,
        template_id="lt-1",
        version=2,
        scaling=Scaling(warm_size=1),
        replace_budget=1,
        now=now,
        scale_in_cooldown_s=600,
    )
    assert set(q.terminate) == {"i-bad", "i-old"}
