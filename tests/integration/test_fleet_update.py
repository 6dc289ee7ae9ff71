"""playbooks/fleet-update.yml against the AWS emulator: the plan skips
instances in use, and the per-instance hold only wins over rows nobody holds.
(The update itself needs Windows hosts; it runs in a real rollout.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ocap_agent import state

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FLEET_STATE = ROOT / "playbooks" / "files" / "fleet_state.py"


def _table(ddb: Any, name: str) -> state.StateTable:
    ddb.create_table(**state.table_definition(name))
    return state.StateTable(ddb, name)


def _env(aws_env: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ, **aws_env)
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "agent_src" / "src")])
    return env


def test_plan_skips_claimed_and_in_use_instances(
    ddb: Any, aws_env: dict[str, str], unique: str, tmp_path: Path
) -> None:
    table = _table(ddb, f"state-{unique}")
    table.create(state.instance_key("i-healthy"), state.InstanceState.HEALTHY)
    table.create(state.instance_key("i-inuse"), state.InstanceState.IN_USE)
    table.create(state.instance_key("i-claimed"), state.InstanceState.CLAIMED)
    inventory = tmp_path / "fleet.yml"
    inventory.write_text(
        "ocap_fleet:\n  hosts:\n    i-healthy: {}\n    i-inuse: {}\n    i-claimed: {}\n    i-norow: {}\n"
    )
    env = _env(aws_env) | {"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    proc = subprocess.run(
        [
            str(BIN / "ansible-playbook"),
            "-i",
            str(inventory),
            "playbooks/fleet-update.yml",
            "-e",
            json.dumps({"fleet_update_plan_only": True, "ocap_state_table": table.table}),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
    plan = next(t for t in tasks if t["task"]["name"] == "Show the plan")["hosts"]["localhost"]["msg"]
    assert plan == "update 2: i-healthy, i-norow; skip 2 in use or busy: i-inuse, i-claimed"


def _fleet_state(aws_env: dict[str, str], *args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(FLEET_STATE), *args],
        env=_env(aws_env),
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_hold_takes_a_healthy_row_and_never_an_in_use_one(
    ddb: Any, aws_env: dict[str, str], unique: str
) -> None:
    table = _table(ddb, f"state-{unique}")
    table.create(state.instance_key("i-healthy"), state.InstanceState.HEALTHY)
    table.create(state.instance_key("i-inuse"), state.InstanceState.IN_USE)
    held = _fleet_state(aws_env, "hold", "--table", table.table, "i-healthy")
    refused = _fleet_state(aws_env, "hold", "--table", table.table, "i-inuse")
    assert held == {"id": "i-healthy", "held": True, "state": "WarmingUp"}
    assert refused == {"id": "i-inuse", "held": False, "state": "InUse"}
    assert (table.get(state.instance_key("i-inuse")) or {})["state"] == "InUse"


def test_a_failed_update_leaves_the_instance_unhealthy(
    ddb: Any, aws_env: dict[str, str], unique: str
) -> None:
    table = _table(ddb, f"state-{unique}")
    table.create(state.instance_key("i-1"), state.InstanceState.HEALTHY)
    _fleet_state(aws_env, "hold", "--table", table.table, "i-1")
    released = _fleet_state(aws_env, "release", "--table", table.table, "i-1")
    assert released == {"id": "i-1", "released": True, "state": "Unhealthy"}
