"""Recorder control on a real process: detection, graceful stop, escalation, the wrapper.

Windows gap: CTRL_BREAK and GenerateConsoleCtrlEvent cannot run on Linux. What
is tested here is the POSIX path (SIGINT to the group, SIGKILL) and that the
wrapper runs the recorder inside its own interpreter, where KeyboardInterrupt
reaches it; the wrapper's SIGBREAK handler is the one line not exercised.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ocap_agent import proc, recorder
from ocap_agent.config import RecorderConfig
from tests.fakes.fake_ocap import is_finalized
from tests.integration.agent.conftest import FAKE, QUICK, fake_command, pid_alive, read_events


def test_detects_recording_soon_after_the_files_appear_and_stops_gracefully(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    cfg = RecorderConfig(command=fake_command("--events", str(events)))
    rec = recorder.start(cfg, tmp_path / "s" / "rec")
    det = rec.wait_until_recording(timeout_s=20)
    assert 0 < det.first_file_s <= det.recording_s
    _, size, both = rec.size()
    assert both and size > 0
    outcome = rec.stop(grace_s=10)
    assert outcome.graceful and outcome.exit_code == 0 and not outcome.escalated
    assert is_finalized(tmp_path / "s" / "rec")
    assert [e["event"] for e in read_events(events)] == ["started", "files", "finalized"]


def test_files_that_exist_but_never_grow_are_not_recording(tmp_path: Path) -> None:
    # Empty placeholders from an earlier run must not count as a live recording.
    base = tmp_path / "rec"
    for p in recorder.output_files(base):
        p.write_bytes(b"x")
    cfg = RecorderConfig(command=[sys.executable, "-c", "import time; time.sleep(60)"], start_timeout_s=1)
    rec = recorder.start(cfg, base)
    with pytest.raises(recorder.RecorderFailed, match=r"did not grow within 0\.3s"):
        rec.wait_until_recording(timeout_s=0.3)
    assert rec.stop(grace_s=5).exit_code is not None
    assert not pid_alive(rec.pid)


def test_stop_escalates_to_a_kill_after_the_grace_period(tmp_path: Path) -> None:
    cfg = RecorderConfig(command=fake_command("--hang-on-stop"))
    rec = recorder.start(cfg, tmp_path / "rec")
    rec.wait_until_recording(timeout_s=20)
    outcome = rec.stop(grace_s=0.2)
    assert outcome.escalated and not outcome.finalized and not outcome.graceful
    assert not pid_alive(rec.pid)


def test_missing_recorder_binary_is_a_clear_failure(tmp_path: Path) -> None:
    cfg = RecorderConfig(command=[str(tmp_path / "no-such-ocap")])
    with pytest.raises(recorder.RecorderFailed, match="cannot start the recorder"):
        recorder.start(cfg, tmp_path / "rec")


def test_wrapper_runs_the_recorder_in_process_so_an_interrupt_finalizes_it(tmp_path: Path) -> None:
    base = tmp_path / "rec"
    argv = [sys.executable, str(proc.WRAPPER_SCRIPT), sys.executable, str(FAKE), *QUICK, str(base)]
    with open(tmp_path / "log", "ab") as log:
        child = proc.spawn_recorder(argv, env=recorder.recorder_env(RecorderConfig()), log=log)
    rec = recorder.Recording(base, tmp_path / "log", child)
    rec.wait_until_recording(timeout_s=20)
    outcome = rec.stop(grace_s=10)
    assert outcome.graceful, (tmp_path / "log").read_text()
    assert is_finalized(base)


def test_wrapper_names_a_recorder_that_is_not_installed(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, str(proc.WRAPPER_SCRIPT), "no-such-recorder-entry-point", "out"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 127
    assert "'no-such-recorder-entry-point' is not installed" in res.stderr


def test_orphaned_recorder_is_found_by_pid_and_start_time_and_stopped(tmp_path: Path) -> None:
    cfg = RecorderConfig(command=fake_command())
    rec = recorder.start(cfg, tmp_path / "rec")
    rec.wait_until_recording(timeout_s=20)
    started = proc.start_time(rec.pid)
    assert started is not None
    # A different start time means the pid was reused by another program: hands off.
    assert proc.stop_pid(rec.pid, started + 1, grace_s=1) is None
    assert pid_alive(rec.pid)
    result = proc.stop_pid(rec.pid, started, grace_s=10)
    rec.process.wait(timeout=10)
    assert result is not None and not result.escalated
    assert is_finalized(tmp_path / "rec")


def test_an_agent_started_with_sigint_ignored_still_stops_the_recorder_gracefully(make_agent) -> None:
    # Shells start background jobs with SIGINT ignored, and exec keeps it so:
    # the recorder must still get its KeyboardInterrupt.
    import signal

    agent = make_agent()
    res = subprocess.run(
        [sys.executable, "-m", "ocap_agent.sessions", "start", "--config", str(agent.config_path)],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert res.returncode == 0, res.stderr
    res = subprocess.run(
        [sys.executable, "-m", "ocap_agent.sessions", "stop", "--config", str(agent.config_path)],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert res.returncode == 0, res.stderr
    (session_dir,) = agent.session_dirs()
    assert agent.meta(session_dir)["graceful_stop"] is True
    assert is_finalized(session_dir / session_dir.name)
