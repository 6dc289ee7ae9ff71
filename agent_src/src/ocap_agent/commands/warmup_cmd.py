"""``ocap-agent warmup``: the health check; exit 0 only when the instance was recorded Healthy."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ocap_agent import config
from ocap_agent.commands import setup_logging


def register(sub: Any) -> None:
    p = sub.add_parser("warmup", help="health check: record briefly, stop, verify, report Healthy/Unhealthy")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    setup_logging(cfg)
    if sys.stderr.isatty():
        print("warm-up: starting the recorder on a scratch path...", file=sys.stderr, flush=True)
    # Imported here: it pulls in boto3, which every other command would pay for.
    from ocap_agent import warmup  # noqa: PLC0415

    try:
        result = warmup.run(cfg)
    except config.ConfigError:
        raise
    except Exception as exc:  # the state table or the disk: say which, exit non-zero
        print(f"ocap-agent warmup: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(vars(result), sort_keys=True))
    else:
        print(f"warm-up: {result.summary()}" + (f" [row: {result.state}]" if result.state else ""))
    return 0 if result.healthy else 1
