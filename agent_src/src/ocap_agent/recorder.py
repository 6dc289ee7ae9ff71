"""Start, detect and stop the recorder (OCAP, or the simulated one in tests).

OCAP runs as ``ocap FILE_LOCATION [options]`` and writes FILE_LOCATION.mcap
and FILE_LOCATION.mkv. "Really recording" means both files exist and have
grown since they were first seen; it is detected by short adaptive polling
(a few milliseconds at first, never more than 20 ms apart), not by sleeping a
fixed second. A stop is graceful (KeyboardInterrupt, see :mod:`ocap_agent.proc`)
and escalates to a kill after the grace period; the files are then checked for
their finalization marks: the MCAP footer + closing magic, and a Matroska
Segment whose size was written (it stays "unknown" until the muxer finishes
and writes its index).
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ocap_agent import proc
from ocap_agent.config import RecorderConfig

HEALTH_FAILED_MARKER = b"HEALTH CHECK FAILED"
MCAP_MAGIC = b"\x89MCAP0\r\n"
MCAP_FOOTER_LEN = 1 + 8 + 20  # opcode, record length, body
EBML_ID = 0x1A45DFA3
SEGMENT_ID = 0x18538067
LOG_NAME = "recorder.log"


class RecorderFailed(RuntimeError):
    """The recorder did not start recording; the message says why."""


def build_argv(cfg: RecorderConfig, base: Path) -> list[str]:
    """OCAP's command line for recording to BASE(.mcap/.mkv), options from the config."""
    argv = [*cfg.command, str(base)]
    if cfg.fps:
        argv += ["--fps", str(cfg.fps)]
    if cfg.window_name:
        argv += ["--window-name", cfg.window_name]
    argv.append("--record-audio" if cfg.record_audio else "--no-record-audio")
    return argv + list(cfg.extra_args)


def recorder_env(cfg: RecorderConfig) -> dict[str, str]:
    env = dict(os.environ)
    env.update(cfg.env)
    return env


def output_files(base: Path) -> tuple[Path, Path]:
    return base.with_name(base.name + ".mcap"), base.with_name(base.name + ".mkv")


# -- finalization checks --------------------------------------------------------


def mcap_finalized(path: Path) -> bool:
    """MCAP: starts with the magic and ends with Footer record + magic."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(MCAP_MAGIC))
            size = f.seek(0, os.SEEK_END)
            if size < 2 * len(MCAP_MAGIC) + MCAP_FOOTER_LEN:
                return False
            f.seek(-(MCAP_FOOTER_LEN + len(MCAP_MAGIC)), os.SEEK_END)
            tail = f.read()
    except OSError:
        return False
    footer_len = int.from_bytes(tail[1:9], "little")
    return head == MCAP_MAGIC and tail[-8:] == MCAP_MAGIC and tail[0] == 0x02 and footer_len == 20


def _read_vint(data: bytes, at: int, *, keep_marker: bool) -> tuple[int, int, bool]:
    """An EBML variable-length integer at AT: (value, length, all-ones)."""
    first = data[at]
    length = 8 - first.bit_length() + 1 if first else 9
    if length > 8 or at + length > len(data):
        raise ValueError("bad EBML vint")
    value = int.from_bytes(data[at : at + length], "big")
    if keep_marker:
        return value, length, False
    value &= (1 << (7 * length)) - 1
    return value, length, value == (1 << (7 * length)) - 1


def mkv_finalized(path: Path) -> bool:
    """Matroska: the Segment's size is known and the file holds all of it."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
            file_size = f.seek(0, os.SEEK_END)
        ebml_id, n, _ = _read_vint(head, 0, keep_marker=True)
        if ebml_id != EBML_ID:
            return False
        size, m, _ = _read_vint(head, n, keep_marker=False)
        at = n + m + size
        seg_id, n, _ = _read_vint(head, at, keep_marker=True)
        if seg_id != SEGMENT_ID:
            return False
        seg_size, m, unknown = _read_vint(head, at + n, keep_marker=False)
    except (OSError, ValueError, IndexError):
        return False
    return not unknown and file_size >= at + n + m + seg_size


