"""Demo step ``agent_session``: the workstation agent's warm-up and one recording session.

Writes an agent config (JSON, as the agent role does) under ctx.work that
points the recorder at the simulated OCAP (tests/fakes/fake_ocap.py), the
state table at ``ctx.facts["state_table"]`` (created here if no earlier step
made one) and the instance id at the broker's claim
(``ctx.facts["claim"]["instance_id"]``) or a demo id. Then, through the real
entry point: ``ocap-agent warmup`` (Healthy), ``ocap-agent session start``
(unlock), about two seconds of recording, ``ocap-agent session stop`` (lock:
finalized and queued for upload). Shows the rows' states along the way.

Leaves in ctx.facts: agent_config (path), session_dir, session_id.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from ocap_agent import state
from tests.fakes.fake_ocap import is_finalized

if TYPE_CHECKING:
    from tools.demo import DemoContext

ROOT = Path(__file__).resolve().parents[2]
DEMO_INSTANCE = "i-0demo0000000000a"
RECORD_S = 2.0


def _table(ctx: DemoContext) -> state.StateTable:
    client = boto3.client(
        "dynamodb",
        endpoint_url=ctx.moto.endpoint,
        region_name=ctx.env["AWS_REGION"],
        aws_access_key_id=ctx.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=ctx.env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=ctx.env.get("AWS_SESSION_TOKEN"),
    )
    name = ctx.facts.get("state_table")
    if not name:
        name = "ocap-demo-state"
        client.create_table(**state.table_definition(name))
        client.get_waiter("table_exists").wait(TableName=name)
    return state.StateTable(client, name)


def _state_of(table: state.StateTable, pk: str) -> str:
    row = table.get(pk)
    return str(row["state"]) if row else "(no row)"


def _wait_gone(pid: int, timeout_s: float = 60.0) -> None:
    # The supervisor records the session's final state after answering the
    # stop; wait for it to finish so the rows shown are the final ones.
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def run(ctx: DemoContext) -> list[str]:
    table = _table(ctx)
    claim: dict[str, Any] = ctx.facts.get("claim") or {}
    instance_id = claim.get("instance_id") or DEMO_INSTANCE
    data_dir = ctx.work / "agent"
    config: dict[str, Any] = {
        "paths": {"data_dir": str(data_dir)},
        "instance": {"instance_id": instance_id, "pool": str(claim.get("pool", ""))},
        "state": {"table": table.table},
        "recorder": {
            "command": [
                sys.executable,
                str(ROOT / "tests" / "fakes" / "fake_ocap.py"),
                "--start-delay",
                "0.5",
                "--write-interval",
                str(1 / 60),
            ],
            "fps": 60,
            "stop_grace_s": 10,
            "start_timeout_s": 30,
        },
    }
    if ctx.facts.get("bucket"):
        config["upload"] = {"bucket": ctx.facts["bucket"]}
    config_path = ctx.work / "agent.json"
    config_path.write_text(json.dumps(config, indent=2))
    agent = ["ocap-agent", "--config", str(config_path)]
    ipk = state.instance_key(instance_id)

    lines = []
    warm = ctx.run([*agent, "warmup"]).strip()
    lines.append(f"{warm.splitlines()[-1]}; instance row {_state_of(table, ipk)}")

    started = json.loads(ctx.run([*agent, "session", "start"]).strip().splitlines()[-1])
    if started.get("status") != "started":
        raise SystemExit(f"agent_session: session start did not start a recording: {started}")
    session_id, session_dir = started["session_id"], Path(started["session_dir"])
    current = json.loads((data_dir / "current.json").read_text())
    spk = state.session_key(session_id)
    time.sleep(RECORD_S)  # the user at work
    # The supervisor writes the row in the background (a recording never waits
    # on DynamoDB); give it a moment before showing it.
    deadline = time.monotonic() + 30
    while table.get(spk) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    lines.append(f"unlock: recording session {session_id}; session row {_state_of(table, spk)}")
    stopped = json.loads(ctx.run([*agent, "session", "stop"]).strip().splitlines()[-1])
    _wait_gone(int(current["supervisor_pid"]))
    files = sorted(p for p in session_dir.iterdir() if p.suffix in (".mcap", ".mkv"))
    sizes = ", ".join(f"{p.suffix[1:]} {p.stat().st_size // 1024} KiB" for p in files)
    base = session_dir / session_dir.name
    lines.append(
        f"lock: {stopped.get('detail', stopped.get('status'))}; {sizes}; "
        f"finalized={is_finalized(base)}; session row {_state_of(table, spk)}; "
        f"instance row {_state_of(table, ipk)}"
    )
    tickets = sorted((data_dir / "spool").glob("*__*.json"))
    lines.append(f"upload spool: {len(tickets)} ticket(s): {', '.join(t.name for t in tickets)}")
    ctx.facts.update(agent_config=str(config_path), session_dir=str(session_dir), session_id=session_id)
    return lines
