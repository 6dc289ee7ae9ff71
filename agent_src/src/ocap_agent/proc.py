"""Everything that differs between Windows and POSIX, in one small module.

- Starting the recorder so that it can be stopped gracefully:
  POSIX: its own session/process group; stop = SIGINT to the group (Python
  turns it into KeyboardInterrupt, which is what makes OCAP finalize).
  Windows: its own process group, run through :func:`ctrl_break_wrapper_main`,
  which turns CTRL_BREAK into KeyboardInterrupt (a process group cannot be sent
  CTRL_C, only CTRL_BREAK, and Python's default CTRL_BREAK action is to die
  without finalizing).
- Escalation: SIGKILL to the group / TerminateProcess.
- Detached supervisor processes that outlive the short-lived command that
  started them (Task Scheduler runs ``session start`` and exits).
- An exclusive lock file that the OS releases when its holder dies, so a
  killed agent never leaves a stale lock.
- Process identity (pid + start time), so a recorded pid that the OS reused
  for another program after a crash is never signalled.
"""

from __future__ import annotations

import contextlib
import ctypes
import ntpath
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from ctypes import wintypes  # importable everywhere; used on Windows only
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import IO, Any

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

WINDOWS = sys.platform == "win32"
# Run by path, not ``-m``: the wrapper needs only the standard library, so it
# works under OCAP's own interpreter even where the agent is not installed.
WRAPPER_SCRIPT = Path(__file__).resolve()


class LockTimeout(TimeoutError):
    """The lock file stayed held by another process for longer than allowed."""


# -- the recorder's process -----------------------------------------------------


def recorder_argv(argv: Sequence[str], python: str = "") -> list[str]:
    """The argv that actually starts ARGV so that it can be stopped gracefully."""
    if sys.platform == "win32":
        return [python or sys.executable, str(WRAPPER_SCRIPT), *argv]
    return list(argv)


def spawn_recorder(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log: IO[bytes],
    cwd: Path | None = None,
    python: str = "",
) -> subprocess.Popen[bytes]:
    """Start the recorder in a process group of its own, output into LOG."""
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":
        kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
    else:
        # Own session: a Ctrl-C on the operator's terminal does not reach the
        # recorder, and the whole group can be signalled at once.
        kwargs["start_new_session"] = True
        _unignore_sigint()
    return subprocess.Popen(
        recorder_argv(argv, python),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(env),
        cwd=cwd,
        **kwargs,
    )


def _unignore_sigint() -> None:
    """Make sure the recorder does not inherit an ignored SIGINT.

    An ignored signal stays ignored across exec, and Python then never raises
    KeyboardInterrupt: the recorder could not finalize and every stop would
    end in a kill. Shells ignore SIGINT for background jobs, so an agent
    started from one would hand that on. Only the main thread may change it;
    the agent spawns recorders from there.
    """
    if (
        signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        and threading.current_thread() is threading.main_thread()
    ):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def interrupt(pid: int) -> None:
    """Ask the recorder (a process-group leader we started) to finalize and exit."""
    if sys.platform == "win32":
        _windows_ctrl_break(pid)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGINT)


def kill(pid: int) -> None:
    """Stop the recorder's whole group now: its files are left unfinalized."""
    if sys.platform == "win32":
        # /T: the wrapper's children too; taskkill is part of every Windows.
        subprocess.run(["taskkill", "/F", "/T", "/PID", str(pid)], capture_output=True, check=False)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _windows_ctrl_break(pid: int) -> None:  # pragma: no cover - Windows only
    if sys.platform != "win32":
        return
    kernel32: Any = ctypes.windll.kernel32
    # Same console (the supervisor's hidden one): signal the group directly.
    if kernel32.GenerateConsoleCtrlEvent(1, pid):  # 1 = CTRL_BREAK_EVENT
        return
    # A recorder left by a dead supervisor lives on another console: attach to
    # it, ignore the event ourselves while sending it, detach again.
    kernel32.FreeConsole()
    if kernel32.AttachConsole(pid):
        kernel32.SetConsoleCtrlHandler(None, True)
        try:
            kernel32.GenerateConsoleCtrlEvent(1, pid)
        finally:
            kernel32.FreeConsole()
            kernel32.SetConsoleCtrlHandler(None, False)


@dataclass(frozen=True)
class StopResult:
    exit_code: int | None  # None: it could not be stopped at all
    escalated: bool  # the grace period ran out and the recorder was killed


def stop(proc: subprocess.Popen[bytes], grace_s: float) -> StopResult:
    """Interrupt PROC, wait up to GRACE_S for it to finalize, then kill it."""
    if proc.poll() is not None:
        return StopResult(proc.returncode, escalated=False)
    interrupt(proc.pid)
    try:
        return StopResult(proc.wait(timeout=grace_s), escalated=False)
    except subprocess.TimeoutExpired:
        pass
    kill(proc.pid)
    try:
        return StopResult(proc.wait(timeout=30), escalated=True)
    except subprocess.TimeoutExpired:
        return StopResult(None, escalated=True)


def stop_pid(pid: int, started: float, grace_s: float) -> StopResult | None:
    """Stop a recorder that is not our child (left behind by a dead supervisor).

    Returns None when no process with this identity is running.
    """
    if not is_same_process(pid, started):
        return None
    interrupt(pid)
    if _wait_gone(pid, started, grace_s):
        return StopResult(None, escalated=False)
    kill(pid)
    _wait_gone(pid, started, 30)
    return StopResult(None, escalated=True)


def _wait_gone(pid: int, started: float, timeout: float) -> bool:
    # Not our child, so there is nothing to wait() on: short, growing polls.
    deadline = time.monotonic() + timeout
    delay = 0.005
    while is_same_process(pid, started):
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    return True


