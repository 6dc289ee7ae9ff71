"""``ocap-agent session start|stop`` and ``recover``: every recording ends up queued, none overlap.

Driven through the real CLI as Task Scheduler would: short-lived processes,
a detached supervisor owning the recorder, the simulated recorder writing.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from ocap_agent.state import InstanceState, SessionState, instance_key, session_key
from tests.fakes.fake_ocap import is_finalized
from tests.integration.agent.conftest import Agent, pid_alive, read_events, wait_until

IID = "i-0aaaaaaaaaaaaaaa1"


def outcome(res: Any) -> dict[str, Any]:
    assert res.stdout.strip(), res.stderr
    data: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return data


def recording_base(session_dir: Path) -> Path:
    return session_dir / session_dir.name


def start(agent: Agent, *, cli: bool = False) -> dict[str, Any]:
    res = agent.run_process("session", "start") if cli else agent.sessions("start")
    assert res.returncode == 0, res.stderr
    return outcome(res)


def stop(agent: Agent, *, cli: bool = False) -> dict[str, Any]:
    res = agent.run_process("session", "stop") if cli else agent.sessions("stop")
    assert res.returncode == 0, res.stderr
    return outcome(res)


def wait_supervisor_gone(pid: int) -> None:
    wait_until(lambda: not pid_alive(pid), what=f"supervisor {pid} to exit")


def test_unlock_then_lock_records_one_finalized_session_and_queues_it(make_agent) -> None:
    agent = make_agent()
    started = start(agent, cli=True)
    assert started["status"] == "started"
    session_dir = Path(started["session_dir"])
    assert session_dir.parent == agent.sessions_dir
    assert session_dir.name.startswith(started["session_id"] + "_")
    assert session_dir.name.endswith("Z")
    stopped = stop(agent, cli=True)
    assert stopped["status"] == "stopped"
    assert is_finalized(recording_base(session_dir))
    meta = agent.meta(session_dir)
    assert meta["graceful_stop"] is True and meta["needs_repair"] is False
    assert meta["started_at"] < meta["stopped_at"]
    assert meta["instance_id"] == IID and meta["image_version"]
    assert [t["session_id"] for t in agent.tickets()] == [started["session_id"]]
    assert agent.current() is None


def test_unlock_twice_keeps_one_recording_and_lock_without_session_is_harmless(make_agent) -> None:
    agent = make_agent()
    assert stop(agent)["status"] == "no-session"
    first = start(agent)
    again = start(agent)
    assert again["status"] == "already-recording"
    assert again["session_id"] == first["session_id"]
    stop(agent)
    assert len(agent.session_dirs()) == 1
    assert len(agent.tickets()) == 1


@pytest.mark.parametrize(
    ("toggles", "via_cli"),
    [(50, False), (3, True)],
    ids=["50-toggles", "3-toggles-through-ocap-agent"],
)
def test_rapid_lock_unlock_toggles_never_overlap_and_lose_nothing(
    make_agent, tmp_path, toggles, via_cli
) -> None:
    """Unlock/lock pairs fired back to back, as Task Scheduler does: the processes overlap."""
    events = tmp_path / "events.jsonl"
    agent = make_agent("--events", str(events), "--exclusive", str(tmp_path / "recording.marker"))
    procs = []
    for _ in range(toggles):
        for action in ("start", "stop"):
            procs.append(agent.popen("session", action) if via_cli else agent.popen_sessions(action))
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    final = stop(agent)  # a start that won the lock last is still recording
    started = [r["session_id"] for r in results if r["status"] == "started"]
    stopped = [r["session_id"] for r in [*results, final] if r["status"] == "stopped"]
    assert started, "no start ever won the lock"
    assert sorted(started) == sorted(stopped), "every started recording was stopped exactly once"
    # Every session is on disk, finalized, and queued exactly once.
    dirs = agent.session_dirs()
    assert sorted(agent.meta(d)["session_id"] for d in dirs) == sorted(started)
    assert sorted(t["session_id"] for t in agent.tickets()) == sorted(started)
    for d in dirs:
        assert is_finalized(recording_base(d)), d
        assert agent.meta(d)["graceful_stop"] is True
    # The recorder ran once per session and never twice at a time.
    log = read_events(events)
    assert [e for e in log if e["event"] == "overlap"] == []
    assert len([e for e in log if e["event"] == "started"]) == len(started)
    assert len([e for e in log if e["event"] == "finalized"]) == len(started)
    assert agent.current() is None


def test_agent_killed_mid_session_then_recover_keeps_and_queues_the_recording(make_agent) -> None:
    agent = make_agent()
    started = start(agent)
    session_dir = Path(started["session_dir"])
    current = agent.current()
    assert current is not None
    # Power loss in miniature: supervisor and recorder die at once, no finalization.
    os.kill(current["supervisor_pid"], signal.SIGKILL)
    os.killpg(current["recorder_pid"], signal.SIGKILL)
    wait_until(lambda: not pid_alive(current["recorder_pid"]), what="recorder to die")
    sizes = {p.name: p.stat().st_size for p in session_dir.iterdir() if p.suffix in (".mcap", ".mkv")}
    assert len(sizes) == 2 and all(sizes.values())
    res = agent.run("recover")
    assert res.returncode == 0, res.stderr
    assert "recovered 1 session(s)" in res.stdout
    meta = agent.meta(session_dir)
    assert meta["recovered"] is True and meta["needs_repair"] is True and meta["graceful_stop"] is False
    assert meta["stopped_at"]
    # Nothing was deleted or truncated, and it is queued once.
    assert {p.name: p.stat().st_size for p in session_dir.iterdir() if p.suffix in (".mcap", ".mkv")} == sizes
    assert not is_finalized(recording_base(session_dir))
    assert [t["session_id"] for t in agent.tickets()] == [started["session_id"]]
    # Running it again (next boot) changes nothing; the next unlock records normally.
    assert "recovered 0 session(s)" in agent.run("recover").stdout
    assert len(agent.tickets()) == 1
    assert start(agent)["status"] == "started"
    stop(agent)
    assert len(agent.tickets()) == 2


def test_supervisor_killed_then_lock_stops_the_orphaned_recorder_gracefully(make_agent) -> None:
    agent = make_agent()
    started = start(agent)
    current = agent.current()
    assert current is not None
    os.kill(current["supervisor_pid"], signal.SIGKILL)
    wait_supervisor_gone(current["supervisor_pid"])
    res = stop(agent)  # the lock event still comes: it finds no supervisor
    assert res["status"] == "recovered"
    session_dir = Path(started["session_dir"])
    assert is_finalized(recording_base(session_dir))
    meta = agent.meta(session_dir)
    assert meta["recovered"] is True and meta["needs_repair"] is False
    assert not pid_alive(current["recorder_pid"])
    assert len(agent.tickets()) == 1


def test_recover_leaves_a_live_session_alone(make_agent) -> None:
    agent = make_agent()
    started = start(agent)
    res = agent.run("recover")
    assert "recovered 0 session(s)" in res.stdout
    assert agent.tickets() == []
    assert stop(agent)["session_id"] == started["session_id"]


def test_recorder_crash_mid_session_is_queued_with_the_reason(make_agent) -> None:
    agent = make_agent()
    started = start(agent)
    current = agent.current()
    assert current is not None
    os.killpg(current["recorder_pid"], signal.SIGKILL)  # the recorder dies on its own
    wait_supervisor_gone(current["supervisor_pid"])
    meta = agent.meta(Path(started["session_dir"]))
    assert meta["needs_repair"] is True and meta["graceful_stop"] is False
    assert any("exited on its own" in n for n in meta["notes"])
    assert len(agent.tickets()) == 1
    assert stop(agent)["status"] == "no-session"


def test_recorder_that_cannot_start_fails_the_start_but_keeps_its_log(make_agent) -> None:
    agent = make_agent("--fail", "crash-before-files")
    res = agent.sessions("start")
    assert res.returncode == 1
    out = outcome(res)
    assert out["status"] == "failed" and "exited with code 3" in out["detail"]
    session_dir = Path(out["session_dir"])
    assert (session_dir / "recorder.log").read_text().count("crashing") == 1
    assert len(agent.tickets()) == 1  # accounted for: the log goes up with it
    assert agent.current() is None


def test_recorder_that_hangs_on_stop_is_killed_and_marked_for_repair(make_agent) -> None:
    agent = make_agent("--hang-on-stop", stop_grace_s=0.3)
    started = start(agent)
    res = stop(agent)
    assert "did not stop within 0.3s" in res["detail"]
    meta = agent.meta(Path(started["session_dir"]))
    assert meta["needs_repair"] is True and meta["graceful_stop"] is False
    assert len(agent.tickets()) == 1


def test_rows_follow_the_session_and_the_brokers_session_id_is_used(make_agent, state_table) -> None:
    t = state_table
    t.create(instance_key(IID), InstanceState.CLAIMED, session_id="claim-42", pool="test-pool")
    t.create(session_key("claim-42"), SessionState.CLAIMED, instance_id=IID, pool="test-pool")
    agent = make_agent(table=t.table)
    first = start(agent)
    assert first["session_id"] == "claim-42"
    sup = agent.current()["supervisor_pid"]  # type: ignore[index]
    stop(agent)
    wait_supervisor_gone(sup)
    row = t.get(session_key("claim-42"))
    assert row is not None and row["state"] == SessionState.UPLOADING
    assert row["graceful_stop"] is True and row["stopped_at"].endswith("Z")
    assert t.get(instance_key(IID))["state"] == InstanceState.IN_USE  # type: ignore[index]
    # The user unlocks again: a new recording with its own id, linked to the claim.
    second = start(agent)
    assert second["session_id"] != "claim-42"
    sup = agent.current()["supervisor_pid"]  # type: ignore[index]
    stop(agent)
    wait_supervisor_gone(sup)
    row2 = t.get(session_key(second["session_id"]))
    assert row2 is not None and row2["state"] == SessionState.UPLOADING
    assert row2["claim_session_id"] == "claim-42" and row2["pool"] == "test-pool"
    assert agent.meta(Path(second["session_dir"]))["claim_session_id"] == "claim-42"
    assert len(agent.tickets()) == 2


def test_unreachable_state_table_never_blocks_or_loses_a_recording(make_agent) -> None:
    agent = make_agent(table="unreachable-table")
    agent.config["aws"] = {"endpoint_url": "http://127.0.0.1:9", "max_attempts": 2}
    agent.write()
    started = start(agent)
    assert started["status"] == "started"
    stop(agent)
    assert is_finalized(recording_base(Path(started["session_dir"])))
    assert len(agent.tickets()) == 1


@pytest.mark.parametrize("missing", ["session_json", "nothing"])
def test_recover_handles_a_folder_killed_before_its_metadata(make_agent, missing) -> None:
    agent = make_agent()
    d = agent.sessions_dir / "ses-0000deadbeef_20260101T000000Z"
    d.mkdir(parents=True)
    if missing == "session_json":
        (d / f"{d.name}.mkv").write_bytes(b"\x1a\x45\xdf\xa3partial")
    res = agent.run("recover")
    assert res.returncode == 0, res.stderr
    if missing == "nothing":
        assert agent.tickets() == []  # an empty folder holds nothing to upload; it is left as is
        assert d.is_dir()
    else:
        meta = agent.meta(d)
        assert meta["session_id"] == "ses-0000deadbeef" and meta["needs_repair"] is True
        assert [t["session_id"] for t in agent.tickets()] == ["ses-0000deadbeef"]
