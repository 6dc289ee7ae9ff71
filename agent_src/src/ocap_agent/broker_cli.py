"""``ocap-broker``: claim, release, prune and status from a terminal (or a script).

    ocap-broker claim --pool P [--user U]     # prints the session as JSON
    ocap-broker release SESSION_ID [--unhealthy]
    ocap-broker prune [--pool P]
    ocap-broker status --pool P [--json]

Every option has an environment default (OCAP_STATE_TABLE, OCAP_HOSTED_ZONE_ID,
OCAP_DOMAIN, OCAP_DNS_TTL, OCAP_LEASE_SECONDS, OCAP_START_TIMEOUT). Exit codes:
0 done, 2 bad input, 3 no capacity (retry later), 4 unknown session,
5 session busy, 1 anything else. Errors go to stderr as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ocap_agent import __version__
from ocap_agent.broker import core

EXIT_CODES: dict[type[core.BrokerError], int] = {
    core.InvalidInput: 2,
    core.NoCapacity: 3,
    core.UnknownSession: 4,
    core.SessionBusy: 5,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocap-broker", description="Hand warm workstations to users.")
    parser.add_argument("--version", action="version", version=f"ocap-broker {__version__}")
    parser.add_argument("--table", help="state table (default: $OCAP_STATE_TABLE)")
    parser.add_argument(
        "--hosted-zone-id", help="Route53 zone for session records (default: $OCAP_HOSTED_ZONE_ID)"
    )
    parser.add_argument(
        "--domain", help="domain of the records (default: $OCAP_DOMAIN, else the zone's name)"
    )
    parser.add_argument("--ttl", type=int, help="record TTL in seconds (default: $OCAP_DNS_TTL or 30)")
    parser.add_argument(
        "--lease-seconds",
        type=int,
        help="how long a claim waits for its session (default: $OCAP_LEASE_SECONDS or 900)",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        help="seconds to wait for a public address (default: $OCAP_START_TIMEOUT or 300)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = sub.add_parser("claim", help="claim one warm instance and print the session as JSON")
    p.add_argument("--pool", required=True)
    p.add_argument("--user")
    p = sub.add_parser("release", help="end a session: DNS record, instance, lease")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument(
        "--unhealthy", action="store_true", help="the instance misbehaved: replace it, do not reuse it"
    )
    p.add_argument("--force", action="store_true", help="release even while the session records or uploads")
    p = sub.add_parser("prune", help="reclaim expired leases, delete records of gone or stopped instances")
    p.add_argument("--pool", help="only this pool's leases (default: every pool)")
    p = sub.add_parser("status", help="the pool as a table")
    p.add_argument("--pool", required=True)
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    return parser


def run(args: argparse.Namespace, broker: core.Broker | None = None) -> Any:
    if broker is None:
        settings = core.BrokerSettings.from_env(
            table=args.table,
            hosted_zone_id=args.hosted_zone_id,
            domain=args.domain,
            ttl=args.ttl,
            lease_seconds=args.lease_seconds,
            start_timeout=args.start_timeout,
        )
        broker = core.Broker(settings)
    if args.command == "claim":
        return core.claim(broker, args.pool, args.user)
    if args.command == "release":
        return core.release(broker, args.session_id, unhealthy=args.unhealthy, force=args.force)
    if args.command == "prune":
        return core.prune(broker, args.pool)
    entries = core.status(broker, args.pool)
    return entries if args.json else core.render_table(entries)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = run(args)
    except core.BrokerError as exc:
        print(json.dumps(exc.to_dict(), default=str), file=sys.stderr)
        return EXIT_CODES.get(type(exc), 1)
    except (ClientError, BotoCoreError) as exc:
        # An AWS failure the broker did not expect: say which call failed, no traceback.
        print(json.dumps({"error": "AwsError", "message": str(exc)}), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(result if isinstance(result, str) else json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
