"""``ocap-agent warmup`` against the moto server and the simulated recorder.

Healthy only when the recorder really recorded, stopped when asked and
finalized its files; every other outcome is Unhealthy with a reason, and the
recorder is never left running.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ocap_agent import state
from ocap_agent.state import InstanceState, SessionState, instance_key
from tests.integration.agent.conftest import pid_alive, read_events

IID = "i-0aaaaaaaaaaaaaaa1"


def row(table: state.StateTable) -> dict[str, Any]:
    r = table.get(instance_key(IID))
    assert r is not None
    return r


def scratch_files(agent: Any) -> list[Path]:
    return [p for p in (agent.data_dir / "warmup").rglob("*") if p.suffix in (".mcap", ".mkv")]


def test_happy_path_writes_healthy_with_timings_and_leaves_no_files(make_agent, state_table) -> None:
    agent = make_agent(table=state_table.table)
    res = agent.run_process("warmup")  # the console script itself, once
    assert res.returncode == 0, res.stderr
    assert "Healthy" in res.stdout
    r = row(state_table)
    assert r["state"] == InstanceState.HEALTHY
    assert r["image_version"] == (Path(__file__).resolve().parents[3] / "VERSION").read_text().strip()
    assert r["instance_id"] == IID
    assert r["pool"] == "test-pool"
    assert r["warmup"]["recording_s"] >= r["warmup"]["first_file_s"] > 0
    assert r["healthy_at"].endswith("Z")
    assert scratch_files(agent) == []
    # A second warm-up (the next boot) goes through WarmingUp again and ends Healthy.
    assert agent.run("warmup").returncode == 0
    assert row(state_table)["revision"] == 4


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (("--fail", "crash-after-files"), "exited with code 3"),
        (("--fail", "crash-before-files"), "exited with code 3"),
        (("--health-check-failed", "at-start"), "HEALTH CHECK FAILED"),
        (("--health-check-failed", "while-recording"), "HEALTH CHECK FAILED"),
    ],
    ids=["crash-while-recording", "crash-at-start", "health-failed-exit-0", "health-failed-while-recording"],
)
def test_recorder_failure_is_unhealthy_with_the_reason(make_agent, state_table, flags, reason) -> None:
    agent = make_agent(*flags, table=state_table.table)
    res = agent.run("warmup")
    assert res.returncode == 1
    r = row(state_table)
    assert r["state"] == InstanceState.UNHEALTHY
    assert reason in r["reason"]
    assert reason in res.stdout


def test_no_files_before_timeout_is_unhealthy_and_the_recorder_is_stopped(
    make_agent, state_table, tmp_path
) -> None:
    events = tmp_path / "events.jsonl"
    agent = make_agent("--no-files", "--events", str(events), table=state_table.table, start_timeout_s=0.5)
    res = agent.run("warmup")
    assert res.returncode == 1
    assert "did not appear within 0.5s" in row(state_table)["reason"]
    (started,) = [e for e in read_events(events) if e["event"] == "started"]
    assert not pid_alive(started["pid"])


def test_recorder_that_hangs_on_stop_is_killed_and_not_healthy(make_agent, state_table, tmp_path) -> None:
    events = tmp_path / "events.jsonl"
    agent = make_agent("--hang-on-stop", "--events", str(events), table=state_table.table, stop_grace_s=0.3)
    res = agent.run("warmup")
    assert res.returncode == 1
    r = row(state_table)
    assert r["state"] == InstanceState.UNHEALTHY
    assert "did not stop within 0.3s and was killed" in r["reason"]
    assert "not finalized" in r["reason"]
    names = [e["event"] for e in read_events(events)]
    assert "hanging" in names and "finalized" not in names
    assert not pid_alive(next(e["pid"] for e in read_events(events)))


def test_claimed_instance_keeps_its_claim_and_gets_the_health_facts(make_agent, state_table) -> None:
    state_table.create(instance_key(IID), InstanceState.CLAIMED, session_id="claim-1", pool="test-pool")
    state_table.create(state.session_key("claim-1"), SessionState.CLAIMED)
    agent = make_agent(table=state_table.table)
    assert agent.run("warmup").returncode == 0
    r = row(state_table)
    assert r["state"] == InstanceState.CLAIMED
    assert r["session_id"] == "claim-1"
    assert "healthy_at" in r


def test_after_a_session_the_old_claim_is_dropped(make_agent, state_table) -> None:
    state_table.create(
        instance_key(IID),
        InstanceState.IN_USE,
        session_id="old-claim",
        lease_owner="alice",
        lease_expires="2026-01-01T00:00:00.000Z",
        warm_at="2026-01-01T00:00:00.000Z",
    )
    agent = make_agent(table=state_table.table)
    assert agent.run("warmup").returncode == 0
    r = row(state_table)
    assert r["state"] == InstanceState.HEALTHY
    # Running now, so not claimable as "warm" (stopped) until the pool stops it.
    assert {"session_id", "lease_owner", "lease_expires", "warm_at"}.isdisjoint(r)


def test_retired_instance_is_not_warmed_up(make_agent, state_table) -> None:
    state_table.create(instance_key(IID), InstanceState.RETIRED)
    agent = make_agent(table=state_table.table)
    res = agent.run("warmup")
    assert res.returncode == 1
    assert "Retired" in res.stdout
    assert row(state_table)["state"] == InstanceState.RETIRED


def test_unreachable_state_table_fails_the_warmup(make_agent) -> None:
    agent = make_agent(table="no-such-table-anywhere")
    agent.config["aws"] = {"max_attempts": 1, "endpoint_url": "http://127.0.0.1:9"}
    agent.write()
    res = agent.run("warmup")
    assert res.returncode == 1
    assert "failed" in res.stderr


def test_warmup_without_state_table_reports_on_stdout(make_agent) -> None:
    agent = make_agent()
    res = agent.run("warmup", "--json")
    assert res.returncode == 0, res.stderr
    assert '"healthy": true' in res.stdout
