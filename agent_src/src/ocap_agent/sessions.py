"""Recording sessions: ``session start`` on unlock, ``session stop`` on lock.

Task Scheduler runs each as a short-lived process, so the recorder is owned by
a detached *supervisor* (``python -m ocap_agent.sessions supervise DIR``) that outlives
``session start``, stops the recorder when asked and hands the finished session
to the upload spool.

Ordering without sleeps:

- Every start, stop, warm-up and recovery holds one OS lock file
  (``<data_dir>/session.lock``) for its whole run, so rapid lock/unlock
  sequences are serialized: ``start`` returns only once the recorder is really
  recording (or has failed), and a ``stop`` that comes in meanwhile waits for
  it, then stops exactly that recording.
- The active session is described by ``<data_dir>/current.json`` (session
  folder, supervisor's loopback port and token, recorder pid). The supervisor
  removes it only after the session is queued.
- ``stop`` talks to the supervisor over a loopback socket and waits for its
  answer, which comes after the recorder finalized and the session is queued.

If anything is killed, what is on disk is enough for ``recover``:
``session.json`` without ``stopped_at`` marks a recording that never ended.

The state table is told about it (session row Recording -> Uploading, instance
InUse) on a best-effort background thread: a slow or unreachable DynamoDB is
logged and never delays or loses a recording.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import logging
import os
import queue
import secrets
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocap_agent import __version__, identity, proc, recorder, session_meta, spool
from ocap_agent.config import Config, ConfigError
from ocap_agent.fsutil import read_json, write_json_atomic
from ocap_agent.session_meta import SessionMeta

log = logging.getLogger(__name__)

CURRENT = "current.json"
LOCK = "session.lock"
SUPERVISOR_LOG = "supervisor.log"
STATE_FLUSH_S = 30.0
# Beyond the recorder's own limits: time for Python start-up, spool and replies.
MARGIN_S = 60.0


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def lock_path(cfg: Config) -> Path:
    return Path(cfg.paths.data_dir) / LOCK


def current_path(cfg: Config) -> Path:
    return Path(cfg.paths.data_dir) / CURRENT


def lock_timeout(cfg: Config) -> float:
    """Long enough for whoever holds the lock to start or stop one recording."""
    return cfg.recorder.start_timeout_s + 2 * cfg.recorder.stop_grace_s + 2 * MARGIN_S


def recording_base(session_dir: Path) -> Path:
    """Where the recorder writes: <session_dir>/<folder name>.mcap/.mkv."""
    return session_dir / session_dir.name


def recording_files(session_dir: Path) -> list[Path]:
    return sorted(p for p in session_dir.iterdir() if p.suffix in (".mcap", ".mkv"))


@dataclass
class Outcome:
    """What a command did, for the terminal and for tests."""

    status: str  # started | already-recording | failed | stopped | no-session | recovered
    session_id: str = ""
    session_dir: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


# -- current.json ---------------------------------------------------------------


def read_current(cfg: Config) -> dict[str, Any] | None:
    try:
        data = read_json(current_path(cfg))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        # Written atomically, so this is damage, not a half-write: keep the
        # evidence beside it and let recovery scan the session folders.
        log.error("unreadable %s: %s", current_path(cfg), exc)
        with contextlib.suppress(OSError):
            os.replace(current_path(cfg), current_path(cfg).with_suffix(".damaged"))
        return None
    return data if isinstance(data, dict) else None


def ask_supervisor(current: dict[str, Any], command: str, timeout_s: float) -> dict[str, Any]:
    """Send COMMAND to the session's supervisor; raises OSError if it is not there."""
    with socket.create_connection(("127.0.0.1", int(current["port"])), timeout=5) as conn:
        conn.settimeout(timeout_s)
        conn.sendall(f"{current['token']} {command}\n".encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        raise ConnectionResetError("the supervisor closed the connection without an answer")
    answer = json.loads(data)
    if not isinstance(answer, dict):
        raise ConnectionResetError("the supervisor sent something unexpected")
    return answer


# -- start ----------------------------------------------------------------------


def _identity(cfg: Config) -> identity.Identity:
    # A recording must not depend on the metadata service: fall back to "".
    try:
        return identity.resolve(cfg.instance)
    except ConfigError as exc:
        log.warning("recording without an instance id: %s", exc)
        ic = cfg.instance
        return identity.Identity("", ic.user or _login(), ic.image_version or __version__, ic.pool)


def _login() -> str:

    try:
        return getpass.getuser()
    except Exception:  # no login name in some service contexts
        return ""


def _choose_session_id(cfg: Config, ident: identity.Identity) -> tuple[str, str]:
    """(session id, claim's session id): the broker's id for the claim's first recording."""
    new_id = uuid.uuid4().hex  # the broker's format: one kind of session id in the table
    if not ident.instance_id or not cfg.state.table:
        return new_id, ""
    from ocap_agent import state  # noqa: PLC0415 - boto3 only when a table is used

    try:
        table = state.open_table(cfg, quick=True)
        if table is None:
            return new_id, ""
        row = table.get(state.instance_key(ident.instance_id)) or {}
        claim = str(row.get("session_id") or "")
        if not claim:
            return new_id, ""
        try:
            table.transition(
                state.session_key(claim),
                state.SessionState.RECORDING,
                expect={state.SessionState.CLAIMED},
                instance_id=ident.instance_id,
                user=ident.user or None,
                started_at=state.now_iso(),
            )
            return claim, ""
        except state.TransitionConflict:
            # The claim's id already names an earlier recording (unlocked
            # again after a lock): this one gets its own id, linked to it.
            return new_id, claim
    except Exception as exc:
        log.warning("state table not reachable; recording anyway: %s", exc)
        return new_id, ""


def start(cfg: Config, config_path: str | None) -> Outcome:
    """Start a recording unless one is running; returns once it records or failed."""
    with proc.exclusive_lock(lock_path(cfg), lock_timeout(cfg)):
        current = read_current(cfg)
        if current is not None:
            try:
                answer = ask_supervisor(current, "ping", 10)
            except (OSError, ValueError):
                finish_stale(cfg, current)
            else:
                if answer.get("state") == "recording":
                    return Outcome(
                        "already-recording", str(current["session_id"]), str(current["session_dir"])
                    )
                # It is already finishing on its own (the recorder exited):
                # wait for that, then start afresh.
                with contextlib.suppress(OSError, ValueError):
                    ask_supervisor(current, "stop", cfg.recorder.stop_grace_s + MARGIN_S)
        return _start_locked(cfg, config_path)


def _start_locked(cfg: Config, config_path: str | None) -> Outcome:
    ident = _identity(cfg)
    session_id, claim = _choose_session_id(cfg, ident)
    started = utc_now()
    session_dir = cfg.paths.resolved("sessions_dir") / f"{session_id}_{started:%Y%m%dT%H%M%SZ}"
    session_dir.mkdir(parents=True, exist_ok=False)
    meta = SessionMeta(
        session_id=session_id,
        user=ident.user,
        instance_id=ident.instance_id,
        image_version=ident.image_version,
        started_at=iso(started),
        claim_session_id=claim,
    )
    session_meta.write(session_dir, meta)
    # Straight to this module, not through the CLI: the supervisor must not
    # pay for loading every command before the recorder starts.
    argv = [sys.executable, "-m", "ocap_agent.sessions", "supervise", str(session_dir)]
    if config_path:
        argv += ["--config", str(Path(config_path).resolve())]
    log_dir = cfg.paths.resolved("log_dir")
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / SUPERVISOR_LOG, "ab") as errlog:
        child = proc.spawn_detached(argv, env=os.environ, log=errlog)
    line = _read_handshake(child, cfg.recorder.start_timeout_s + MARGIN_S)
    if child.stdout is not None:
        child.stdout.close()
    if line.startswith("recording"):
        return Outcome("started", session_id, str(session_dir))
    return Outcome("failed", session_id, str(session_dir), line.removeprefix("failed ").strip())


