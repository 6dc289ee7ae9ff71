"""ec2_instance_pool against the emulator.

The first fill runs through ``ansible`` exactly as a playbook would; the other
cases call the module in-process (same code and argument validation, no
Ansible start-up per case).

In moto no agent runs inside the instances: ``InstanceSim`` (tests/fakes)
plays the agent's warm-up, marking running instances Healthy (or Unhealthy)
through the state table while the module waits.
"""

from __future__ import annotations

from typing import Any

import pytest

from ocap_agent import state
from ocap_agent.broker import Broker, BrokerSettings, claim, release, rows
from tests.fakes.instance_sim import InstanceSim
from tests.integration.pool import helpers
from tests.integration.release import harness


@pytest.fixture()
def world(aws_env: dict[str, str], unique: str) -> dict[str, Any]:
    c = helpers.clients()
    table = helpers.create_table(c["dynamodb"], f"pool-{unique}")
    template = helpers.create_template(c["ec2"], f"pool-{unique}")
    pool = f"desk-{unique}"
    args = {
        "name": pool,
        "state_table": table.table,
        "launch_template_id": template,
        "warm_size": 3,
        "poll_interval": 0.5,
        "warmup_timeout": 60,
    }
    broker = Broker(BrokerSettings(table=table.table), ec2=c["ec2"], ddb=c["dynamodb"])
    return {"c": c, "table": table, "template": template, "pool": pool, "args": args, "broker": broker}


def ec2_states(ec2: Any, ids: list[str]) -> dict[str, str]:
    resp = ec2.describe_instances(InstanceIds=ids)
    return {i["InstanceId"]: i["State"]["Name"] for r in resp["Reservations"] for i in r["Instances"]}


def tags_of(ec2: Any, instance_id: str) -> dict[str, str]:
    inst = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return {t["Key"]: t["Value"] for t in inst.get("Tags", [])}


def test_check_mode_reports_the_fill_and_changes_nothing(world: dict[str, Any]) -> None:
    result = helpers.call_module(world["args"], check=True, diff=True)
    assert result["changed"] is True
    assert result["actions"]["launched"] == 3
    assert result["diff"] == {
        "before": {"states": {}, "versions": {}},
        "after": {"states": {"warm": 3}, "versions": {"1": 3}},
    }
    assert list(rows.pool_instances(world["table"], world["pool"])) == []


def test_fill_then_a_second_run_changes_nothing(world: dict[str, Any]) -> None:
    c, table, pool = world["c"], world["table"], world["pool"]
    with InstanceSim(c["ec2"], table, pool).running():
        first = helpers.run_module(world["args"], diff=True)

    assert first["changed"] is True, first.get("msg")
    assert first["pool"]["counts"] == {"states": {"warm": 3}, "versions": {"1": 3}}
    launched = first["actions"]["launched"]
    assert len(launched) == 3
    assert set(ec2_states(c["ec2"], launched).values()) == {"stopped"}
    for row in rows.pool_instances(table, pool):
        assert row["state"] == "Healthy" and rows.WARM_ATTR in row
    tags = tags_of(c["ec2"], launched[0])
    assert (tags["Pool"], tags["Version"], tags["Project"]) == (pool, "1", "ocap")  # template tags kept

    second = helpers.call_module(world["args"], diff=True)
    assert second["changed"] is False
    assert second["diff"]["before"] == second["diff"]["after"]
    assert second["api_calls"]["total"] <= 15
    assert helpers.call_module(world["args"], check=True)["changed"] is False


