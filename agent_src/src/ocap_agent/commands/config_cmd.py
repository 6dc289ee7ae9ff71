"""``ocap-agent config show|check``: print or validate the effective configuration."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ocap_agent import config


def register(sub: Any) -> None:
    p = sub.add_parser("config", help="show or check the effective configuration")
    p.add_argument("action", choices=("show", "check"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    if args.action == "show":
        print(json.dumps(config.to_dict(cfg), indent=2, sort_keys=True))
    else:
        print("config OK")
    return 0
