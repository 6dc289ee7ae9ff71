"""Demo step ``release_session``: end the claimed session with ``ocap-broker``, prune, and re-warm.

``ocap-broker release SESSION_ID`` deletes the session's DNS record (exact
match), stops the instance and closes lease and session; ``prune`` finds no
stale record left; ``status`` shows the instance waiting for a fresh warm-up;
one more ``playbooks/pool.yml`` run warms it up (simulated, as in the pool
step) and offers it again.

Uses ``ctx.facts["claim"]`` (and ``broker_env``) from the pool step; runs the
pool step first when it is missing.
"""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING, Any

from ocap_agent import state
from ocap_agent.broker import rows
from tools.demo_steps import pool

if TYPE_CHECKING:
    from tools.demo import DemoContext

EXIT_SESSION_BUSY = 5


def run(ctx: DemoContext) -> list[str]:
    lines: list[str] = []
    if not ctx.facts.get("claim"):
        lines.extend(f"(pool step first) {line}" for line in pool.run(ctx))
    claim: dict[str, Any] = ctx.facts["claim"]
    env: dict[str, str] = ctx.facts["broker_env"]
    c = pool.clients(ctx)
    table = state.StateTable(c["dynamodb"], env["OCAP_STATE_TABLE"])
    session = table.get(state.session_key(claim["session_id"])) or {}
    before = f"session {claim['session_id']} was {session.get('state', '(no row)')}"

    argv = ["ocap-broker", "release", claim["session_id"]]
    try:
        released = json.loads(ctx.run(argv, env=env))
    except SystemExit:
        # Still uploading (an earlier step was skipped or failed): say so, then force.
        merged = {**ctx.env, **env}
        probe = subprocess.run(argv, env=merged, text=True, capture_output=True, check=False)
        if probe.returncode != EXIT_SESSION_BUSY:
            raise
        lines.append(f"release refused while busy: {json.loads(probe.stderr)['message']}")
        released = json.loads(ctx.run([*argv, "--force"], env=env))
    row = table.get(state.instance_key(claim["instance_id"])) or {}
    lines.insert(
        0,
        f"ocap-broker release: DNS record {released['dns_record']}, instance {released['instance']}, "
        f"row {row.get('state')}, session {table.get(state.session_key(claim['session_id']))['state']}",
    )
    lines.append(before)
    pruned = json.loads(ctx.run(["ocap-broker", "prune"], env=env))
    lines.append(
        f"ocap-broker prune: {len(pruned['deleted'])} stale record(s) deleted, {pruned['kept']} kept"
    )
    lines.extend(
        f"  {line}" for line in ctx.run(["ocap-broker", "status", "--pool", pool.POOL], env=env).splitlines()
    )

    world = {
        "table": env["OCAP_STATE_TABLE"],
        "template": ctx.facts["launch_template"],
        "version": str(ctx.facts.get("template_version") or "latest"),
        "zone": env["OCAP_HOSTED_ZONE_ID"],
    }
    changed, shown = pool.reconcile(ctx, c, world)
    back = table.get(state.instance_key(claim["instance_id"])) or {}
    lines.append(
        f"pool.yml ({changed} changed): {shown}; {claim['instance_id']} is "
        f"{back.get('state')}{' and warm again' if rows.WARM_ATTR in back else ''}"
    )
    return lines