def finalized(base: Path) -> bool:
    mcap, mkv = output_files(base)
    return mcap_finalized(mcap) and mkv_finalized(mkv)


# -- a running recorder ---------------------------------------------------------


@dataclass
class LogWatch:
    """Reads the recorder's log incrementally, looking for OCAP's health-check failure line."""

    path: Path
    offset: int = 0
    tail: bytes = b""
    health_failed: bool = False

    def poll(self) -> bool:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                new = f.read()
        except OSError:
            return self.health_failed
        if new:
            self.offset += len(new)
            window = self.tail + new
            if HEALTH_FAILED_MARKER in window:
                self.health_failed = True
            self.tail = window[-len(HEALTH_FAILED_MARKER) :]
        return self.health_failed


@dataclass
class Detection:
    first_file_s: float  # from spawn to the first output file seen
    recording_s: float  # from spawn to both files seen growing


@dataclass
class StopOutcome:
    exit_code: int | None
    escalated: bool
    finalized: bool
    health_failed: bool
    stop_s: float

    @property
    def graceful(self) -> bool:
        return not self.escalated and self.finalized and self.exit_code == 0


@dataclass
class Recording:
    """One run of the recorder into BASE(.mcap/.mkv), its output in LOG_PATH."""

    base: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    watch: LogWatch = field(init=False)

    def __post_init__(self) -> None:
        self.watch = LogWatch(self.log_path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def size(self) -> tuple[bool, int, bool]:
        """(any file exists, total bytes, both files exist)."""
        total, seen = 0, 0
        for p in output_files(self.base):
            try:
                total += p.stat().st_size
                seen += 1
            except FileNotFoundError:
                pass
        return seen > 0, total, seen == 2

    def wait_until_recording(self, timeout_s: float, min_growth_bytes: int = 1) -> Detection:
        """Return once both files exist and grow; raise RecorderFailed otherwise."""
        deadline = self.started + timeout_s
        delay = 0.002
        first_seen: float | None = None
        baseline: int | None = None
        while True:
            any_file, total, both = self.size()
            now = time.monotonic()
            if any_file and first_seen is None:
                first_seen = now
            if both:
                if baseline is None:
                    baseline = total
                elif total - baseline >= min_growth_bytes:
                    return Detection(first_seen - self.started if first_seen else 0.0, now - self.started)
            if self.watch.poll():
                raise RecorderFailed("the recorder logged HEALTH CHECK FAILED")
            code = self.process.poll()
            if code is not None:
                self.watch.poll()
                detail = "; it logged HEALTH CHECK FAILED" if self.watch.health_failed else ""
                raise RecorderFailed(f"the recorder exited with code {code} before it was recording{detail}")
            if now > deadline:
                what = "did not grow" if both else "did not appear"
                raise RecorderFailed(f"recording files {what} within {timeout_s:g}s")
            # Short and growing, capped low once the files exist so that the
            # growth is seen within milliseconds of happening.
            time.sleep(delay)
            delay = min(delay * 1.5, 0.005 if any_file else 0.02)

    def stop(self, grace_s: float) -> StopOutcome:
        t0 = time.monotonic()
        result = proc.stop(self.process, grace_s)
        self.watch.poll()
        return StopOutcome(
            exit_code=result.exit_code,
            escalated=result.escalated,
            finalized=finalized(self.base),
            health_failed=self.watch.health_failed,
            stop_s=time.monotonic() - t0,
        )


def start(cfg: RecorderConfig, base: Path, log_path: Path | None = None) -> Recording:
    """Start the recorder writing to BASE(.mcap/.mkv); its output goes to LOG_PATH."""
    base.parent.mkdir(parents=True, exist_ok=True)
    log_path = log_path or base.parent / LOG_NAME
    argv = build_argv(cfg, base)
    with open(log_path, "ab") as log:
        try:
            process = proc.spawn_recorder(argv, env=recorder_env(cfg), log=log, python=cfg.wrapper_python)
        except OSError as exc:
            raise RecorderFailed(f"cannot start the recorder {argv[0]!r}: {exc.strerror or exc}") from None
    return Recording(base, log_path, process)