def _read_handshake(child: subprocess.Popen[bytes], timeout_s: float) -> str:
    # One line on the supervisor's stdout; read on a thread so a wedged
    # supervisor costs a bounded wait, not a hang.
    box: list[bytes] = []
    assert child.stdout is not None
    reader = threading.Thread(target=lambda: box.append(child.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout_s)
    if not box:
        return f"failed the supervisor (pid {child.pid}) did not report within {timeout_s:g}s"
    text = box[0].decode(errors="replace").strip()
    return text or f"failed the supervisor exited with code {child.wait()} before the recorder was recording"


# -- stop -----------------------------------------------------------------------


def stop(cfg: Config, reason: str = "session stop") -> Outcome:
    """Stop the active recording (if any) and queue it; returns once it is queued."""
    with proc.exclusive_lock(lock_path(cfg), lock_timeout(cfg)):
        current = read_current(cfg)
        if current is None:
            return Outcome("no-session", detail="nothing was recording")
        try:
            answer = ask_supervisor(current, f"stop {reason}", cfg.recorder.stop_grace_s + 2 * MARGIN_S)
        except (OSError, ValueError):
            return finish_stale(cfg, current)
        return Outcome(
            "stopped", str(current["session_id"]), str(current["session_dir"]), str(answer.get("detail", ""))
        )


# -- the supervisor -------------------------------------------------------------


class StateReporter:
    """Best-effort state-table writes, in order, on a thread of their own."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.jobs: queue.Queue[Callable[[Any], None] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="state-reporter", daemon=True)
        self.thread.start()

    def post(self, job: Callable[[Any], None]) -> None:
        self.jobs.put(job)

    def close(self, timeout_s: float) -> None:
        self.jobs.put(None)
        self.thread.join(timeout_s)
        if self.thread.is_alive():
            log.warning("state table writes still pending after %.0fs; leaving them", timeout_s)

    def _drain(self) -> None:
        while self.jobs.get() is not None:
            pass

    def _run(self) -> None:
        table: Any = None
        if not self.cfg.state.table:
            self._drain()
            return
        try:
            from ocap_agent import state  # noqa: PLC0415 - boto3 only when a table is used

            table = state.open_table(self.cfg)
        except Exception as exc:
            log.warning("state table not available: %s", exc)
        while (job := self.jobs.get()) is not None:
            if table is None:
                continue
            try:
                job(table)
            except Exception as exc:  # logged, never fatal to a recording
                log.warning("state table write failed: %s", exc)


def _report_recording(meta: SessionMeta, pool: str) -> Callable[[Any], None]:
    def job(table: Any) -> None:
        from ocap_agent import state  # noqa: PLC0415 - boto3 only when a table is used

        # The broker's row exists already (moved to Recording by ``start``).
        with contextlib.suppress(state.TransitionConflict):
            table.create(
                state.session_key(meta.session_id),
                state.SessionState.RECORDING,
                instance_id=meta.instance_id or None,
                user=meta.user or None,
                pool=pool or None,
                claim_session_id=meta.claim_session_id or None,
                started_at=meta.started_at,
            )
        if meta.instance_id:
            with contextlib.suppress(state.TransitionConflict):  # no claim (or already InUse)
                table.transition(
                    state.instance_key(meta.instance_id),
                    state.InstanceState.IN_USE,
                    expect={state.InstanceState.CLAIMED},
                    in_use_since=meta.started_at,
                )

    return job


def report_finished(meta: SessionMeta, recorded: bool, reason: str = "") -> Callable[[Any], None]:
    def job(table: Any) -> None:
        from ocap_agent import state  # noqa: PLC0415 - boto3 only when a table is used

        to = state.SessionState.UPLOADING if recorded else state.SessionState.FAILED
        table.transition(
            state.session_key(meta.session_id),
            to,
            expect={state.SessionState.RECORDING},
            stopped_at=meta.stopped_at,
            graceful_stop=meta.graceful_stop,
            needs_repair=meta.needs_repair,
            reason=reason or None,
        )

    return job


class Supervisor:
    """Owns one recording from start to spool, in its own detached process."""

    def __init__(self, cfg: Config, session_dir: Path) -> None:
        self.cfg = cfg
        self.session_dir = session_dir
        meta = session_meta.read(session_dir)
        if meta is None:
            raise ConfigError(f"{session_dir} has no {session_meta.FILENAME}: not a session folder")
        self.meta = meta
        self.events: queue.Queue[tuple[str, socket.socket | None, str]] = queue.Queue()
        self.finishing = threading.Event()
        self.token = secrets.token_hex(16)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.reporter = StateReporter(cfg)
        self.rec: recorder.Recording | None = None

    def handshake(self, line: str) -> None:
        # The only output on stdout; then stdout goes away, because
        # ``session start`` (the reader) exits right after.
        with contextlib.suppress(OSError):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)

    def write_current(self) -> None:
        rec = self.rec
        write_json_atomic(
            current_path(self.cfg),
            {
                "session_id": self.meta.session_id,
                "session_dir": str(self.session_dir),
                "supervisor_pid": os.getpid(),
                "port": self.listener.getsockname()[1],
                "token": self.token,
                "recorder_pid": rec.pid if rec else None,
                "recorder_started": proc.start_time(rec.pid) if rec else None,
            },
        )

    def run(self) -> int:
        try:
            self.rec = recorder.start(
                self.cfg.recorder, recording_base(self.session_dir), self.session_dir / recorder.LOG_NAME
            )
        except recorder.RecorderFailed as exc:
            self.write_current()
            return self.finish(None, reason=str(exc), replies=[])
        self.write_current()
        try:
            self.rec.wait_until_recording(self.cfg.recorder.start_timeout_s, self.cfg.warmup.min_growth_bytes)
        except recorder.RecorderFailed as exc:
            return self.finish(None, reason=str(exc), replies=[])
        self.handshake(f"recording {self.meta.session_id}")
        self.reporter.post(_report_recording(self.meta, self.cfg.instance.pool))
        threading.Thread(target=self._watch_recorder, daemon=True).start()
        threading.Thread(target=self._serve, daemon=True).start()
        kind, conn, reason = self.events.get()
        self.finishing.set()
        if kind == "exited":
            reason = f"the recorder exited on its own with code {self.rec.process.returncode}"
        return self.finish(conn, reason=reason, replies=[], stopped_by_request=kind == "stop")

    def _watch_recorder(self) -> None:
        assert self.rec is not None
        self.rec.process.wait()
        self.events.put(("exited", None, ""))

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed: the session is over
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            data = b""
            while not data.endswith(b"\n") and len(data) < 4096:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            token, _, rest = data.decode(errors="replace").strip().partition(" ")
            if not secrets.compare_digest(token, self.token):
                conn.close()
                return
            command, _, arg = rest.partition(" ")
            if command == "ping":
                state = "finishing" if self.finishing.is_set() else "recording"
                self._reply(conn, {"state": state, "session_id": self.meta.session_id})
                conn.close()
            elif command == "stop":
                conn.settimeout(None)
                self.events.put(("stop", conn, arg or "session stop"))
            else:
                conn.close()
        except OSError:
            conn.close()

    @staticmethod
    def _reply(conn: socket.socket, answer: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            conn.sendall((json.dumps(answer) + "\n").encode())

    def finish(
        self,
        conn: socket.socket | None,
        *,
        reason: str,
        replies: list[socket.socket],
        stopped_by_request: bool = False,
    ) -> int:
        """Stop the recorder, write session.json, queue the session, tell whoever asked."""
        notes: list[str] = []
        outcome = self.rec.stop(self.cfg.recorder.stop_grace_s) if self.rec else None
        files = recording_files(self.session_dir)
        recorded = bool(files)
        meta = self.meta
        meta.stopped_at = iso(utc_now())
        if outcome is not None:
            meta.recorder_exit_code = outcome.exit_code
            meta.graceful_stop = stopped_by_request and outcome.graceful
            meta.needs_repair = recorded and not outcome.finalized
            if outcome.escalated:
                notes.append(
                    f"the recorder did not stop within {self.cfg.recorder.stop_grace_s:g}s and was killed"
                )
            if outcome.health_failed:
                notes.append("the recorder logged HEALTH CHECK FAILED")
        if not stopped_by_request and reason:
            notes.append(reason)
        if meta.needs_repair:
            notes.append("recording files were not finalized: they may need repair")
        meta.notes.extend(notes)
        session_meta.write(self.session_dir, meta)
        spool_dir = self.cfg.paths.resolved("spool_dir")
        ticket = spool.enqueue(spool_dir, self.session_dir, reason or "session stop")
        current_path(self.cfg).unlink(missing_ok=True)
        detail = "; ".join(notes) or "finalized and queued for upload"
        if not self.finishing.is_set():  # it never recorded: ``session start`` is waiting
            self.handshake(f"failed {reason}")
        self.finishing.set()
        self.listener.close()
        answer = {
            "state": "queued",
            "session_id": meta.session_id,
            "ticket": str(ticket.path),
            "graceful_stop": meta.graceful_stop,
            "needs_repair": meta.needs_repair,
            "detail": detail,
        }
        pending = [c for c in [conn, *replies] if c is not None]
        while True:  # stops that raced in while finishing get the same answer
            try:
                _, extra, _ = self.events.get_nowait()
            except queue.Empty:
                break
            if extra is not None:
                pending.append(extra)
        for c in pending:
            self._reply(c, answer)
            c.close()
        log.info(
            "session %s queued: %s",
            meta.session_id,
            detail,
            extra={"session_id": meta.session_id, "graceful_stop": meta.graceful_stop},
        )
        self.reporter.post(report_finished(meta, recorded, "" if recorded else reason))
        self.reporter.close(STATE_FLUSH_S)
        return 0 if recorded else 1


def supervise(cfg: Config, session_dir: Path) -> int:
    return Supervisor(cfg, session_dir).run()


# -- sessions whose supervisor is gone (also used by ``recover``) -----------------


def _stop_orphan(cfg: Config, current: dict[str, Any]) -> proc.StopResult | None:
    pid, started = current.get("recorder_pid"), current.get("recorder_started")
    if not isinstance(pid, int) or not isinstance(started, (int, float)):
        return None
    result = proc.stop_pid(pid, float(started), cfg.recorder.stop_grace_s)
    if result is not None:
        log.warning("stopped recorder pid %d left by a dead supervisor (escalated=%s)", pid, result.escalated)
    return result


def finish_stale(cfg: Config, current: dict[str, Any]) -> Outcome:
    """The session in CURRENT lost its supervisor: finish and queue it (caller holds the lock)."""
    stopped = _stop_orphan(cfg, current)
    session_dir = Path(str(current["session_dir"]))
    outcome = finish_dir(cfg, session_dir, stopped=stopped, reason="supervisor lost")
    current_path(cfg).unlink(missing_ok=True)
    return outcome


def finish_dir(
    cfg: Config, session_dir: Path, *, stopped: proc.StopResult | None = None, reason: str = "recover"
) -> Outcome:
    """Mark SESSION_DIR recovered (unless it was finished) and queue it."""
    meta = session_meta.read(session_dir)
    if meta is None:
        # Killed between creating the folder and writing session.json.
        meta = SessionMeta(session_id=session_dir.name.rsplit("_", 1)[0])
    files = recording_files(session_dir) if session_dir.is_dir() else []
    if not session_dir.is_dir():
        return Outcome("failed", meta.session_id, str(session_dir), "session folder is gone")
    if not meta.stopped_at:
        bases = {p.with_suffix("") for p in files}
        ok = bool(bases) and all(recorder.finalized(b) for b in bases)
        meta.stopped_at = iso(utc_now())
        meta.recovered = True
        meta.needs_repair = bool(files) and not ok
        meta.graceful_stop = stopped is not None and not stopped.escalated and ok
        meta.notes.append(f"recovered ({reason})")
        if meta.needs_repair:
            meta.notes.append("recording files were not finalized: they may need repair")
        session_meta.write(session_dir, meta)
        _report(cfg, meta, recorded=bool(files))
    spool.enqueue(cfg.paths.resolved("spool_dir"), session_dir, f"recover: {reason}")
    detail = "needs repair" if meta.needs_repair else "finalized"
    log.info("recovered session %s (%s)", meta.session_id, detail, extra={"session_id": meta.session_id})
    return Outcome("recovered", meta.session_id, str(session_dir), detail)


def _report(cfg: Config, meta: SessionMeta, *, recorded: bool) -> None:
    # Best effort and quick: recovery runs at boot, the spool is what matters.
    if not cfg.state.table:
        return
    try:
        from ocap_agent import state  # noqa: PLC0415 - boto3 only when a table is used

        table = state.open_table(cfg, quick=True)
        if table is not None:
            with contextlib.suppress(state.TransitionConflict):
                report_finished(meta, recorded, "" if recorded else "recorder never recorded")(table)
    except Exception as exc:
        log.warning("state table not updated for recovered session %s: %s", meta.session_id, exc)


def main(argv: list[str] | None = None) -> int:
    """``python -m ocap_agent.sessions start|stop|supervise [DIR] [--config PATH]``.

    The same functions as ``ocap-agent session ...``, without loading the
    other commands: the supervisor's entry point.
    """
    import argparse  # noqa: PLC0415 - only for this entry point

    from ocap_agent import config, log  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m ocap_agent.sessions")
    parser.add_argument("action", choices=("start", "stop", "supervise"))
    parser.add_argument("session_dir", nargs="?", type=Path)
    parser.add_argument("--config", default=None)
    args = parser.parse_args(argv)
    try:
        cfg = config.load(args.config)
    except ConfigError as exc:
        print(f"ocap-agent: config error: {exc}", file=sys.stderr)
        return 2
    log.setup(cfg.logging.level, cfg.logging.file or cfg.paths.resolved("log_dir") / "agent.jsonl")
    if args.action == "supervise":
        if args.session_dir is None:
            parser.error("supervise needs the session folder")
        return supervise(cfg, args.session_dir)
    try:
        outcome = start(cfg, args.config) if args.action == "start" else stop(cfg)
    except proc.LockTimeout as exc:
        outcome = Outcome("failed", detail=str(exc))
    print(json.dumps(outcome.to_dict(), sort_keys=True))
    return 1 if outcome.status == "failed" else 0


if __name__ == "__main__":
    raise SystemExit(main())
