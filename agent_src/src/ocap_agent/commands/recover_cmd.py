"""``ocap-agent recover`` (at boot): queue every session a crash or power loss left behind."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ocap_agent import config, proc, recover
from ocap_agent.commands import setup_logging


def register(sub: Any) -> None:
    p = sub.add_parser("recover", help="queue sessions left unfinished by a crash (keeps every file)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    setup_logging(cfg)
    try:
        outcomes = recover.recover(cfg)
    except proc.LockTimeout as exc:
        print(f"ocap-agent recover: {exc}", file=sys.stderr)
        return 1
    for o in outcomes:
        print(json.dumps(o.to_dict(), sort_keys=True))
    print(f"recovered {len(outcomes)} session(s)")
    return 1 if any(o.status == "failed" for o in outcomes) else 0
