"""``ocap-agent certs sync``: install the stored certificate for NICE DCV (run at spin-up).

Exit codes: 0 installed, unchanged, or kept (store unreachable or empty, a
certificate already installed: a warning is logged); 1 the stored bundle is
unusable or the files cannot be written (installed files kept); 3 no certificate at all (nothing
stored or reachable, nothing installed); 2 configuration error.
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
        "certs",
        group_help="TLS certificate for the desktop server",
        sync_help="fetch the stored certificate and install dcv.pem/dcv.key when it changed",
        doc=__doc__,
        json_help="print the result as JSON (never key material)",
        func=run_sync,
    )


def run_sync(args: argparse.Namespace) -> int:
    cfg = load_with_logging(args)
    # Imported here: it pulls in boto3, which other commands would pay for.
    from ocap_agent import certs  # noqa: PLC0415

    try:
        result = certs.sync(cfg)
    except certs.BundleError as exc:
        print(f"ocap-agent certs sync: stored bundle unusable, installed files kept: {exc}", file=sys.stderr)
        return certs.EXIT_BAD_BUNDLE
    except OSError as exc:
        print(f"ocap-agent certs sync: cannot write the certificate: {exc}", file=sys.stderr)
        return certs.EXIT_BAD_BUNDLE
    summary = result.summary()
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        print(f"certs: {summary['status']}: {summary['cert_file']}, {summary['key_file']}")
        if result.bundle:
            print(
                f"certs: serial {result.bundle.serial}, expires {result.bundle.not_after}, "
                f"covers {', '.join(result.bundle.domains)}"
            )
        if result.message:
            print(f"certs: {result.message}", file=sys.stderr)
    return result.exit_code
