"""The instance side of a pool, simulated against the AWS emulator.

In moto no agent runs inside instances: nothing would ever run
``ocap-agent warmup`` and mark a launched instance Healthy. This fake does
exactly that part, through the same state table API the agent uses
(:class:`ocap_agent.state.StateTable`): for every instance of the pool that is
*running* in EC2 and Provisioning/WarmingUp in the table, it moves the row to
Healthy (Provisioning passes WarmingUp first, as the agent does), or to
Unhealthy when ``fail`` says this instance's warm-up fails.

Use ``step()`` for one pass, or ``running()`` to keep passing in a background
thread while a reconcile waits for its warm-ups.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ocap_agent import state
from ocap_agent.broker import rows

I = state.InstanceState  # noqa: E741


@dataclass
class InstanceSim:
    ec2: Any
    table: state.StateTable
    pool: str
    # Decides, per instance row, whether its warm-up fails (default: never).
    fail: Callable[[dict[str, Any]], bool] = lambda row: False
    healthy: list[str] = field(default_factory=list)
    unhealthy: list[str] = field(default_factory=list)

    def step(self) -> int:
        """One pass: warm up every running instance that waits for it. Returns how many."""
        waiting = {
            rows.instance_id_of(r): r
            for r in rows.pool_instances(self.table, self.pool, (I.PROVISIONING, I.WARMING_UP))
        }
        if not waiting:
            return 0
        running = set()
        for page in self.ec2.get_paginator("describe_instances").paginate(
            Filters=[
                {"Name": "tag:Pool", "Values": [self.pool]},
                {"Name": "instance-state-name", "Values": ["running"]},
            ]
        ):
            for r in page.get("Reservations", []):
                running.update(i["InstanceId"] for i in r.get("Instances", []))
        done = 0
        for instance_id, row in sorted(waiting.items()):
            if instance_id not in running:
                continue  # a stopped WarmingUp instance waits to be started by the pool
            key = state.instance_key(instance_id)
            try:
                if row["state"] == I.PROVISIONING.value:
                    self.table.transition(key, I.WARMING_UP, expect={I.PROVISIONING})
                if self.fail(row):
                    self.table.transition(
                        key, I.UNHEALTHY, expect={I.WARMING_UP}, reason="warm-up failed (simulated)"
                    )
                    self.unhealthy.append(instance_id)
                else:
                    self.table.transition(key, I.HEALTHY, expect={I.WARMING_UP}, warmed_up_at=state.now_iso())
                    self.healthy.append(instance_id)
                done += 1
            except state.TransitionConflict:
                continue  # the pool moved it on (timed out, retired): as a real agent would find
        return done

    @contextlib.contextmanager
    def running(self, interval: float = 0.2) -> Iterator[InstanceSim]:
        """Pass every INTERVAL seconds in a background thread until the block ends."""
        stop = threading.Event()
        errors: list[BaseException] = []

        def loop() -> None:
            while not stop.is_set():
                try:
                    self.step()
                except Exception as exc:  # surfaced to the test below, not swallowed
                    errors.append(exc)
                    return
                stop.wait(interval)

        thread = threading.Thread(target=loop, name=f"instance-sim-{self.pool}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join(timeout=30)
        if errors:
            raise errors[0]
