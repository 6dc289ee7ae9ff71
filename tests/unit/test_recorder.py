"""Recorder control without running a recorder: command line, finalization checks, log watch,
the CTRL_BREAK wrapper's target resolution, and the lock file."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ocap_agent import proc, recorder
from ocap_agent.config import RecorderConfig
from tests.fakes import fake_ocap


def fake_files(base: Path, *, finalize: bool, writes: int = 3) -> fake_ocap.Recorder:
    """The simulated recorder's writer, in process: the same bytes it writes when run."""
    args = argparse.Namespace(file_location=str(base), chunk_bytes=1000, events="")
    rec = fake_ocap.Recorder(args)
    rec.open_files()
    for _ in range(writes):
        rec.write_some()
    if finalize:
        rec.finalize()
    else:  # killed: whatever was written stays, nothing is closed properly
        rec.mcap.close()
        rec.mkv.close()
    return rec


def test_command_line_follows_ocaps_contract() -> None:
    cfg = RecorderConfig(
        command=["ocap"], fps=30, window_name="Minecraft", record_audio=False, extra_args=["--show-cursor"]
    )
    base = Path("/rec/s1_20260101T000000Z")
    assert recorder.build_argv(cfg, base) == [
        "ocap",
        str(base),
        "--fps",
        "30",
        "--window-name",
        "Minecraft",
        "--no-record-audio",
        "--show-cursor",
    ]
    assert recorder.build_argv(RecorderConfig(), base) == ["ocap", str(base), "--record-audio"]


def test_recorder_env_disables_ocaps_version_check() -> None:
    assert recorder.recorder_env(RecorderConfig())["OWA_DISABLE_VERSION_CHECK"] == "1"


def test_finalized_files_pass_both_checks(tmp_path: Path) -> None:
    base = tmp_path / "rec"
    fake_files(base, finalize=True)
    mcap, mkv = recorder.output_files(base)
    assert recorder.mcap_finalized(mcap) and recorder.mkv_finalized(mkv)
    assert recorder.finalized(base) and fake_ocap.is_finalized(base)


def test_killed_recorder_files_fail_both_checks(tmp_path: Path) -> None:
    base = tmp_path / "rec"
    fake_files(base, finalize=False)
    mcap, mkv = recorder.output_files(base)
    assert mcap.stat().st_size > 0 and mkv.stat().st_size > 0
    assert not recorder.mcap_finalized(mcap)
    assert not recorder.mkv_finalized(mkv)
    assert not fake_ocap.is_finalized(base)


def test_truncated_or_foreign_files_are_not_finalized(tmp_path: Path) -> None:
    base = tmp_path / "rec"
    fake_files(base, finalize=True)
    mcap, mkv = recorder.output_files(base)
    data = mkv.read_bytes()
    mkv.write_bytes(data[:-10])  # segment size says more than the file holds
    assert not recorder.mkv_finalized(mkv)
    mcap.write_bytes(mcap.read_bytes()[:-1])
    assert not recorder.mcap_finalized(mcap)
    other = tmp_path / "x.mkv"
    other.write_bytes(b"RIFF" + b"\0" * 100)
    assert not recorder.mkv_finalized(other)
    assert not recorder.mcap_finalized(tmp_path / "missing.mcap")
    assert not recorder.finalized(tmp_path / "missing")


def test_log_watch_finds_the_health_failure_across_reads(tmp_path: Path) -> None:
    log = tmp_path / "recorder.log"
    log.write_bytes(b"starting\nHEALTH CHE")
    watch = recorder.LogWatch(log)
    assert watch.poll() is False
    with open(log, "ab") as f:
        f.write(b"CK FAILED: no frames\n")
    assert watch.poll() is True


def test_log_watch_ignores_a_clean_log_and_a_missing_one(tmp_path: Path) -> None:
    log = tmp_path / "recorder.log"
    assert recorder.LogWatch(log).poll() is False
    log.write_text("recording...\nstopped\n")
    assert recorder.LogWatch(log).poll() is False


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["ocap", "out"], ("entry_point", "ocap", ["ocap", "out"])),
        ([r"C:\conda\envs\ocap-env\Scripts\ocap.exe", "out"], ("entry_point", "ocap", ["ocap", "out"])),
        (
            ["python", "tests/fakes/fake_ocap.py", "out"],
            ("script", "tests/fakes/fake_ocap.py", ["tests/fakes/fake_ocap.py", "out"]),
        ),
        (["python3.11", "-m", "ocap", "out"], ("module", "ocap", ["ocap", "out"])),
        (["fake_ocap.py", "out"], ("script", "fake_ocap.py", ["fake_ocap.py", "out"])),
    ],
)
def test_ctrl_break_wrapper_runs_the_recorder_in_its_own_interpreter(argv, expected) -> None:
    assert proc.resolve_target(argv) == expected


def test_wrapper_refuses_an_empty_command() -> None:
    with pytest.raises(ValueError, match="no recorder command"):
        proc.resolve_target([])


def test_lock_is_exclusive_and_times_out_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "session.lock"
    with (
        proc.exclusive_lock(path, 5),
        pytest.raises(proc.LockTimeout, match=r"session\.lock"),
        proc.exclusive_lock(path, 0.05),
    ):
        pass
    with proc.exclusive_lock(path, 0.05):  # released: free again
        pass