# -- process identity -----------------------------------------------------------


def start_time(pid: int) -> float | None:
    """An opaque, stable start time of PID (None if it is not running)."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return _windows_start_time(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0.0
        return 0.0  # no /proc (macOS): alive, start time unknown
    # Field 22 (starttime) comes after the parenthesised command name.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has finished its work
        return None
    return float(fields[19])


def is_same_process(pid: int, started: float) -> bool:
    now = start_time(pid)
    return now is not None and (now == started or 0.0 in (now, started))


def _windows_start_time(pid: int) -> float | None:  # pragma: no cover - Windows only
    if sys.platform != "win32":
        return None
    kernel32: Any = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return None
    try:
        code = wintypes.DWORD()
        if kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) and code.value != 259:  # STILL_ACTIVE
            return None
        times = [wintypes.FILETIME() for _ in range(4)]
        if not kernel32.GetProcessTimes(handle, *(ctypes.byref(t) for t in times)):
            return None
        return float((times[0].dwHighDateTime << 32) | times[0].dwLowDateTime)
    finally:
        kernel32.CloseHandle(handle)


# -- detached supervisor --------------------------------------------------------


def spawn_detached(argv: Sequence[str], *, env: Mapping[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start ARGV so that it outlives its caller; its stdout is a pipe for one handshake line."""
    kwargs: dict[str, Any] = {}
    if sys.platform == "win32":  # pragma: no cover - Windows only
        # A hidden console of its own (the recorder inherits it, so CTRL_BREAK
        # can reach it), a group of its own, and out of Task Scheduler's job
        # object so ending the task does not end the recording.
        kwargs["creationflags"] = (
            subprocess.CREATE_NO_WINDOW
            | subprocess.CREATE_NEW_PROCESS_GROUP
            | subprocess.CREATE_BREAKAWAY_FROM_JOB
        )
    else:
        kwargs["start_new_session"] = True
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=dict(env),
            close_fds=True,
            **kwargs,
        )
    except PermissionError:  # pragma: no cover - a job that forbids breakaway
        if sys.platform != "win32":
            raise
        kwargs["creationflags"] &= ~subprocess.CREATE_BREAKAWAY_FROM_JOB
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
            env=dict(env),
            close_fds=True,
            **kwargs,
        )


# -- lock file ------------------------------------------------------------------


@contextlib.contextmanager
def exclusive_lock(path: Path, timeout_s: float) -> Iterator[None]:
    """Hold an exclusive OS lock on PATH; the OS drops it if the holder dies.

    Blocks in the kernel (no sleep loop) on POSIX; raises LockTimeout after
    TIMEOUT_S so a wedged holder is reported instead of waited on forever.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _acquire(fd, path, timeout_s)
        try:
            yield
        finally:
            _release(fd)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, timeout_s: float) -> None:
    if sys.platform == "win32":  # pragma: no cover - Windows only
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # the C runtime retries for ~10 s itself
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"{path} is held by another agent process") from None
    else:

        def on_alarm(signum: int, frame: Any) -> None:
            raise LockTimeout(f"{path} is held by another agent process for more than {timeout_s:.0f}s")

        # A blocking flock interrupted by an interval timer: no polling. Only the
        # main thread may take signals; elsewhere fall back to blocking forever.
        if threading.current_thread() is not threading.main_thread():
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, max(timeout_s, 0.001))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


def _release(fd: int) -> None:
    if sys.platform == "win32":  # pragma: no cover - Windows only
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)


# -- the CTRL_BREAK wrapper -----------------------------------------------------


def _basename(path: str) -> str:
    # Either separator: a Windows path must resolve the same when tested on Linux.
    return ntpath.basename(path)


def resolve_target(argv: Sequence[str]) -> tuple[str, str, list[str]]:
    """How the wrapper runs ARGV in its own interpreter: ("script"|"module"|"entry_point", what, sys.argv)."""
    if not argv:
        raise ValueError("no recorder command given")
    first = argv[0]
    is_python = _basename(first).lower().startswith("python")
    if first.endswith(".py"):
        return "script", first, list(argv)
    if is_python and len(argv) >= 2 and argv[1].endswith(".py"):
        return "script", argv[1], list(argv[1:])
    if is_python and len(argv) >= 3 and argv[1] == "-m":
        return "module", argv[2], list(argv[2:])
    name = _basename(first)
    name = name[: -len(".exe")] if name.lower().endswith(".exe") else name
    return "entry_point", name, [name, *argv[1:]]


def ctrl_break_wrapper_main(argv: Sequence[str]) -> int:
    """Run the recorder in this interpreter with CTRL_BREAK raising KeyboardInterrupt."""
    kind, what, child_argv = resolve_target(argv)

    def on_break(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    brk = getattr(signal, "SIGBREAK", None)
    if brk is not None:
        signal.signal(brk, on_break)
    sys.argv = child_argv
    # Run by path, this file's folder is first on sys.path: drop it so the
    # agent's module names (config, log, state...) never shadow the recorder's.
    if sys.path and Path(sys.path[0] or ".").resolve() == WRAPPER_SCRIPT.parent:
        sys.path.pop(0)
    if kind == "script":
        sys.path.insert(0, str(Path(what).resolve().parent))  # as if run directly
        runpy.run_path(what, run_name="__main__")
        return 0
    if kind == "module":
        runpy.run_module(what, run_name="__main__", alter_sys=True)
        return 0
    found = entry_points(group="console_scripts", name=what)
    if not found:
        print(f"recorder command {what!r} is not installed in {sys.executable}", file=sys.stderr)
        return 127
    result = next(iter(found)).load()()
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(ctrl_break_wrapper_main(sys.argv[1:]))