def test_rolling_replacement_never_touches_an_instance_in_use(world: dict[str, Any]) -> None:
    c, table, pool, broker = world["c"], world["table"], world["pool"], world["broker"]
    old = helpers.fill_warm(c["ec2"], table, pool, world["template"], 3)
    session = claim(broker, pool, "ann")
    in_use = session["instance_id"]
    table.transition(state.instance_key(in_use), state.InstanceState.IN_USE)  # the agent's session start
    version = helpers.new_version(c["ec2"], world["template"])
    args = {**world["args"], "replace_batch_size": 1, "max_replacements": 10}

    with InstanceSim(c["ec2"], table, pool).running():
        result = helpers.call_module(args, diff=True)

    assert result["changed"] is True, result.get("msg")
    assert in_use not in result["actions"]["terminated"]
    assert set(result["actions"]["terminated"]) == set(old) - {in_use}
    assert all(r.startswith("outdated") for r in result["actions"]["terminated"].values())
    assert result["pool"]["counts"] == {
        "states": {"busy": 1, "warm": 3},
        "versions": {"1": 1, str(version): 3},
    }
    assert ec2_states(c["ec2"], [in_use]) == {in_use: "running"}
    assert table.get(state.instance_key(in_use))["state"] == "InUse"
    assert table.get(state.instance_key(in_use))["session_id"] == session["session_id"]
    # One outdated instance per batch, each batch warm before the next.
    assert result["rounds"] >= 3

    # Once the session ends, the old instance is replaced rather than re-warmed.
    release(broker, session["session_id"])
    with InstanceSim(c["ec2"], table, pool).running():
        after = helpers.call_module(args)
    assert list(after["actions"]["terminated"]) == [in_use]
    assert after["pool"]["counts"] == {"states": {"warm": 3}, "versions": {str(version): 3}}


def test_failed_warm_up_is_terminated_and_replaced(world: dict[str, Any]) -> None:
    c, table, pool = world["c"], world["table"], world["pool"]
    failing: set[str] = set()

    def fail_first_two(row: dict[str, Any]) -> bool:
        # The first two instances to warm up fail; their replacements succeed.
        iid = rows.instance_id_of(row)
        if len(failing) < 2 or iid in failing:
            failing.add(iid)
            return True
        return False

    with InstanceSim(c["ec2"], table, pool, fail=fail_first_two).running():
        result = helpers.call_module(world["args"])

    assert result["changed"] is True, result.get("msg")
    assert set(result["actions"]["failed_warmups"]) == failing
    assert set(result["actions"]["terminated"]) == failing
    assert ec2_states(c["ec2"], sorted(failing)) == dict.fromkeys(failing, "terminated")
    assert result["pool"]["counts"]["states"] == {"warm": 3}
    assert len(result["actions"]["launched"]) == 5
    for iid in failing:
        assert table.get(state.instance_key(iid))["state"] == "Retired"


def test_unserved_claims_scale_the_pool_out(world: dict[str, Any]) -> None:
    c, table, pool = world["c"], world["table"], world["pool"]
    for _ in range(3):
        rows.record_demand(table, pool)
    args = {k: v for k, v in world["args"].items() if k != "warm_size"}
    args.update(min_size=0, max_size=10, target_busy=0.6, step_min=1)
    plan = helpers.call_module(args, check=True)
    assert plan["actions"]["launched"] == 5  # ceil(3 / 0.6)
    with InstanceSim(c["ec2"], table, pool).running():
        result = helpers.call_module(args)
    assert result["pool"]["counts"]["states"] == {"warm": 5}
    assert rows.read_demand(table, pool) == 0

    # The next run no longer sees the demand: within the cooldown it keeps the new capacity.
    calm = helpers.call_module(args)
    assert calm["changed"] is False, calm.get("msg")
    assert calm["pool"]["desired"] == 0 and len(calm["pool"]["cooling"]) == 5
    assert calm["pool"]["counts"]["states"] == {"warm": 5}
    # Once the cooldown is over (here: turned off), scale-in gives it back.
    shrink = helpers.call_module({**args, "scale_in_cooldown": 0})
    assert sorted(shrink["actions"]["terminated"].values()) == ["scale in"] * 5
    assert shrink["pool"]["cooling"] == []


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            {"template_version": "newest"},
            "template_version: expected 'latest', 'default' or a version number",
        ),
        ({"min_size": 2}, "mutually exclusive: warm_size|min_size"),
        ({"warm_size": -1}, "warm_size: expected an integer >= 0, got -1"),
        ({"launch_template_id": "lt-0000000000000dead"}, "launch template 'lt-0000000000000dead'"),
        ({"replace_batch_size": 0}, "replace_batch_size: expected a positive integer"),
        ({"scale_in_cooldown": -1}, "scale_in_cooldown: expected a number of seconds >= 0, got -1"),
    ],
)
def test_bad_input_fails_naming_the_option(
    world: dict[str, Any], change: dict[str, Any], needle: str
) -> None:
    result = helpers.call_module({**world["args"], **change})
    assert result.get("failed") is True
    assert needle in result["msg"]
    assert list(rows.pool_instances(world["table"], world["pool"])) == []


