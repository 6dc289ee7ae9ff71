"""Demo step ``pool``: fill a warm pool with playbooks/pool.yml, then claim a session with ``ocap-broker``.

Runs the playbook twice (the second run changes nothing), then
``ocap-broker claim --pool recording --user demo-user`` and ``status``.

In the emulator no agent runs inside the instances, so the warm-up each
launched instance would run (``ocap-agent warmup`` marking its row Healthy) is
played by tests/fakes/instance_sim.py through the same state table API while
the playbook waits.

Uses, when an earlier step left them: ``state_table``, ``launch_template``,
``template_version``, ``hosted_zone_id``, ``subnet_ids``. Creates what is
missing. Leaves: ``claim`` (the claim's JSON: session_id, instance_id,
address, hostname), ``pool``, ``broker_env`` (the OCAP_* variables the broker
reads), and the names it created.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

import boto3

from ocap_agent import state
from ocap_agent.broker import rows
from tests.fakes.instance_sim import InstanceSim
from tests.integration.pool import helpers

if TYPE_CHECKING:
    from tools.demo import DemoContext

POOL = "recording"
WARM_SIZE = 2
_RECAP = re.compile(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)")


def clients(ctx: DemoContext) -> dict[str, Any]:
    kw = {
        "endpoint_url": ctx.moto.endpoint,
        "region_name": ctx.env.get("AWS_REGION", "us-east-1"),
        "aws_access_key_id": ctx.env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": ctx.env["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": ctx.env.get("AWS_SESSION_TOKEN"),
    }
    return {name: boto3.client(name, **kw) for name in ("ec2", "dynamodb", "route53")}


def ensure_world(ctx: DemoContext, c: dict[str, Any]) -> dict[str, Any]:
    """The table, launch template and hosted zone of earlier steps, or demo ones made here."""
    made = []
    table = ctx.facts.get("state_table")
    if not table:
        table = "ocap-demo-state"
        c["dynamodb"].create_table(**state.table_definition(table))
        ctx.facts["state_table"] = table
        made.append(f"table {table}")
    template = ctx.facts.get("launch_template")
    if not template:
        template = "ocap-demo-workstation"
        helpers.create_template(c["ec2"], template)
        ctx.facts.update(launch_template=template, template_version=1)
        made.append(f"launch template {template}")
    zone = ctx.facts.get("hosted_zone_id")
    if not zone:
        zone = helpers.create_zone(c["route53"], "ws.ocap-demo.test")
        ctx.facts.update(hosted_zone_id=zone, hosted_zone_name="ws.ocap-demo.test")
        made.append(f"hosted zone {zone}")
    return {
        "table": str(table),
        "template": str(template),
        "version": str(ctx.facts.get("template_version") or "latest"),
        "zone": str(zone),
        "made": made,
    }


def reconcile(ctx: DemoContext, c: dict[str, Any], world: dict[str, Any], *extra: str) -> tuple[int, str]:
    """Run playbooks/pool.yml for the demo pool with warm-ups simulated; (changed, the pool line)."""
    extra_vars = {
        "pool_state_table": world["table"],
        "pool_launch_template": world["template"],
        "pool_template_version": world["version"],
        "pool_subnet_ids": list(ctx.facts.get("subnet_ids") or []),
        "pool_poll_interval": 0.5,
        "pool_warmup_timeout": 120,
        "pool_definitions": [{"name": POOL, "warm_size": WARM_SIZE}],
    }
    table = state.StateTable(c["dynamodb"], world["table"])
    with InstanceSim(c["ec2"], table, POOL).running():
        out = ctx.playbook("playbooks/pool.yml", "-e", json.dumps(extra_vars), *extra)
    match = _RECAP.search(out)
    if not match:
        raise SystemExit("pool: no play recap in the ansible-playbook output")
    return int(match.group(1)), describe_pool(table)


def describe_pool(table: state.StateTable) -> str:
    """'2 warm, 1 Claimed (template version 1)': the pool as the state table has it."""
    found = list(rows.pool_instances(table, POOL))
    kinds = Counter("warm" if rows.WARM_ATTR in r else str(r["state"]) for r in found)
    versions = sorted({str(r.get("template_version")) for r in found})
    return (
        f"{', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))} (template version {', '.join(versions)})"
    )


def broker_env(world: dict[str, Any]) -> dict[str, str]:
    return {
        "OCAP_STATE_TABLE": world["table"],
        "OCAP_HOSTED_ZONE_ID": world["zone"],
        "OCAP_START_TIMEOUT": "60",
    }


def run(ctx: DemoContext) -> list[str]:
    c = clients(ctx)
    world = ensure_world(ctx, c)
    changed, shown = reconcile(ctx, c, world)
    lines = [f"pool.yml filled the pool ({changed} changed): {shown}"]
    if world["made"]:
        lines.append(f"created for this step: {', '.join(world['made'])}")
    again, _ = reconcile(ctx, c, world)
    if again != 0:
        raise SystemExit(f"pool: the second reconcile changed {again} things; it must change none")
    lines.append("pool.yml again: changed=0 (idempotent)")

    env = broker_env(world)
    claim = json.loads(ctx.run(["ocap-broker", "claim", "--pool", POOL, "--user", "demo-user"], env=env))
    lines.append(
        f"ocap-broker claim: session {claim['session_id']} -> {claim['instance_id']} "
        f"at {claim['address']} ({claim['hostname']})"
    )
    status = ctx.run(["ocap-broker", "status", "--pool", POOL], env=env).rstrip().splitlines()
    lines.extend(f"  {line}" for line in status)
    lines.append(f"now: {describe_pool(state.StateTable(c['dynamodb'], world['table']))}")
    ctx.facts.update(claim=claim, pool=POOL, broker_env=env)
    return lines
