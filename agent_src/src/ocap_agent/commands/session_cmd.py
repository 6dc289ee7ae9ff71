"""``ocap-agent session start|stop``: run by Task Scheduler on workstation unlock and lock."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ocap_agent import config, proc, sessions
from ocap_agent.commands import setup_logging

EXIT = {"started": 0, "already-recording": 0, "stopped": 0, "no-session": 0, "recovered": 0, "failed": 1}


def register(sub: Any) -> None:
    p = sub.add_parser("session", help="start or stop the recording of the user's session")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    start = actions.add_parser("start", help="start recording (workstation unlock)")
    start.set_defaults(func=run_start)
    stop = actions.add_parser("stop", help="stop recording and queue the session for upload (lock)")
    stop.add_argument("--reason", default="session stop", help="recorded with the queued session")
    stop.set_defaults(func=run_stop)


def _print(outcome: sessions.Outcome) -> int:
    print(json.dumps(outcome.to_dict(), sort_keys=True))
    return EXIT[outcome.status]


def run_start(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    setup_logging(cfg)
    try:
        return _print(sessions.start(cfg, args.config))
    except proc.LockTimeout as exc:
        return _print(sessions.Outcome("failed", detail=str(exc)))


def run_stop(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    setup_logging(cfg)
    try:
        return _print(sessions.stop(cfg, args.reason))
    except proc.LockTimeout as exc:
        return _print(sessions.Outcome("failed", detail=str(exc)))