def test_the_playbook_fills_every_pool_and_its_dry_run_then_changes_nothing(
    world: dict[str, Any], unique: str
) -> None:
    c, table = world["c"], world["table"]
    pools = [{"name": f"a-{unique}", "warm_size": 2}, {"name": f"b-{unique}", "warm_size": 1}]
    extra = {
        "pool_state_table": table.table,
        "pool_launch_template": f"pool-{unique}",
        "pool_template_version": "latest",
        "pool_poll_interval": 0.5,
        "pool_warmup_timeout": 60,
        "pool_definitions": pools,
    }
    sims = [InstanceSim(c["ec2"], table, p["name"]) for p in pools]
    with sims[0].running(), sims[1].running():
        first = helpers.run_playbook("playbooks/pool.yml", extra)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "changed=1" in first.stdout
    for p in pools:
        warm = [r for r in rows.pool_instances(table, p["name"]) if rows.WARM_ATTR in r]
        assert len(warm) == p["warm_size"]

    dry = helpers.run_playbook("playbooks/pool.yml", extra, "--check", "--diff")
    assert dry.returncode == 0, dry.stdout[-3000:]
    assert "changed=0" in dry.stdout

    # One pool removed by its definition; the other is left as it is.
    removal = {**extra, "pool_definitions": [{"name": pools[0]["name"], "state": "absent"}, pools[1]]}
    gone = helpers.run_playbook("playbooks/pool.yml", removal)
    assert gone.returncode == 0, gone.stdout[-3000:]
    assert list(rows.pool_instances(table, pools[0]["name"])) == []
    assert len(list(rows.pool_instances(table, pools[1]["name"]))) == pools[1]["warm_size"]


def test_state_absent_removes_idle_instances_and_leaves_sessions_alone(world: dict[str, Any]) -> None:
    c, table, pool, broker = world["c"], world["table"], world["pool"], world["broker"]
    ids = helpers.fill_warm(c["ec2"], table, pool, world["template"], 3)
    session = claim(broker, pool, "ann")
    in_use = session["instance_id"]
    table.transition(state.instance_key(in_use), state.InstanceState.IN_USE)
    rows.record_demand(table, pool)
    idle = sorted(set(ids) - {in_use})
    # No template or size: removing a pool needs only its name and table.
    absent = {"name": pool, "state_table": table.table, "state": "absent"}

    dry = helpers.call_module(absent, check=True, diff=True)
    assert dry["changed"] is True, dry.get("msg")
    assert sorted(dry["actions"]["terminated"]) == idle
    assert dry["diff"]["after"] == {"states": {"busy": 1}, "versions": {"1": 1}}
    assert set(ec2_states(c["ec2"], ids).values()) == {"stopped", "running"}, "check mode changes nothing"

    result = helpers.call_module(absent, diff=True)
    assert result["changed"] is True, result.get("msg")
    assert sorted(result["actions"]["terminated"]) == idle
    assert set(ec2_states(c["ec2"], idle).values()) <= {"shutting-down", "terminated"}
    assert ec2_states(c["ec2"], [in_use]) == {in_use: "running"}
    assert table.get(state.instance_key(in_use))["session_id"] == session["session_id"]
    assert any("run again once their sessions end" in w for w in harness.warnings(result))
    assert rows.read_demand(table, pool) == 0

    again = helpers.call_module(absent)
    assert again["changed"] is False and again["actions"]["terminated"] == {}

    release(broker, session["session_id"])
    last = helpers.call_module(absent, diff=True)
    assert list(last["actions"]["terminated"]) == [in_use]
    assert last["diff"]["after"] == {"states": {}, "versions": {}}
    assert list(rows.pool_instances(table, pool)) == []
    assert helpers.call_module(absent)["changed"] is False


def test_state_present_still_needs_a_template_and_a_size(world: dict[str, Any]) -> None:
    bare = {"name": world["pool"], "state_table": world["table"].table}
    no_template = helpers.call_module(bare)
    assert no_template.get("failed") is True
    assert "launch_template_id, launch_template_name" in no_template["msg"]
    no_size = helpers.call_module({**bare, "launch_template_id": world["template"]})
    assert no_size.get("failed") is True
    assert "warm_size, min_size" in no_size["msg"]
