"""The warm-up health check: the recorder really records, stops cleanly, and says so.

Starts the recorder on a throw-away path, waits until both output files exist
and grow, stops it gracefully, checks that both files were finalized, deletes
them, and reports Healthy on the instance's row of the state table. Anything
else is Unhealthy with the reason: the recorder crashed, logged HEALTH CHECK
FAILED (even with exit code 0), produced no files in time, or had to be
killed because it would not stop. When a kiosk user is configured, an instance
whose kiosk user is still disabled (no password was ever set) is Unhealthy
too: a researcher could not sign in to it.

It takes the session lock for its whole run, so a warm-up and a recording can
never run two recorders at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocap_agent import identity, kiosk, proc, recorder, sessions, state
from ocap_agent.config import Config
from ocap_agent.state import InstanceState, TransitionConflict, instance_key

log = logging.getLogger(__name__)

RUN_PREFIX = "warmup-"
# Rows a warm-up may move to WarmingUp. Claimed is handled apart: a broker has
# promised this instance to a user, so a warm-up reports on it without
# taking the claim away.
WARM_FROM = frozenset(
    {InstanceState.PROVISIONING, InstanceState.HEALTHY, InstanceState.UNHEALTHY, InstanceState.IN_USE}
)


@dataclass
class WarmupResult:
    healthy: bool
    reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    escalated: bool = False
    state: str = ""  # the row's state as written, when there is a state table
    detected_at: float = 0.0  # wall clock (time.time()) when recording was confirmed

    def summary(self) -> str:
        t = ", ".join(f"{k}={v:.3f}s" for k, v in self.timings.items())
        verdict = "Healthy" if self.healthy else f"Unhealthy: {self.reason}"
        return f"{verdict} ({t})" if t else verdict


def scratch_root(cfg: Config) -> Path:
    return Path(cfg.warmup.scratch_dir) if cfg.warmup.scratch_dir else Path(cfg.paths.data_dir) / "warmup"


def check_recorder(cfg: Config, root: Path) -> WarmupResult:
    """Run the recorder once under ROOT and judge it; no AWS involved."""
    # A failed run's folder is kept for diagnosis until the next warm-up.
    if root.is_dir():
        for old in root.glob(f"{RUN_PREFIX}*"):
            shutil.rmtree(old, ignore_errors=True)
    run_dir = root / f"{RUN_PREFIX}{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%fZ}"
    t0 = time.monotonic()
    try:
        rec = recorder.start(cfg.recorder, run_dir / "warmup")
    except recorder.RecorderFailed as exc:
        return WarmupResult(False, str(exc), {"total_s": time.monotonic() - t0})
    timings: dict[str, float] = {}
    try:
        det = rec.wait_until_recording(cfg.recorder.start_timeout_s, cfg.warmup.min_growth_bytes)
    except recorder.RecorderFailed as exc:
        outcome = rec.stop(cfg.recorder.stop_grace_s)  # never leave it running
        timings["total_s"] = time.monotonic() - t0
        return WarmupResult(False, str(exc), timings, escalated=outcome.escalated)
    timings.update(first_file_s=det.first_file_s, recording_s=det.recording_s)
    detected_at = time.time()
    outcome = rec.stop(cfg.recorder.stop_grace_s)
    timings["stop_s"] = outcome.stop_s
    problems = []
    if outcome.escalated:
        problems.append(f"the recorder did not stop within {cfg.recorder.stop_grace_s:g}s and was killed")
    elif outcome.exit_code != 0:
        problems.append(f"the recorder exited with code {outcome.exit_code} when stopped")
    if outcome.health_failed:
        problems.append("the recorder logged HEALTH CHECK FAILED")
    if not outcome.finalized:
        problems.append("its files were not finalized")
    if not problems:
        shutil.rmtree(run_dir, ignore_errors=True)
    timings["total_s"] = time.monotonic() - t0
    return WarmupResult(
        not problems, "; ".join(problems), timings, escalated=outcome.escalated, detected_at=detected_at
    )


def run(cfg: Config, accounts: kiosk.Accounts | None = None) -> WarmupResult:
    """The whole health check: lock, state row, sign-in and recorder checks, verdict on the row."""
    ident = identity.resolve(cfg.instance)
    with proc.exclusive_lock(sessions.lock_path(cfg), sessions.lock_timeout(cfg)):
        table = state.open_table(cfg)
        pk = instance_key(ident.instance_id)
        common: dict[str, Any] = {
            "instance_id": ident.instance_id,
            "image_version": ident.image_version,
            "pool": ident.pool or None,
        }
        claimed = False
        if table is not None:
            try:
                claimed = _begin(table, pk, common)
            except _NotWarmable as exc:
                return WarmupResult(False, str(exc))
        problem = kiosk.sign_in_problem(cfg, accounts)
        result = WarmupResult(False, problem) if problem else check_recorder(cfg, scratch_root(cfg))
        log.info("warm-up %s", result.summary(), extra={"healthy": result.healthy, **result.timings})
        if table is not None:
            _finish(table, pk, common, result, claimed)
        return result


class _NotWarmable(Exception):
    pass


def _begin(table: state.StateTable, pk: str, common: dict[str, Any]) -> bool:
    """Move the row to WarmingUp (creating it if needed); True if it is Claimed and stays so."""
    try:
        table.transition(
            pk,
            InstanceState.WARMING_UP,
            expect=WARM_FROM,
            create_missing=True,
            # A finished session's id and lease must not be reused; ``warm_at``
            # (stopped and claimable) is no longer true of a running instance.
            remove=("session_id", "reason", "warm_at", "lease_owner", "lease_expires", "user"),
            warmup_started_at=state.now_iso(),
            **common,
        )
        return False
    except TransitionConflict:
        row = table.get(pk) or {}
    current = row.get("state")
    if current == InstanceState.WARMING_UP:
        return False  # a warm-up interrupted by a crash or reboot: take over
    if current == InstanceState.CLAIMED:
        return True
    raise _NotWarmable(f"{pk} is {current}: a warm-up does not change it")


def _finish(
    table: state.StateTable, pk: str, common: dict[str, Any], result: WarmupResult, claimed: bool
) -> None:
    facts = {
        **common,
        "warmup": {k: round(v, 4) for k, v in result.timings.items()},
        "warmup_finished_at": state.now_iso(),
    }
    try:
        if result.healthy and claimed:
            state.set_attrs(
                table, pk, {InstanceState.CLAIMED}, healthy_at=facts["warmup_finished_at"], **facts
            )
            result.state = InstanceState.CLAIMED.value
        elif result.healthy:
            table.transition(
                pk,
                InstanceState.HEALTHY,
                expect={InstanceState.WARMING_UP},
                remove=("reason",),
                healthy_at=facts["warmup_finished_at"],
                **facts,
            )
            result.state = InstanceState.HEALTHY.value
        else:
            table.transition(
                pk,
                InstanceState.UNHEALTHY,
                expect={InstanceState.WARMING_UP, InstanceState.CLAIMED},
                reason=result.reason,
                **facts,
            )
            result.state = InstanceState.UNHEALTHY.value
    except TransitionConflict as exc:
        result.healthy = False
        result.reason = f"{result.reason + '; ' if result.reason else ''}state not recorded: {exc}"
        with contextlib.suppress(Exception):
            result.state = str((table.get(pk) or {}).get("state", ""))
