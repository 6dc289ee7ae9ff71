"""``make demo``: the main job rehearsed end to end on local servers.

Starts the rehearsal stack (moto in server mode, a persistent S3 server), runs
each step of the flow in order against it, prints what each step did, and
stops everything it started, also on failure.

Each step lives in tools/demo_steps/<name>.py and exposes
``run(ctx: DemoContext) -> list[str]``: it does its part through the project's
real entry points (ansible-playbook, ocap-agent, ocap-broker), may leave
results in ``ctx.facts`` for later steps, and returns summary lines.

    python tools/demo.py              # the whole flow
    python tools/demo.py --only NAME  # one step (with the steps it needs before it)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import stack  # noqa: E402

# The flow, in order. Each name is a module in tools/demo_steps/.
STEPS: tuple[str, ...] = (
    "bootstrap",  # bucket, state table, IAM, security group
    "build_plan",  # what `packer build` would run
    "release",  # stand-in image -> launch template version
    "certs",  # Pebble certificate via Route53 DNS-01, installed by certs sync
    "pool",  # fill the warm pool, claim one session
    "agent_session",  # warm-up and one recorded session on the claimed instance
    "upload",  # the session to S3, manifest and link
    "release_session",  # hand the instance back
    "teardown",  # remove what bootstrap created
)


@dataclass
class DemoContext:
    work: Path
    moto: stack.Server
    s3: stack.Server
    version: str
    env: dict[str, str]
    facts: dict[str, Any] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def run(self, argv: Sequence[str], *, env: dict[str, str] | None = None, check: bool = True) -> str:
        """Run a command with the demo environment; return its stdout, fail loudly on error."""
        merged = dict(self.env)
        merged.update(env or {})
        print(f"    $ {' '.join(argv)}", flush=True)
        proc = subprocess.run(list(argv), env=merged, cwd=ROOT, text=True, capture_output=True, check=False)
        if check and proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f"demo step failed: {' '.join(argv)} exited {proc.returncode}")
        return proc.stdout

    def playbook(self, playbook: str, *extra: str) -> str:
        return self.run(["ansible-playbook", playbook, *extra])


def base_env(moto: stack.Server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(stack.aws_env(moto.endpoint))
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["PYTHONPATH"] = str(ROOT)
    return env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=STEPS, help="run the flow up to and including this step")
    args = parser.parse_args(argv)
    steps = STEPS[: STEPS.index(args.only) + 1] if args.only else STEPS
    version = (ROOT / "VERSION").read_text().strip()
    started = time.monotonic()
    summary: list[tuple[str, list[str], float]] = []
    with tempfile.TemporaryDirectory(prefix="ocap-demo-") as tmp, stack.running(Path(tmp)) as servers:
        ctx = DemoContext(Path(tmp), servers["moto"], servers["s3"], version, base_env(servers["moto"]))
        # Steps also check results in-process with boto3: same emulator, same fake credentials.
        os.environ.update({k: v for k, v in ctx.env.items() if k.startswith("AWS_")})
        print(f"== rehearsal stack: AWS emulator {ctx.moto.endpoint}, S3 server {ctx.s3.endpoint}")
        try:
            for name in steps:
                print(f"== {name}", flush=True)
                t0 = time.monotonic()
                lines = importlib.import_module(f"tools.demo_steps.{name}").run(ctx)
                summary.append((name, lines, time.monotonic() - t0))
                for line in lines:
                    print(f"   {line}")
        finally:
            for cleanup in reversed(ctx.cleanups):
                with contextlib.suppress(Exception):
                    cleanup()
    print("\n== summary")
    for name, lines, seconds in summary:
        print(f"{name:>12}  {seconds:6.1f}s  {lines[0] if lines else ''}")
    print(f"{'total':>12}  {time.monotonic() - started:6.1f}s  version {version}; every server stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
