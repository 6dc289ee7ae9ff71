"""``ocap-agent kiosk sync``: set the kiosk user's password from its store and enable it (run at boot).

Exit codes: 0 applied, kept (store unreachable or empty, the account already
enabled at an earlier boot: a warning is logged) or nothing configured; 1 the
stored value is unusable or the account cannot be changed (it is left as it
was); 3 no password stored or reachable and the account was never enabled;
2 configuration error. Nothing here prints or logs the password.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ocap_agent.commands import add_sync_command, load_with_logging


def register(sub: Any) -> None:
    add_sync_command(
        sub,
        "kiosk",
        group_help="the local user researchers sign in as",
        sync_help="set the kiosk user's password from its store and enable the account",
        doc=__doc__,
        json_help="print the result as JSON (never the password)",
        func=run_sync,
    )


def run_sync(args: argparse.Namespace) -> int:
    cfg = load_with_logging(args)
    # Imported here: it pulls in boto3, which other commands would pay for.
    from ocap_agent import kiosk  # noqa: PLC0415

    try:
        result = kiosk.sync(cfg)
    except kiosk.PasswordError as exc:
        print(f"ocap-agent kiosk sync: stored password unusable, account unchanged: {exc}", file=sys.stderr)
        return kiosk.EXIT_FAILED
    except kiosk.KioskError as exc:
        print(f"ocap-agent kiosk sync: {exc}", file=sys.stderr)
        return kiosk.EXIT_FAILED
    summary = result.summary()
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    elif result.status is kiosk.Status.APPLIED:
        print(f"kiosk: {result.user}: password set from {cfg.kiosk.store} {cfg.kiosk.name}, account enabled")
    else:
        print(
            f"kiosk: {summary['status']}: {result.message}",
            file=sys.stderr if result.exit_code else sys.stdout,
        )
    return result.exit_code
