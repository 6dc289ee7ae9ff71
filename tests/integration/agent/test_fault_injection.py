"""Reliability: sessions interrupted by injected faults; count the recordings lost (expected 0).

Each cycle starts a recording, lets it write, then ends it one of four ways:
a normal lock, the supervisor killed, supervisor and recorder killed together
(power loss), or the recorder crashing on its own. The next unlock, lock or
boot (``recover``) must pick up whatever was left. At the end every recording
that was ever started is on disk, unshortened, and queued exactly once.
"""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path

import pytest

from tests.integration.agent.conftest import Agent, pid_alive, wait_until

FAULTS = ("lock", "kill-supervisor", "power-loss", "recorder-crash")


def inject(agent: Agent, fault: str) -> None:
    current = agent.current()
    assert current is not None
    sup, rec = current["supervisor_pid"], current["recorder_pid"]
    if fault == "lock":
        assert agent.sessions("stop").returncode == 0
    elif fault == "kill-supervisor":
        os.kill(sup, signal.SIGKILL)
        wait_until(lambda: not pid_alive(sup), what="supervisor to die")
    elif fault == "power-loss":
        os.kill(sup, signal.SIGKILL)
        os.killpg(rec, signal.SIGKILL)
        wait_until(lambda: not pid_alive(sup) and not pid_alive(rec), what="both to die")
    elif fault == "recorder-crash":
        os.killpg(rec, signal.SIGKILL)
        wait_until(lambda: not pid_alive(sup), what="supervisor to finish the crashed session")


def run_cycles(agent: Agent, cycles: int, seed: int) -> None:
    rng = random.Random(seed)
    started: list[str] = []
    sizes: dict[Path, int] = {}
    for _ in range(cycles):
        res = agent.sessions("start")
        assert res.returncode == 0, res.stderr
        out = json.loads(res.stdout.strip().splitlines()[-1])
        assert out["status"] == "started", out
        started.append(out["session_id"])
        inject(agent, rng.choice(FAULTS))
        for d in agent.session_dirs():
            for p in d.iterdir():
                if p.suffix in (".mcap", ".mkv"):
                    sizes[p] = p.stat().st_size
    # The next boot: whatever no lock or unlock picked up is queued now.
    assert agent.run("recover").returncode == 0
    queued = [t["session_id"] for t in agent.tickets()]
    lost = set(started) - set(queued)
    assert lost == set(), f"{len(lost)} recording(s) lost: {sorted(lost)}"
    assert sorted(queued) == sorted(started), "every recording queued exactly once"
    for p, size in sizes.items():
        assert p.exists() and p.stat().st_size >= size, f"{p} was deleted or shortened"
    for d in agent.session_dirs():
        meta = agent.meta(d)
        assert meta["stopped_at"], d
        assert meta["graceful_stop"] or meta["needs_repair"] or meta["recovered"], meta
    assert agent.current() is None


def test_twelve_faulty_sessions_lose_nothing(make_agent) -> None:
    run_cycles(make_agent(), cycles=12, seed=4)


@pytest.mark.slow
def test_sixty_faulty_sessions_lose_nothing(make_agent) -> None:
    run_cycles(make_agent(), cycles=60, seed=60)
